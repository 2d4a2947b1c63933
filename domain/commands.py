"""Commands: pure functions from a prescription's state to the events they cause, or a refusal.

Each function checks the request's own shape first (422 `invalid_request`: unknown line,
zero quantity), then the prescription's state (409: cancelled, expired, nothing left). A
refusal raises `DomainError` and produces no event, so a refused request records nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta

import msgspec

from domain.calendar import local_day
from domain.catalogue import PackFacts, PackLookup, product_fraction, substitute_allowed
from domain.coverage import (
    CoveredPeriod,
    NarcoticCoverage,
    NarcoticPeriodsCovered,
    NarcoticPeriodsReleased,
)
from domain.dispensable import Allowance, allowances, period_covered
from domain.errors import DomainError, invalid
from domain.events import (
    AdaptationRecorded,
    BilledLine,
    BillingRecorded,
    ConsentActor,
    DispensationRecorded,
    DispensationWithdrawn,
    DispensedLine,
    ExecutionViewConsentChanged,
    PrescribedLine,
    PrescriptionCancelled,
    PrescriptionIssued,
    PrescriptionKind,
    PrescriptionSentToPatient,
    PrescriptionTransmitted,
    Product,
    TransmissionSender,
)
from domain.identifiers import Cip13, Finess, Ins, InvalidIdentifier, PrescriptionNumber, Rpps
from domain.prescription import (
    FIRST_DISPENSING_WINDOW_MONTHS,
    Dispensation,
    Prescription,
    add_months,
)

MAX_LINES = 50
MAX_PACKS_PER_LINE = 999
MAX_DURATION_DAYS = 366
# Stupéfiants: a secure prescription covers 28 days at most (CSP R5132-30).
MAX_NARCOTIC_DURATION_DAYS = 28
# Tramadol, codeine, dihydrocodeine (since 1 March 2025): secure prescription, 12 weeks at most.
MAX_ASSIMILATED_DURATION_DAYS = 84
# An LGO may record a dispensing after an outage: when the packs were handed over may be given,
# up to 72 hours back, and a little ahead for clocks that drift (contract v1.1).
HANDED_OVER_MAX_AHEAD = timedelta(minutes=5)
HANDED_OVER_MAX_BEHIND = timedelta(hours=72)
# A dispensing recorded in error may be withdrawn within 7 days, before billing (our design).
WITHDRAWAL_WINDOW = timedelta(days=7)


class Moment(msgspec.Struct, frozen=True):
    """When a command runs: the instant recorded, and the calendar day in France."""

    at: datetime
    today: date


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


class IssuePrescription(msgspec.Struct, frozen=True, kw_only=True):
    prescriber: Rpps
    patient: Ins
    issued_on: date
    kind: PrescriptionKind
    execution_view_consent: bool
    lines: tuple[RequestedLine, ...]
    lines_as_sent: tuple[str, ...] = ()  # kept verbatim in the event (PrescriptionIssued)


class DispenseLine(msgspec.Struct, frozen=True, kw_only=True):
    line_no: int
    quantity: int
    product: Product | None = None


class Dispense(msgspec.Struct, frozen=True, kw_only=True):
    pharmacy: Finess
    pharmacist: Rpps
    lines: tuple[DispenseLine, ...]
    dispensed_at: datetime | None = None  # None: handed over as it is recorded
    # Kept verbatim in the event (DispensationRecorded). UNSET rather than () so that a command
    # without it encodes as before: its encoding fingerprints an Idempotency-Key's request.
    lines_as_sent: tuple[str, ...] | msgspec.UnsetType = msgspec.UNSET


class Dispensed(msgspec.Struct, frozen=True):
    """A dispensing's events: the prescription's, and the patient's narcotic coverage if any."""

    recorded: DispensationRecorded
    coverage: NarcoticPeriodsCovered | None = None


class Withdraw(msgspec.Struct, frozen=True, kw_only=True):
    pharmacy: Finess
    pharmacist: Rpps
    dispensation_id: str
    reason: str


class RecordAdaptation(msgspec.Struct, frozen=True, kw_only=True):
    pharmacy: Finess
    pharmacist: Rpps
    line_no: int
    description: str
    agreed_by: Rpps
    agreed_on: date
    dispensation_id: str | None = None


class Bill(msgspec.Struct, frozen=True, kw_only=True):
    pharmacy: Finess
    pharmacist: Rpps
    dispensation_id: str
    invoice_number: str
    lines: tuple[BilledLine, ...]


