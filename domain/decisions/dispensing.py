"""Dispensing (délivrance): packs handed over, never more than remains, nor than may be given
at that instant (`domain.dispensable`), the patient's narcotic coverage extended with it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import msgspec

from domain.calendar import Moment, local_day
from domain.catalogue import Catalogue, PackFacts, sized, substitute_allowed
from domain.checks import (
    check_dispensable,
    check_line_count,
    check_not_cancelled,
    check_product,
    check_unique_line_numbers,
)
from domain.coverage import CoveredPeriod, NarcoticCoverage, NarcoticPeriodsCovered
from domain.dispensable import Allowance, allowances, period_covered
from domain.errors import DomainError, invalid
from domain.events import (
    DispensationRecorded,
    DispensedLine,
    PharmacistNonSubstitution,
    PrescribedLine,
    Procedure,
    Product,
)
from domain.identifiers import Finess, Rpps
from domain.prescription import Prescription
from domain.procedures import check_procedure
from domain.substitution import biosimilar_of, check_lot, check_mentions, is_substitution

# An LGO may record a dispensing after an outage: when the packs were handed over may be given,
# up to 72 hours back, and a little ahead for clocks that drift (contract v1.1).
HANDED_OVER_MAX_AHEAD = timedelta(minutes=5)
HANDED_OVER_MAX_BEHIND = timedelta(hours=72)


class DispenseLine(msgspec.Struct, frozen=True, kw_only=True):
    line_no: int
    quantity: int
    product: Product | None = None
    # Substitution's mentions (domain.substitution). UNSET when not given, so that a line
    # without them encodes as before: its encoding fingerprints an Idempotency-Key's request.
    generic_refused: bool | msgspec.UnsetType = msgspec.UNSET
    non_substitution: PharmacistNonSubstitution | msgspec.UnsetType = msgspec.UNSET
    lot: str | msgspec.UnsetType = msgspec.UNSET

    @property
    def mentions(self) -> tuple[bool, PharmacistNonSubstitution | None, str | None]:
        """generic_refused, non_substitution and lot, as the event records them."""
        return (
            self.generic_refused is True,
            None if isinstance(self.non_substitution, msgspec.UnsetType) else self.non_substitution,
            None if isinstance(self.lot, msgspec.UnsetType) else self.lot,
        )


class Dispense(msgspec.Struct, frozen=True, kw_only=True):
    pharmacy: Finess
    pharmacist: Rpps
    lines: tuple[DispenseLine, ...]
    dispensed_at: datetime | None = None  # None: handed over as it is recorded
    # Kept verbatim in the event (DispensationRecorded). UNSET rather than () so that a command
    # without it encodes as before: its encoding fingerprints an Idempotency-Key's request.
    lines_as_sent: tuple[str, ...] | msgspec.UnsetType = msgspec.UNSET
    # One of the pharmacist's own procedures (`domain.procedures`); UNSET: the prescription
    # itself (and the encoding of a command without it is unchanged, as for `lines_as_sent`).
    procedure: Procedure | msgspec.UnsetType = msgspec.UNSET

    @property
    def under(self) -> Procedure | None:
        """The procedure the packs are given under, None for the prescription itself."""
        return None if isinstance(self.procedure, msgspec.UnsetType) else self.procedure


class Dispensed(msgspec.Struct, frozen=True):
    """A dispensing's events: the prescription's, and the patient's narcotic coverage if any."""

    recorded: DispensationRecorded
    coverage: NarcoticPeriodsCovered | None = None


def dispense(
    state: Prescription,
    command: Dispense,
    dispensation_id: str,
    now: Moment,
    coverage: NarcoticCoverage | None = None,
    *,
    catalogue: Catalogue | None = None,
) -> Dispensed:
    """Record packs handed over (délivrance): never more than remains, nor than may be given at
    that instant (`domain.dispensable`), the patient's narcotic coverage extended with it.

    `coverage` is the patient's narcotic coverage; it is needed when a narcotic line is asked.
    `state` has its lines as the catalogue knows them (`domain.catalogue.catalogued`), and a
    substitute must be one the catalogue allows.
    """
    _check_dispense_request(state, command, catalogue)
    handing = {r.line_no: r.product for r in command.lines if r.product is not None}
    if catalogue is not None:
        state = sized(state, catalogue.packs, handing.values())
    at = handed_over_at(state, command.dispensed_at, now, "dispensed_at")
    day = local_day(at, command.pharmacy.value)
    if command.under is None:
        _check_prescription_gives(state, command, coverage, at, handing)
    else:
        check_not_cancelled(state)
        for index, requested in enumerate(command.lines):
            handed = _handed_over(state, requested)
            check_procedure(state, command.under, handed, day, f"lines[{index}].quantity")
    recorded = DispensationRecorded(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        dispensation_id=dispensation_id,
        finess=command.pharmacy.value,
        pharmacist_rpps=command.pharmacist.value,
        dispensed_at=at,
        lines=tuple(_handed_over(state, requested) for requested in command.lines),
        lines_as_sent=_as_sent(command),
        procedure=command.under,
    )
    return Dispensed(recorded, _coverage_extended(state, recorded, day, coverage, now))


