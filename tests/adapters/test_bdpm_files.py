"""Reading the official BDPM files as they are: Windows-1252, tabs, CRLF or LF, trailing tabs,
comma decimals, stray tabs after free text; a malformed line is reported with its file and line
number and skipped, the rest goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.catalogue.bdpm import (
    COMPOSITIONS,
    CONDITIONS,
    GENERICS,
    MEDICINES,
    PACKS,
    MalformedLine,
    euros_to_cents,
    lines_of,
    parse_composition,
    parse_generic,
    parse_pack,
)
from adapters.catalogue.importer import MissingFiles, import_directory
from adapters.catalogue.sqlite import SqliteCatalogue
from adapters.catalogue.store import FACTS_DECODER

SKENAN_PACK = (
    "61227030\t3332352\tplaquette(s) PVC-Aluminium de 14 gélule(s)\tPrésentation active\t"
    "Déclaration de commercialisation\t19/01/1992\t3400933323523\toui\t65%\t3,09\t4,11\t1,02\t"
)


def write(path: Path, text: str, newline: str = "\r\n") -> None:
    """Lines as the official files store them: Windows-1252 bytes, CRLF (or LF)."""
    path.write_bytes(text.replace("\n", newline).encode("cp1252"))


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("2,47", 247),
        ("30,36", 3036),
        ("1 234,56", 123456),
        ("1\u00a0234,56", 123456),  # a non-breaking space, as French typography writes it
        ("1,004,24", 100424),  # seen in the files: the last comma is the decimal one
        ("12", 1200),
        ("2,5", 250),
        ("", None),
    ],
)
def test_prices_in_euros_with_comma_decimals(text: str, cents: int | None) -> None:
    assert euros_to_cents(text) == cents


@pytest.mark.parametrize("text", ["abc", "2,4,7", "-3,00", "1.5", "3,00 €"])
def test_what_is_not_a_price(text: str) -> None:
    with pytest.raises(MalformedLine):
        euros_to_cents(text)


def test_a_pack_line_with_its_trailing_tab() -> None:
    row = parse_pack(SKENAN_PACK)
    assert (row.cis, row.cip7, row.cip13) == ("61227030", "3332352", "3400933323523")
    assert row.pack == "plaquette(s) PVC-Aluminium de 14 gélule(s)"
    assert (row.reimbursement_rate, row.price_cents, row.price_with_fee_cents) == (65, 309, 411)
    assert row.marketed


def test_a_pack_without_price_nor_rate_and_no_longer_marketed() -> None:
    text = (
        "63435884\t5588788\t10 plaquette(s)\tPrésentation active\t"
        "Déclaration d'arrêt de commercialisation\t05/06/2017\t3400955887881\tnon\t\t\t\t\t"
    )
    row = parse_pack(text)
    assert (row.reimbursement_rate, row.price_cents, row.price_with_fee_cents) == (
        None,
        None,
        None,
    )
    assert not row.marketed


def test_a_rate_written_with_a_space() -> None:
    assert parse_pack(SKENAN_PACK.replace("65%", "65 %")).reimbursement_rate == 65


def test_a_pack_with_a_bad_check_digit_is_malformed() -> None:
    with pytest.raises(MalformedLine, match="check digit"):
        parse_pack(SKENAN_PACK.replace("3400933323523", "3400933323524"))


def test_a_substance_name_followed_by_stray_tabs() -> None:
    text = (
        "68285029\tgranules\t02500\tMERCURIUS DULCIS POUR PRÉPARATIONS HOMÉOPATHIQUES\t\t\t\t"
        "4CH à 30CH et 7DH à 60DH\tune gomme\tSA\t14\t"
    )
    composition = parse_composition(text)
    assert composition.substance.name == "MERCURIUS DULCIS POUR PRÉPARATIONS HOMÉOPATHIQUES"
    assert composition.substance.dosage == "4CH à 30CH et 7DH à 60DH"
    assert (composition.substance.nature, composition.substance.link) == ("SA", 14)


def test_a_substance_without_dosage() -> None:
    composition = parse_composition(
        "67707794\tgélule\t28165\tAMOXICILLINE TRIHYDRATÉE\t\t\tSA\t1\t"
    )
    assert composition.substance.name == "AMOXICILLINE TRIHYDRATÉE"
    assert (composition.substance.dosage, composition.substance.reference) == ("", "")


def test_a_generic_group_label_followed_by_a_stray_tab() -> None:
    member = parse_generic("1809\tPALIPERIDONE - XEPLION, suspension\t\t67215259\t0\t1\t")
    assert (member.group_id, member.cis, member.role, member.order) == (
        "1809",
        "67215259",
        "princeps",
        1,
    )
    assert member.label == "PALIPERIDONE - XEPLION, suspension"


def test_lines_keep_their_accents_whatever_the_line_ends(tmp_path: Path) -> None:
    crlf, lf = tmp_path / "crlf.txt", tmp_path / "lf.txt"
    write(crlf, "1\tcomprimé sécable\n2\tpâte à mâcher\n")
    write(lf, "1\tcomprimé sécable\n2\tpâte à mâcher", newline="\n")  # no final line end
    expected = [(1, "1\tcomprimé sécable"), (2, "2\tpâte à mâcher")]
    assert list(lines_of(crlf, lambda _: None)) == expected
    assert list(lines_of(lf, lambda _: None)) == expected


def test_a_byte_windows_1252_does_not_define_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"ok\r\nbad \x81 byte\r\n")
    assert list(lines_of(path, lambda _: None)) == [(1, "ok"), (2, None)]


# --- a whole import of small files, into the embedded store -----------------------------------

SKENAN_FILES = {
    MEDICINES: "61227030\tSKENAN L.P. 10 mg, microgranules à libération prolongée en gélule\t"
    "microgranule à libération prolongée en gélule\torale\tAutorisation active\t"
    "Procédure nationale\tCommercialisée\t19/01/1992\t\t\t PHARMA\tNon\n",
    PACKS: SKENAN_PACK
    + "\n61227030\t3332352\tone column too few\n"
    + SKENAN_PACK.replace("3400933323523", "3400933323530").replace("3,09", "1 234,56")
    + "\n",
    COMPOSITIONS: "61227030\tgélule\t01099\tSULFATE DE MORPHINE\t10 mg\tune gélule\tSA\t1\t\n",
    CONDITIONS: "61227030\tprescription limitée à 4 semaines\n"
    "61227030\tprescription en toutes lettres sur ordonnance sécurisée\n61227030\tstupéfiants\n",
    GENERICS: "",
}


async def test_malformed_lines_are_reported_with_file_and_line_and_skipped(
    tmp_path: Path,
) -> None:
    files = tmp_path / "bdpm"
    files.mkdir()
    for name, text in SKENAN_FILES.items():
        write(files / name, text, newline="\r\n" if name != PACKS else "\n")
    store = SqliteCatalogue(tmp_path)
    await store.create()
    try:
        outcome = await import_directory(store, files)
        facts = {
            fact.cip13: fact
            async for page in store.packs(outcome.snapshot.snapshot_id)
            for fact in map(FACTS_DECODER.decode, page)
        }
    finally:
        await store.close()

    assert [str(line) for line in outcome.malformed] == [
        "CIS_CIP_bdpm.txt:2: a pack line has at least 7 columns, got 3"
    ]
    counts = {count.file: count for count in outcome.snapshot.files}
    assert (counts[PACKS].lines, counts[PACKS].imported, counts[PACKS].malformed) == (3, 2, 1)
    assert counts[GENERICS].lines == 0
    assert outcome.snapshot.packs == 2
    skenan = facts["3400933323523"]
    assert skenan.label.startswith("SKENAN L.P. 10 mg, microgranules à libération")
    assert (skenan.narcotic, skenan.secure_prescription, skenan.max_duration_days) == (
        True,
        True,
        28,
    )
    assert facts["3400933323530"].price_cents == 123456


async def test_a_missing_file_imports_nothing(tmp_path: Path) -> None:
    files = tmp_path / "bdpm"
    files.mkdir()
    for name, text in SKENAN_FILES.items():
        if name != CONDITIONS:
            write(files / name, text)
    store = SqliteCatalogue(tmp_path)
    await store.create()
    try:
        with pytest.raises(MissingFiles, match=CONDITIONS):
            await import_directory(store, files)
        assert await store.current() is None
    finally:
        await store.close()
