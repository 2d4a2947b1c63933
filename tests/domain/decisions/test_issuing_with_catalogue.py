"""The medicines catalogue decides the rules for the packs it knows, given its facts (built
here, the way the import builds them): prescribing (`domain.decisions.issuing` with
`domain.catalogue.Catalogue`)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
import pytest

from domain.catalogue import Catalogue, PackFacts
from domain.decisions.issuing import IssuePrescription, RequestedLine, issue
from domain.errors import DomainError
from domain.events import (
    PrescribedLine,
    PrescriptionKind,
    Product,
)
from tests.domain.builders import NUMBER, PATIENT, PRESCRIBER, moment
from tests.domain.test_catalogue import pack, substance

SKENAN_CODE, CLAMOXYL_CODE, ARROW_CODE = "3400933323523", "3400931587538", "3400935765680"


TOPALGIC_CODE, UNKNOWN_CODE = "3400933911881", "3400930000007"


ALMUS_CODE = "3400937054393"


class Packs:
    """A catalogue snapshot as the rules see it: facts per CIP13 (an immutable mapping)."""

    def __init__(self, facts: Mapping[str, PackFacts]) -> None:
        self._facts = dict(facts)

    def facts(self, cip13: str) -> PackFacts | None:
        return self._facts.get(cip13)


def sample() -> Packs:
    """Skenan (narcotic, 28 days), Clamoxyl and its generic Arrow (group 148), Topalgic
    (tramadol: assimilated, 84 days), and a fractioned fentanyl patch."""
    amoxicilline = (substance("AMOXICILLINE ANHYDRE", "FT"), substance("AMOXICILLINE TRIHYDRATÉE"))
    narcotic = ("stupéfiants", "prescription limitée à 4 semaines")
    return Packs(
        {
            SKENAN_CODE: pack(
                SKENAN_CODE, "61227030", substance("SULFATE DE MORPHINE"), conditions=narcotic
            ),
            CLAMOXYL_CODE: pack(CLAMOXYL_CODE, "67707794", *amoxicilline, group="148"),
            ARROW_CODE: pack(ARROW_CODE, "66082724", *amoxicilline, group="148"),
            ALMUS_CODE: pack(ALMUS_CODE, "64338986", *amoxicilline, group="148"),
            TOPALGIC_CODE: pack(TOPALGIC_CODE, "63435884", substance("CHLORHYDRATE DE TRAMADOL")),
            "3400934238307": pack(
                "3400934238307",
                "60914025",
                substance("FENTANYL"),
                conditions=(*narcotic, "délivrance fractionnée de 14 jours"),
            ),
        }
    )


def cip13(code: str, label: str = "as the LAP wrote it") -> Product:
    return Product(system="CIP13", code=code, label=label)


def written(
    product: Product,
    days_: int = 28,
    *,
    narcotic: bool | None = None,
    assimilated: bool | None = None,
    fraction_days: int | None = None,
) -> RequestedLine:
    return RequestedLine(
        product=product,
        quantity=4,
        dosage="x",
        duration_days=days_,
        narcotic=narcotic,
        assimilated=assimilated,
        fraction_days=fraction_days,
    )


def issued_line(
    *lines: RequestedLine, kind: PrescriptionKind = "secure", strict: bool = False
) -> tuple[PrescribedLine, ...]:
    command = IssuePrescription(
        prescriber=PRESCRIBER,
        patient=PATIENT,
        issued_on=moment().today,
        kind=kind,
        execution_view_consent=True,
        lines=lines,
    )
    return issue(command, NUMBER, moment(), Catalogue(sample(), strict=strict)).lines


def refusal_of(
    *lines: RequestedLine, kind: PrescriptionKind = "secure", strict: bool = False
) -> tuple[str, str | None, str]:
    with pytest.raises(DomainError) as refused:
        issued_line(*lines, kind=kind, strict=strict)
    return refused.value.code, refused.value.field, refused.value.detail


# --- prescribing ------------------------------------------------------------------------------


def test_the_catalogue_says_skenan_is_a_narcotic_when_the_lap_did_not() -> None:
    (line_,) = issued_line(written(cip13(SKENAN_CODE)))

    assert (line_.narcotic, line_.assimilated, line_.fraction_days) == (True, False, None)


def test_a_lap_that_contradicts_the_catalogue_is_refused_naming_the_field() -> None:
    assert refusal_of(written(cip13(SKENAN_CODE), narcotic=False)) == (
        "invalid_request",
        "lines[0].narcotic",
        "the medicines catalogue says medicine 61227030 is narcotic",
    )
    assert refusal_of(written(cip13(CLAMOXYL_CODE), 6, narcotic=True), kind="standard") == (
        "invalid_request",
        "lines[0].narcotic",
        "the medicines catalogue says medicine 67707794 is not narcotic",
    )
    assert refusal_of(written(cip13(TOPALGIC_CODE), 84, assimilated=False)) == (
        "invalid_request",
        "lines[0].assimilated",
        "the medicines catalogue says medicine 63435884 is not assimilated".replace("is not", "is"),
    )


def test_what_the_lap_says_in_agreement_with_the_catalogue_is_accepted() -> None:
    (skenan,) = issued_line(written(cip13(SKENAN_CODE), narcotic=True))
    (amoxicilline,) = issued_line(written(cip13(CLAMOXYL_CODE), 6, narcotic=False), kind="standard")

    assert (skenan.narcotic, amoxicilline.narcotic) == (True, False)


def test_a_secure_product_on_a_standard_prescription_is_refused_naming_kind() -> None:
    assert refusal_of(written(cip13(SKENAN_CODE)), kind="standard") == (
        "invalid_request",
        "kind",
        "medicine 61227030 is prescribed on a secure prescription (kind 'secure')",
    )


def test_the_longest_duration_is_the_catalogue_s() -> None:
    assert refusal_of(written(cip13(SKENAN_CODE), 29)) == (
        "invalid_request",
        "lines[0].duration_days",
        "medicine 61227030 is prescribed for 28 days at most",
    )
    (topalgic,) = issued_line(written(cip13(TOPALGIC_CODE), 84))
    assert (topalgic.assimilated, topalgic.narcotic, topalgic.duration_days) == (True, False, 84)
    assert refusal_of(written(cip13(TOPALGIC_CODE), 85))[1] == "lines[0].duration_days"


def test_the_product_s_fractioning_applies_when_the_prescriber_wrote_none() -> None:
    patch = cip13("3400934238307")

    (fractioned,) = issued_line(written(patch, 28))
    (own,) = issued_line(written(patch, 28, fraction_days=7))
    (short,) = issued_line(written(patch, 14))

    assert (fractioned.fraction_days, own.fraction_days, short.fraction_days) == (14, 7, None)


def test_the_label_written_by_the_lap_names_a_pack_the_catalogue_gives_no_name() -> None:
    nameless = pack(
        SKENAN_CODE, "61227030", substance("SULFATE DE MORPHINE"), conditions=("stupéfiants",)
    )
    packs = Packs({SKENAN_CODE: msgspec_replace(nameless, label="")})
    command = IssuePrescription(
        prescriber=PRESCRIBER,
        patient=PATIENT,
        issued_on=moment().today,
        kind="standard",
        execution_view_consent=True,
        lines=(written(cip13(SKENAN_CODE, "Skénan du LAP")),),
    )

    with pytest.raises(DomainError) as refused:
        issue(command, NUMBER, moment(), Catalogue(packs))

    assert (
        refused.value.detail
        == "Skénan du LAP is prescribed on a secure prescription (kind 'secure')"
    )


def msgspec_replace(facts: PackFacts, **changes: object) -> PackFacts:
    return msgspec.structs.replace(facts, **changes)


def test_a_pack_unknown_to_the_catalogue_is_taken_at_the_lap_s_word_unless_strict() -> None:
    (unknown,) = issued_line(written(cip13(UNKNOWN_CODE), 6, narcotic=False), kind="standard")

    assert unknown.narcotic is False
    assert refusal_of(written(cip13(UNKNOWN_CODE), 6), kind="standard", strict=True) == (
        "unknown_product",
        "lines[0].product.code",
        f"the medicines catalogue knows no pack {UNKNOWN_CODE}",
    )


def test_substances_and_units_are_not_looked_up_even_when_strict() -> None:
    dci = Product(system="DCI", label="amoxicilline 500 mg")
    ucd = Product(system="UCD", code="9000001", label="x")

    lines = issued_line(written(dci, 6), written(ucd, 6), kind="standard", strict=True)

    assert [line_.narcotic for line_ in lines] == [False, False]