def _check_prescription_gives(
    state: Prescription,
    command: Dispense,
    coverage: NarcoticCoverage | None,
    at: datetime,
    handing: dict[int, Product],
) -> None:
    """The prescription itself gives what is asked at `at`: never more than remains, nor than
    may be given at that instant (`domain.dispensable`)."""
    check_dispensable(state, local_day(at, command.pharmacy.value))
    asked = {requested.line_no for requested in command.lines}
    allowed = {
        a.line_no: a
        for a in allowances(
            state, coverage, at, command.pharmacy.value, lines=asked, next_on=False, handing=handing
        )
    }
    for index, requested in enumerate(command.lines):
        quantity = f"lines[{index}].quantity"
        handed = _handed_over(state, requested)
        _check_remaining(state, handed, quantity)
        _check_allowed(state, allowed[requested.line_no], handed, quantity)


def handed_over_at(
    state: Prescription, requested: datetime | None, now: Moment, field: str
) -> datetime:
    """The instant every rule is decided at: the LGO's, within bounds, else the server's."""
    if requested is None:
        return now.at
    if requested.tzinfo is None:
        raise invalid(f"{field} needs its UTC offset (RFC 3339)", field)
    if requested > now.at + HANDED_OVER_MAX_AHEAD:
        raise invalid(f"{field} may be at most 5 minutes ahead of the server's clock", field)
    if requested < now.at - HANDED_OVER_MAX_BEHIND:
        raise invalid(f"{field} may be at most 72 hours before the server's clock", field)
    if requested < state.issued_at:
        raise invalid(f"{field} is before the prescription was registered", field)
    return requested


def _check_dispense_request(
    state: Prescription, command: Dispense, catalogue: Catalogue | None = None
) -> None:
    check_line_count(command.lines, "lines")
    check_unique_line_numbers(line.line_no for line in command.lines)
    for index, requested in enumerate(command.lines):
        field = f"lines[{index}]"
        line = state.line(requested.line_no)
        if line is None:
            raise invalid(f"this prescription has no line {requested.line_no}", f"{field}.line_no")
        if requested.quantity < 1:
            raise invalid(
                f"quantity must be at least 1, got {requested.quantity}", f"{field}.quantity"
            )
        handed = requested.product
        if handed is not None:
            check_product(handed.system, handed.code, handed.label, f"{field}.product")
        if line.prescribed.product.system == "DCI" and (handed is None or handed.system != "CIP13"):
            raise invalid(
                f"line {requested.line_no} is prescribed by substance (DCI): "
                "name the CIP13 pack handed over",
                f"{field}.product",
            )
        _check_handed_over(line.prescribed, requested, field, catalogue)


def _check_handed_over(
    line: PrescribedLine, requested: DispenseLine, field: str, catalogue: Catalogue | None
) -> None:
    """What is handed over against the line's mentions (domain.substitution), then, where the
    catalogue knows the pack, whether it may replace the one prescribed."""
    prescribed, handed = line.product, requested.product
    prescribed_facts = _known(prescribed, catalogue)
    handed_facts = (
        catalogue.facts(handed, f"{field}.product") if catalogue and handed is not None else None
    )
    substituted = handed is not None and is_substitution(
        prescribed, handed, prescribed_facts, handed_facts
    )
    refused, exclusion, lot = requested.mentions
    check_mentions(
        line,
        substituted=substituted,
        generic_refused=refused,
        pharmacist_excludes=exclusion is not None,
        prescribed_facts=prescribed_facts,
        field=field,
    )
    if handed is None or handed_facts is None or handed == prescribed:
        return
    if prescribed.system == "DCI":
        allowed = substitute_allowed(None, prescribed.label, handed_facts)
    elif prescribed_facts is None:
        return  # nothing to compare with: the prescribed pack is not in the catalogue
    else:
        allowed = substitute_allowed(prescribed_facts, None, handed_facts)
        biosimilar = None if allowed else biosimilar_of(prescribed_facts, handed_facts)
        if biosimilar is not None:
            check_lot(lot, biosimilar, line.line_no, field)
            return
    if not allowed:
        name = handed_facts.label or handed.label
        raise DomainError(
            "substitution_not_allowed",
            f"{name} ({handed.code}) may not be given for {prescribed.label}: "
            "neither the same medicine, nor its generic group, nor its substance, "
            "nor a biosimilar of its substitutable list",
            field=f"{field}.product",
        )