# --- issuing ---------------------------------------------------------------------------------


class Catalogue(msgspec.Struct, frozen=True):
    """The medicines catalogue as the rules consult it; `strict`: a CIP13 it does not know is
    refused (ORDO_CATALOGUE_STRICT), else it is taken at the prescriber's word, as in v1."""

    packs: PackLookup
    strict: bool = False

    def facts(self, product: Product, field: str) -> PackFacts | None:
        if product.system != "CIP13" or product.code is None:
            return None
        facts = self.packs.facts(product.code)
        if facts is None and self.strict:
            raise DomainError(
                "unknown_product",
                f"the medicines catalogue knows no pack {product.code}",
                field=f"{field}.code",
            )
        return facts


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
    _check_line_count(command.lines, "lines")
    lines = tuple(
        _prescribed_line(line_no, _with_facts(line, line_no, command.kind, catalogue), command.kind)
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
    narcotic = _as_catalogued(line.narcotic, facts.narcotic, name, "narcotic", field)
    assimilated = _as_catalogued(line.assimilated, facts.assimilated, name, "assimilated", field)
    if facts.secure_prescription and kind != "secure":
        raise invalid(f"{name} is prescribed on a secure prescription (kind 'secure')", "kind")
    limit = facts.max_duration_days
    if limit is not None and line.duration_days > limit:
        raise invalid(f"{name} is prescribed for {limit} days at most", f"{field}.duration_days")
    fraction = line.fraction_days
    if narcotic and fraction is None:
        fraction = product_fraction(facts, line.duration_days)
    return msgspec.structs.replace(
        line,
        narcotic=narcotic,
        assimilated=assimilated and not narcotic,
        fraction_days=fraction,
    )


def _as_catalogued(said: bool | None, known: bool, name: str, what: str, field: str) -> bool:
    if said is not None and said != known:
        verdict = "is" if known else "is not"
        raise invalid(f"the medicines catalogue says {name} {verdict} {what}", f"{field}.{what}")
    return known


def _prescribed_line(line_no: int, line: RequestedLine, kind: PrescriptionKind) -> PrescribedLine:
    field = f"lines[{line_no - 1}]"
    _check_product(line.product, f"{field}.product")
    _check_range(line.quantity, 1, MAX_PACKS_PER_LINE, f"{field}.quantity")
    _check_range(line.duration_days, 1, MAX_DURATION_DAYS, f"{field}.duration_days")
    _check_secure_only(line, kind, field)
    _check_narcotic_mentions(line, field)
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


def _check_narcotic_mentions(line: RequestedLine, field: str) -> None:
    """Fractioning and the overlap mention are the prescriber's words on a narcotic line."""
    if line.fraction_days is not None:
        if not line.narcotic:
            raise invalid("fraction_days is for narcotic lines only", f"{field}.fraction_days")
        _check_range(line.fraction_days, 1, line.duration_days - 1, f"{field}.fraction_days")
    if line.overlap_allowed and not line.narcotic:
        raise invalid("overlap_allowed is for narcotic lines only", f"{field}.overlap_allowed")


def _check_product(product: Product, field: str) -> None:
    if not product.label.strip():
        raise invalid("a product needs a label", f"{field}.label")
    if product.system == "DCI":
        if product.code is not None:
            raise invalid(
                "a DCI product is a substance name, written in label, with no code", field
            )
        return
    if product.code is None:
        raise invalid(f"a {product.system} product needs a code", f"{field}.code")
    if product.system == "CIP13":
        _check_identifier(Cip13, product.code, f"{field}.code")
    elif not _is_ucd(product.code):
        raise invalid("a UCD code has 7 digits (UCD7) or 13 digits (UCD13)", f"{field}.code")


def _is_ucd(code: str) -> bool:
    return code.isascii() and code.isdigit() and len(code) in (7, 13)


def _check_identifier(kind: type[Cip13], text: str, field: str) -> None:
    try:
        kind(text)
    except InvalidIdentifier as error:
        raise invalid(str(error), field) from error


def _check_range(value: int, low: int, high: int, field: str) -> None:
    if not low <= value <= high:
        raise invalid(f"must be between {low} and {high}, got {value}", field)


def _check_line_count(lines: tuple[object, ...], field: str) -> None:
    if not lines:
        raise invalid("at least one line is needed", field)
    if len(lines) > MAX_LINES:
        raise invalid(f"at most {MAX_LINES} lines", field)


def _check_unique_line_numbers(line_numbers: Iterable[int]) -> None:
    repeated = [no for no, count in Counter(line_numbers).items() if count > 1]
    if repeated:
        raise invalid(f"line_no {repeated[0]} appears twice; send one entry per line", "lines")


# --- dispensing ------------------------------------------------------------------------------


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
    at = handed_over_at(state, command.dispensed_at, now, "dispensed_at")
    day = local_day(at, command.pharmacy.value)
    _check_dispensable(state, day)
    asked = {requested.line_no for requested in command.lines}
    allowed = {
        a.line_no: a
        for a in allowances(state, coverage, at, command.pharmacy.value, lines=asked, next_on=False)
    }
    for requested in command.lines:
        _check_remaining(state, requested)
        _check_allowed(allowed[requested.line_no], requested)
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
    )
    return Dispensed(recorded, _coverage_extended(state, recorded, day, coverage, now))


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
    _check_line_count(command.lines, "lines")
    _check_unique_line_numbers(line.line_no for line in command.lines)
    for index, requested in enumerate(command.lines):
        field = f"lines[{index}]"
        line = state.line(requested.line_no)
        if line is None:
            raise invalid(f"this prescription has no line {requested.line_no}", f"{field}.line_no")
        if requested.quantity < 1:
            raise invalid(
                f"quantity must be at least 1, got {requested.quantity}", f"{field}.quantity"
            )
        if requested.product is not None:
            _check_product(requested.product, f"{field}.product")
        if line.prescribed.product.system == "DCI" and (
            requested.product is None or requested.product.system != "CIP13"
        ):
            raise invalid(
                f"line {requested.line_no} is prescribed by substance (DCI): "
                "name the CIP13 pack handed over",
                f"{field}.product",
            )
        if catalogue is not None and requested.product is not None:
            _check_substitute(line.prescribed.product, requested.product, field, catalogue)


