"""Issuing a prescription (SEL_MP_040): the prescriber's lines, checked against the narcotic
rules and, where it knows the pack, the medicines catalogue."""

from __future__ import annotations

from datetime import date

import msgspec

from domain.calendar import Moment
from domain.catalogue import Catalogue, PackFacts, product_fraction
from domain.checks import MAX_PACKS_PER_LINE, check_line_count, check_product, check_range
from domain.errors import DomainError, invalid
from domain.events import (
    NonSubstitutable,
    PrescribedLine,
    PrescriptionIssued,
    PrescriptionKind,
    Product,
)
from domain.identifiers import Finess, Ins, PrescriptionNumber, Rpps
from domain.substitution import check_non_substitutable

MAX_DURATION_DAYS = 366
# Stupéfiants: a secure prescription covers 28 days at most (CSP R5132-30).
MAX_NARCOTIC_DURATION_DAYS = 28
# Tramadol, codeine, dihydrocodeine (since 1 March 2025): secure prescription, 12 weeks at most.
MAX_ASSIMILATED_DURATION_DAYS = 84


class RequestedLine(msgspec.Struct, frozen=True, kw_only=True):
    """A line as the prescriber's software sent it; `narcotic` and `assimilated` are None when
    it did not say (then the catalogue says, or they are false)."""

    product: Product
    quantity: int
    dosage: str
    duration_days: int
    narcotic: bool | None = None
    assimilated: bool | None = None
    fraction_days: int | None = None
    overlap_allowed: bool = False
    non_substitutable: NonSubstitutable | None = None
    designated_finess: Finess | None = None


class IssuePrescription(msgspec.Struct, frozen=True, kw_only=True):
    prescriber: Rpps
    patient: Ins
    issued_on: date
    kind: PrescriptionKind
    execution_view_consent: bool
    lines: tuple[RequestedLine, ...]
    lines_as_sent: tuple[str, ...] = ()  # kept verbatim in the event (PrescriptionIssued)


def issue(
    command: IssuePrescription,
    number: PrescriptionNumber,
    now: Moment,
    catalogue: Catalogue | None = None,
) -> PrescriptionIssued:
    """Register a new prescription (SEL_MP_040) under a freshly drawn number; where the
    catalogue knows a pack, its facts decide the narcotic rules, not the prescriber's word."""
    if command.issued_on > now.today:
        raise invalid("issued_on may not be in the future", "issued_on")
    check_line_count(command.lines, "lines")
    lines = tuple(
        _prescribed_line(
            line_no, _with_facts(line, line_no, command.kind, catalogue), command, catalogue
        )
        for line_no, line in enumerate(command.lines, start=1)
    )
    return PrescriptionIssued(
        prescription_id=number.value,
        version=1,
        at=now.at,
        prescriber_rpps=command.prescriber.value,
        patient_ins=command.patient.value,
        issued_on=command.issued_on,
        kind=command.kind,
        execution_view_consent=command.execution_view_consent,
        lines=lines,
        lines_as_sent=command.lines_as_sent,
    )


def _with_facts(
    line: RequestedLine, line_no: int, kind: PrescriptionKind, catalogue: Catalogue | None
) -> RequestedLine:
    """The line with what the catalogue says of its pack: narcotic, assimilated, the need of a
    secure prescription, the longest duration and the product's fractioning."""
    field = f"lines[{line_no - 1}]"
    facts = catalogue.facts(line.product, f"{field}.product") if catalogue else None
    if facts is None:
        return line
    name = facts.label or line.product.label
    if facts.hospital_only:
        raise DomainError(
            "hospital_use_only",
            f"{name} is reserved to hospital use: a community pharmacy never dispenses it",
            field=f"{field}.product",
        )
    narcotic = _as_catalogued(line.narcotic, facts.narcotic, name, "narcotic", field)
    assimilated = _as_catalogued(line.assimilated, facts.assimilated, name, "assimilated", field)
    if facts.secure_prescription and kind != "secure":
        raise invalid(f"{name} is prescribed on a secure prescription (kind 'secure')", "kind")
    limit = facts.max_duration_days
    if limit is not None and line.duration_days > limit:
        raise invalid(f"{name} is prescribed for {limit} days at most", f"{field}.duration_days")
    fraction = line.fraction_days
    if fraction is None:
        fraction = product_fraction(facts, line.duration_days)
    return msgspec.structs.replace(
        line, narcotic=narcotic, assimilated=assimilated and not narcotic, fraction_days=fraction
    )


def _as_catalogued(said: bool | None, known: bool, name: str, what: str, field: str) -> bool:
    if said is not None and said != known:
        verdict = "is" if known else "is not"
        raise invalid(f"the medicines catalogue says {name} {verdict} {what}", f"{field}.{what}")
    return known


def _prescribed_line(
    line_no: int, line: RequestedLine, command: IssuePrescription, catalogue: Catalogue | None
) -> PrescribedLine:
    field = f"lines[{line_no - 1}]"
    product = line.product
    check_product(product.system, product.code, product.label, f"{field}.product")
    check_range(line.quantity, 1, MAX_PACKS_PER_LINE, f"{field}.quantity")
    check_range(line.duration_days, 1, MAX_DURATION_DAYS, f"{field}.duration_days")
    _check_secure_only(line, command.kind, field)
    facts = catalogue.facts(product, f"{field}.product") if catalogue else None
    _check_narcotic_mentions(line, field, facts)
    if line.non_substitutable is not None:
        check_non_substitutable(
            line.non_substitutable, product, facts, command.patient, command.issued_on, field
        )
    return PrescribedLine(
        line_no=line_no,
        product=line.product,
        quantity=line.quantity,
        dosage=line.dosage,
        duration_days=line.duration_days,
        narcotic=bool(line.narcotic),
        assimilated=bool(line.assimilated),
        fraction_days=line.fraction_days,
        overlap_allowed=line.overlap_allowed,
        non_substitutable=line.non_substitutable,
        designated_finess=line.designated_finess.value if line.designated_finess else None,
    )


def _check_secure_only(line: RequestedLine, kind: PrescriptionKind, field: str) -> None:
    """Narcotics (28 days) and assimilated products (84 days) need a secure prescription."""
    if not (line.narcotic or line.assimilated):
        return
    what = "a narcotic" if line.narcotic else "an assimilated"
    if kind != "secure":
        raise invalid(f"{what} line needs a secure prescription (kind 'secure')", field)
    longest = MAX_NARCOTIC_DURATION_DAYS if line.narcotic else MAX_ASSIMILATED_DURATION_DAYS
    if line.duration_days > longest:
        raise invalid(f"{what} line covers at most {longest} days", f"{field}.duration_days")


def _check_narcotic_mentions(line: RequestedLine, field: str, facts: PackFacts | None) -> None:
    """Fractioning and the overlap mention are the prescriber's words on a narcotic line, or on
    a line of a product the catalogue dispenses in fractions, or whose overlap it forbids."""
    if line.fraction_days is not None:
        if not (line.narcotic or (facts is not None and facts.fraction_days is not None)):
            raise invalid(
                "fraction_days is for narcotic lines and products dispensed in fractions only",
                f"{field}.fraction_days",
            )
        check_range(line.fraction_days, 1, line.duration_days - 1, f"{field}.fraction_days")
    if line.overlap_allowed and not (
        line.narcotic or (facts is not None and facts.overlap_forbidden)
    ):
        raise invalid(
            "overlap_allowed is for narcotic lines and products whose overlap is forbidden only",
            f"{field}.overlap_allowed",
        )