def _known(product: Product, catalogue: Catalogue | None) -> PackFacts | None:
    """The catalogue's facts of the prescribed pack, None when it does not know it."""
    if catalogue is None or product.system != "CIP13" or product.code is None:
        return None
    return catalogue.packs.facts(product.code)


def _check_remaining(state: Prescription, handed: DispensedLine, field: str) -> None:
    """Never more than remains: in units when the line is counted in units (`domain.units`).
    `field` names the quantity asked (`lines[0].quantity`)."""
    line = state.line(handed.line_no)
    assert line is not None  # checked by _check_dispense_request
    count = state.counting(line, handing=handed.product)
    remaining = state.amount_left(line, count)  # a cancelled prescription was refused before
    if remaining <= 0:
        raise DomainError(
            "already_dispensed", f"line {handed.line_no} has nothing left to dispense", field=field
        )
    asked = count.amount(handed.quantity, handed.product)
    if asked > remaining:
        if count.in_units:
            detail = (
                f"line {handed.line_no} has {remaining} units left, {asked} asked "
                f"({handed.quantity} pack(s) of {asked // handed.quantity})"
            )
        else:
            detail = f"line {handed.line_no} has {remaining} left, {handed.quantity} asked"
        raise DomainError("quantity_exceeds_remaining", detail, field=field)


def _check_allowed(
    state: Prescription, allowed: Allowance, handed: DispensedLine, field: str
) -> None:
    line = state.line(handed.line_no)
    assert line is not None  # checked by _check_dispense_request
    count = state.counting(line, handing=handed.product)
    asked = count.amount(handed.quantity, handed.product)
    if allowed.max_units is None and handed.quantity <= allowed.max_quantity:
        return
    if allowed.max_units is not None and asked <= allowed.max_units:
        return
    code = allowed.reason
    # Cancellation, expiry and what remains were checked first: a dispensing rule limits it.
    assert code is not None
    most = f"{allowed.max_units} units" if allowed.max_units is not None else allowed.max_quantity
    wanted = f"{asked} units" if allowed.max_units is not None else handed.quantity
    raise DomainError(
        code,
        f"line {handed.line_no}: at most {most} may be dispensed now, "
        f"{wanted} asked ({allowed.why})",
        field=field,
        max_quantity=allowed.max_quantity,
    )


def _coverage_extended(
    state: Prescription,
    recorded: DispensationRecorded,
    day: date,
    coverage: NarcoticCoverage | None,
    now: Moment,
) -> NarcoticPeriodsCovered | None:
    periods = []
    for given in recorded.lines:
        line = state.line(given.line_no)
        assert line is not None  # checked by _check_dispense_request
        if line.covers_days:
            first_day, until = period_covered(state, line, day, given)
            periods.append(
                CoveredPeriod(
                    prescription_id=state.prescription_id,
                    dispensation_id=recorded.dispensation_id,
                    line_no=given.line_no,
                    first_day=first_day,
                    until=until,
                    substance=line.overlap_substance,
                )
            )
    if not periods:
        return None
    if coverage is None:
        msg = "a narcotic dispensing is decided against the patient's narcotic coverage"
        raise ValueError(msg)
    return coverage.covered(tuple(periods), now.at)


def _as_sent(command: Dispense) -> tuple[str, ...]:
    return () if isinstance(command.lines_as_sent, msgspec.UnsetType) else command.lines_as_sent


def _handed_over(state: Prescription, requested: DispenseLine) -> DispensedLine:
    """The pack actually given: the substitute when there is one, else the prescribed product."""
    line = state.line(requested.line_no)
    assert line is not None  # checked by _check_dispense_request
    generic_refused, non_substitution, lot = requested.mentions
    return DispensedLine(
        line_no=requested.line_no,
        quantity=requested.quantity,
        product=requested.product or line.prescribed.product,
        generic_refused=generic_refused,
        non_substitution=non_substitution,
        lot=lot,
    )