def _check_substitute(
    prescribed: Product, handed: Product, field: str, catalogue: Catalogue
) -> None:
    """A substitute is a pack of the same medicine or generic group, or for a line written by
    substance, a pack of that substance alone (domain.catalogue.substitute_allowed). A pack the
    catalogue does not know is taken at the pharmacist's word, unless the catalogue is strict."""
    handed_facts = catalogue.facts(handed, f"{field}.product")
    if handed_facts is None or handed == prescribed:
        return
    if prescribed.system == "DCI":
        allowed = substitute_allowed(None, prescribed.label, handed_facts)
    else:
        code = prescribed.code or ""
        prescribed_facts = catalogue.packs.facts(code) if prescribed.system == "CIP13" else None
        if prescribed_facts is None:
            return  # nothing to compare with: the prescribed pack is not in the catalogue
        allowed = substitute_allowed(prescribed_facts, None, handed_facts)
    if not allowed:
        name = handed_facts.label or handed.label
        raise DomainError(
            "substitution_not_allowed",
            f"{name} ({handed.code}) may not be given for {prescribed.label}: "
            "neither the same medicine, nor its generic group, nor its substance",
            field=f"{field}.product",
        )


def _check_dispensable(state: Prescription, today: date) -> None:
    if state.cancelled:
        raise DomainError("prescription_cancelled", "this prescription was cancelled")
    if state.fully_dispensed:
        raise DomainError("already_dispensed", "everything on this prescription was dispensed")
    if state.is_expired(today):
        raise DomainError(
            "prescription_expired",
            f"this prescription could be dispensed until {state.expires_on()}",
        )


def _check_sendable_unseen(state: Prescription, today: date) -> None:
    """`_check_dispensable` from what a prescriber under opposition sees: no execution data."""
    if state.cancelled:
        raise DomainError("prescription_cancelled", "this prescription was cancelled")
    deadline = add_months(state.issued_on, FIRST_DISPENSING_WINDOW_MONTHS)
    if today > deadline:
        raise DomainError(
            "prescription_expired", f"this prescription was to be presented by {deadline}"
        )


def _check_remaining(state: Prescription, requested: DispenseLine) -> None:
    remaining = state.remaining(requested.line_no)
    if remaining == 0:
        raise DomainError(
            "already_dispensed", f"line {requested.line_no} has nothing left to dispense"
        )
    if requested.quantity > remaining:
        raise DomainError(
            "quantity_exceeds_remaining",
            f"line {requested.line_no} has {remaining} left, {requested.quantity} asked",
        )


