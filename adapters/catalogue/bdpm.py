"""The official BDPM download files, read exactly as they are published.

Five files, tab-separated, no header, Windows-1252, CRLF or LF line ends. Real data has quirks
these readers accept: trailing tabs, empty columns, spaces around values, prices with a comma
both as decimal and thousands separator ("1,004,24" and "1 234,56"), rates written "65%" or
"65 %", and free-text columns (a substance's or a generic group's name) followed by stray tabs.
A line that still does not fit is reported (`Malformed`, with its file and line number) and
skipped; the rest of the file goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from domain.catalogue import GENERIC_ROLES, GenericRole, Substance
from domain.identifiers import Cip13, InvalidIdentifier
from domain.text import normalized

MEDICINES = "CIS_bdpm.txt"
PACKS = "CIS_CIP_bdpm.txt"
COMPOSITIONS = "CIS_COMPO_bdpm.txt"
CONDITIONS = "CIS_CPD_bdpm.txt"
GENERICS = "CIS_GENER_bdpm.txt"
FILES = (MEDICINES, COMPOSITIONS, CONDITIONS, GENERICS, PACKS)  # packs last: they join the rest
ENCODING = "cp1252"

_CIS = re.compile(r"\d{8}")
_EUROS = re.compile(r"(?P<units>\d{1,3}(?:[,.]?\d{3})*|\d+)(?:,(?P<cents>\d{1,2}))?")
_RATE = re.compile(r"(\d{1,3})\s*%")


class MalformedLine(ValueError):  # noqa: N818 - reads as what the line is
    """A line that does not fit its file's format; the message says why."""


class Malformed(NamedTuple):
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class Medicine(NamedTuple):
    cis: str
    label: str
    form: str
    routes: tuple[str, ...]


class PackRow(NamedTuple):
    cis: str
    cip7: str
    pack: str
    marketed: bool
    cip13: str
    reimbursement_rate: int | None
    price_cents: int | None
    price_with_fee_cents: int | None


class Composition(NamedTuple):
    cis: str
    substance: Substance


class Condition(NamedTuple):
    cis: str
    text: str


class GenericMember(NamedTuple):
    group_id: str
    label: str
    cis: str
    role: GenericRole
    order: int


def lines_of(path: Path, on_bytes: Callable[[int], None]) -> Iterator[tuple[int, str | None]]:
    """(line number, text) for each line, CR and LF removed, decoded from Windows-1252.

    Read as bytes, one line at a time: memory does not grow with the file. A line with a byte
    Windows-1252 does not define comes back as None (the caller reports it as malformed)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            on_bytes(len(raw))
            try:
                yield number, raw.rstrip(b"\r\n").decode(ENCODING)
            except UnicodeDecodeError:
                yield number, None


def fields_of(text: str) -> list[str]:
    """The columns, trimmed, without the empty ones a trailing tab leaves at the end."""
    fields = [field.strip() for field in text.split("\t")]
    while fields and not fields[-1]:
        fields.pop()
    return fields


def parse_medicine(text: str) -> Medicine:
    """CIS_bdpm: CIS, name, form, routes (;-separated), authorisation status, …"""
    fields = _at_least(fields_of(text), 4, "medicine")
    return Medicine(
        cis=_cis(fields[0]),
        label=_required(fields[1], "name"),
        form=fields[2],
        routes=tuple(route.strip() for route in fields[3].split(";") if route.strip()),
    )


def parse_pack(text: str) -> PackRow:
    """CIS_CIP: CIS, CIP7, pack label, status, marketing declaration, date, CIP13, approved
    for communities, reimbursement rate, price, price with the dispensing fee, fee, …"""
    fields = _at_least(fields_of(text), 7, "pack")
    fields += [""] * (12 - len(fields))  # a pack with no price ends after its CIP13's column
    return PackRow(
        cis=_cis(fields[0]),
        cip7=fields[1],
        pack=fields[2],
        marketed="arret" not in normalized(fields[4]),
        cip13=_cip13(fields[6]),
        reimbursement_rate=_rate(fields[8]),
        price_cents=euros_to_cents(fields[9]),
        price_with_fee_cents=euros_to_cents(fields[10]),
    )


def parse_composition(text: str) -> Composition:
    """CIS_COMPO: CIS, element, substance code, substance name, dosage, reference, nature
    (SA/FT), link number. The name may be followed by stray tabs (seen in real files)."""
    fields = _at_least(fields_of(text), 8, "composition")
    head, tail = fields[:3], fields[-4:]
    name = " ".join(part for part in fields[3:-4] if part)
    dosage, reference, nature, link = tail
    if nature not in {"SA", "FT"}:
        raise MalformedLine(f"nature must be SA or FT, got {nature!r}")
    return Composition(
        cis=_cis(head[0]),
        substance=Substance(
            code=head[2],
            name=_required(name, "substance name"),
            dosage=dosage,
            reference=reference,
            nature=nature,
            element=head[1],
            link=_integer(link, "link number"),
        ),
    )


def parse_condition(text: str) -> Condition:
    """CIS_CPD: CIS, condition text."""
    fields = _at_least(fields_of(text), 2, "condition")
    return Condition(cis=_cis(fields[0]), text=" ".join(part for part in fields[1:] if part))


def parse_generic(text: str) -> GenericMember:
    """CIS_GENER: group id, group label, CIS, type, order. The label may be followed by a
    stray tab (seen in real files)."""
    fields = _at_least(fields_of(text), 5, "generic group member")
    kind = _integer(fields[-2], "generic type")
    if kind not in GENERIC_ROLES:
        raise MalformedLine(f"unknown generic type {kind}")
    return GenericMember(
        group_id=_integer_text(fields[0], "group id"),
        label=_required(" ".join(part for part in fields[1:-3] if part), "group label"),
        cis=_cis(fields[-3]),
        role=GENERIC_ROLES[kind],
        order=_integer(fields[-1], "order"),
    )


def euros_to_cents(text: str) -> int | None:
    """ "2,47" → 247, "1 234,56" → 123456, "1,004,24" → 100424 (the last comma is the decimal
    one), "12" → 1200; empty → None."""
    compact = "".join(text.split())
    if not compact:
        return None
    match = _EUROS.fullmatch(compact)
    if match is None:
        raise MalformedLine(f"price {text!r} is not an amount in euros")
    units = int(re.sub(r"[,.]", "", match["units"]))
    cents = (match["cents"] or "0").ljust(2, "0")
    return units * 100 + int(cents)


def _rate(text: str) -> int | None:
    if not text:
        return None
    match = _RATE.fullmatch(text)
    if match is None:
        raise MalformedLine(f"reimbursement rate {text!r} is not a percentage")
    return int(match.group(1))


def _at_least(fields: list[str], count: int, what: str) -> list[str]:
    if len(fields) < count:
        raise MalformedLine(f"a {what} line has at least {count} columns, got {len(fields)}")
    return fields


def _cis(text: str) -> str:
    if not _CIS.fullmatch(text):
        raise MalformedLine(f"CIS code must be 8 digits, got {text[:20]!r}")
    return text


def _cip13(text: str) -> str:
    try:
        return Cip13(text).value
    except InvalidIdentifier as error:
        raise MalformedLine(str(error)) from None


def _required(text: str, what: str) -> str:
    if not text:
        raise MalformedLine(f"empty {what}")
    return text


def _integer(text: str, what: str) -> int:
    return int(_integer_text(text, what))


def _integer_text(text: str, what: str) -> str:
    if not text.isascii() or not text.isdigit():
        raise MalformedLine(f"{what} must be a number, got {text[:20]!r}")
    return text