def _check_allowed(allowed: Allowance, requested: DispenseLine) -> None:
    if requested.quantity <= allowed.max_quantity:
        return
    code = allowed.reason
    # Cancellation, expiry and what remains were checked first: a dispensing rule limits it.
    assert code is not None
    raise DomainError(
        code,
        f"line {requested.line_no}: at most {allowed.max_quantity} may be dispensed now, "
        f"{requested.quantity} asked ({allowed.why})",
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
        if line.prescribed.narcotic:
            first_day, until = period_covered(state, line, day, given.quantity)
            periods.append(
                CoveredPeriod(
                    prescription_id=state.prescription_id,
                    dispensation_id=recorded.dispensation_id,
                    line_no=given.line_no,
                    first_day=first_day,
                    until=until,
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
    return DispensedLine(
        line_no=requested.line_no,
        quantity=requested.quantity,
        product=requested.product or line.prescribed.product,
    )


# --- corrections -----------------------------------------------------------------------------


def withdraw(
    state: Prescription, command: Withdraw, now: Moment, coverage: NarcoticCoverage | None = None
) -> tuple[DispensationWithdrawn, NarcoticPeriodsReleased | None] | None:
    """Withdraw a dispensing recorded in error: its pharmacy, within 7 days, before billing.

    Withdrawing one already withdrawn records nothing (None): a retry after a lost answer is
    answered as the first call was. The patient's coverage releases the days it covered.
    """
    dispensation = state.dispensation(command.dispensation_id)
    if dispensation is None or dispensation.finess != command.pharmacy.value:
        raise DomainError("not_found", "no such dispensation of your pharmacy on this prescription")
    if not command.reason.strip():
        raise invalid("say why the dispensing is withdrawn", "reason")
    if dispensation.withdrawn:
        return None
    if dispensation.billed:
        raise DomainError("already_billed", "a billed dispensing can no longer be withdrawn")
    if now.at - dispensation.dispensed_at > WITHDRAWAL_WINDOW:
        raise DomainError(
            "withdrawal_window_closed",
            f"a dispensing may be withdrawn within 7 days of {dispensation.dispensed_at}",
        )
    withdrawn = DispensationWithdrawn(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        dispensation_id=dispensation.dispensation_id,
        finess=command.pharmacy.value,
        pharmacist_rpps=command.pharmacist.value,
        reason=command.reason,
    )
    released = (
        coverage.released(state.prescription_id, dispensation.dispensation_id, now.at)
        if coverage is not None
        else None
    )
    return withdrawn, released


def record_adaptation(
    state: Prescription, command: RecordAdaptation, now: Moment
) -> AdaptationRecorded:
    """A change to a line made with the prescriber's agreement, with its date (CSP)."""
    field = "line_no"
    if state.line(command.line_no) is None:
        raise invalid(f"this prescription has no line {command.line_no}", field)
    if not command.description.strip():
        raise invalid("describe the adaptation", "description")
    today = local_day(now.at, command.pharmacy.value)
    if not state.issued_on <= command.agreed_on <= today:
        raise invalid(f"the agreement is dated between {state.issued_on} and {today}", "agreed_on")
    if command.dispensation_id is not None:
        dispensation = state.dispensation(command.dispensation_id)
        if dispensation is None or dispensation.finess != command.pharmacy.value:
            raise invalid("no such dispensation of your pharmacy", "dispensation_id")
    if state.cancelled:
        raise DomainError("prescription_cancelled", "this prescription was cancelled")
    return AdaptationRecorded(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        line_no=command.line_no,
        description=command.description,
        agreed_by_rpps=command.agreed_by.value,
        agreed_on=command.agreed_on,
        finess=command.pharmacy.value,
        pharmacist_rpps=command.pharmacist.value,
        dispensation_id=command.dispensation_id,
    )


# --- billing ---------------------------------------------------------------------------------

# Per line of an invoice: a pack costs at most a few thousand euros; 100,000 EUR per line is far
# beyond any real invoice, and keeps every sum of a batch's amounts an exact 64-bit integer.
MAX_AMOUNT_CENTS = 10_000_000


def bill(
    state: Prescription, command: Bill, now: Moment, *, invoice_number_used: bool = False
) -> BillingRecorded:
    """Attach billing data to one dispensation (second step of exécution en 2 temps).

    `invoice_number_used`: the pharmacy already used this invoice number, on any prescription
    (the adapter knows it from the invoice number's claim; the state only knows its own).
    """
    dispensation = _billable(state, command)
    _check_bill_request(command)
    if dispensation.withdrawn:
        raise DomainError(
            "dispensation_withdrawn", "this dispensation was withdrawn: there is nothing to bill"
        )
    if dispensation.billed:
        raise DomainError("already_billed", "this dispensation was already billed")
    if invoice_number_used or _invoice_number_in(state, command):
        raise DomainError(
            "invoice_number_used",
            f"pharmacy {command.pharmacy.value} already used invoice number "
            f"{command.invoice_number!r}",
            field="invoice_number",
        )
    for line in command.lines:
        given = dispensation.quantity_of(line.line_no)
        if line.quantity > given:
            raise DomainError(
                "billing_exceeds_dispensed",
                f"line {line.line_no}: {line.quantity} billed but {given} dispensed",
            )
    return BillingRecorded(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        dispensation_id=command.dispensation_id,
        finess=command.pharmacy.value,
        pharmacist_rpps=command.pharmacist.value,
        invoice_number=command.invoice_number,
        lines=command.lines,
    )


def _billable(state: Prescription, command: Bill) -> Dispensation:
    dispensation = state.dispensation(command.dispensation_id)
    if dispensation is None:
        raise DomainError("not_found", "no such dispensation on this prescription")
    if dispensation.finess != command.pharmacy.value:
        raise DomainError("forbidden", "only the pharmacy that dispensed may bill it")
    return dispensation


def _check_bill_request(command: Bill) -> None:
    if not command.invoice_number.strip():
        raise invalid("an invoice number is needed", "invoice_number")
    _check_line_count(command.lines, "lines")
    _check_unique_line_numbers(line.line_no for line in command.lines)
    for index, line in enumerate(command.lines):
        _check_range(line.quantity, 1, MAX_PACKS_PER_LINE, f"lines[{index}].quantity")
        _check_range(line.amount_cents, 0, MAX_AMOUNT_CENTS, f"lines[{index}].amount_cents")


def _invoice_number_in(state: Prescription, command: Bill) -> bool:
    return any(
        d.finess == command.pharmacy.value and d.invoice_number == command.invoice_number
        for d in state.dispensations
    )


# --- cancelling, consent, transmission -------------------------------------------------------


def cancel(state: Prescription, reason: str, now: Moment) -> PrescriptionCancelled:
    """Cancel what remains; what was already dispensed stays recorded.

    A fully dispensed prescription may be cancelled too (nothing is left, nothing changes):
    refusing it would tell a prescriber under the patient's opposition that it was dispensed.
    """
    if state.cancelled:
        raise DomainError("prescription_cancelled", "this prescription was already cancelled")
    return PrescriptionCancelled(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        prescriber_rpps=state.prescriber_rpps,
        reason=reason,
    )


def change_consent(
    state: Prescription, consent: bool, changed_by: ConsentActor, now: Moment
) -> ExecutionViewConsentChanged | None:
    """Record the patient's OUI/NON; answering what is already recorded records nothing."""
    if consent == state.execution_view_consent:
        return None
    return ExecutionViewConsentChanged(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        consent=consent,
        changed_by=changed_by,
    )


def transmit(
    state: Prescription,
    pharmacy: Finess,
    message: str,
    now: Moment,
    sent_by: TransmissionSender = "patient",
) -> PrescriptionTransmitted:
    """The patient, or the prescriber who wrote it (a hospital at discharge, an EHPAD's doctor),
    sends the prescription to a pharmacy so it can be prepared before the visit.

    A prescriber under the patient's opposition is refused only for what they may know (a
    cancellation, the presentation deadline): refusing a fully dispensed prescription would
    tell them it was dispensed. Such a sending enters no inbox, as nothing is left."""
    today = local_day(now.at, pharmacy.value)
    if sent_by == "prescriber" and not state.execution_view_consent:
        _check_sendable_unseen(state, today)
    else:
        _check_dispensable(state, today)
    return PrescriptionTransmitted(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        finess=pharmacy.value,
        message=message,
        sent_by=sent_by,
    )


def send_to_patient(state: Prescription, message: str, now: Moment) -> PrescriptionSentToPatient:
    """The prescriber sends the ordonnance to the patient's Mon espace santé mailbox. A
    cancelled prescription is not sent: the patient would take it for one to present."""
    if state.cancelled:
        raise DomainError("prescription_cancelled", "this prescription was cancelled")
    return PrescriptionSentToPatient(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        prescriber_rpps=state.prescriber_rpps,
        message=message,
    )
