"""A prescription's current state, folded from its events, and what follows from it.

The state is a frozen value: `evolve(state, event)` returns a new one. Rules that depend on
the calendar (the presentation window, the 12-month life) take `today` as an argument, so the
model stays pure and testable on any date.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date, datetime
from functools import singledispatch
from typing import Literal

import msgspec

from domain import events
from domain.conversation_state import Conversation, evolve_conversation
from domain.events import (
    BilledLine,
    ConversationEvent,
    DispensedLine,
    Event,
    PrescribedLine,
    PrescriptionKind,
    Procedure,
    Product,
    TransmissionSender,
)
from domain.units import Counting, PackSizes, counting, given

Status = Literal["active", "partially_dispensed", "dispensed", "cancelled", "expired"]

# R5132-21/22 CSP: first presentation within 3 months; no prescription runs beyond 12 months.
FIRST_DISPENSING_WINDOW_MONTHS = 3
LIFETIME_MONTHS = 12


class LineState(msgspec.Struct, frozen=True, kw_only=True):
    prescribed: PrescribedLine
    dispensed: int = 0
    # The substance of a product whose prescribing conditions forbid overlap ("chevauchement
    # interdit"), as the catalogue knows the pack (`domain.catalogue.catalogued`); None for a
    # narcotic (its own rule) and for every other product.
    overlap_substance: str | None = None

    @property
    def covers_days(self) -> bool:
        """Its dispensings cover days on the patient's coverage stream (`domain.coverage`),
        which no other prescription of the same kind may cover again."""
        return self.prescribed.narcotic or self.overlap_substance is not None

    @property
    def line_no(self) -> int:
        return self.prescribed.line_no


class Dispensation(msgspec.Struct, frozen=True, kw_only=True):
    dispensation_id: str
    finess: str
    pharmacist_rpps: str
    dispensed_at: datetime
    recorded_at: datetime
    lines: tuple[DispensedLine, ...]
    invoice_number: str | None = None
    # What the pharmacy billed (exécution en 2 temps): kept so that the insurer's invoice can
    # be compared with it (reconciliation's `amount_mismatch`).
    billed_lines: tuple[BilledLine, ...] = ()
    withdrawn_at: datetime | None = None
    lines_as_sent: tuple[str, ...] = ()  # as DispensationRecorded keeps them
    # Given under one of the pharmacist's own procedures (`domain.procedures`): beyond what the
    # prescription itself gives, so it does not count against its lines.
    procedure: Procedure | None = None

    @property
    def billed(self) -> bool:
        return self.invoice_number is not None

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_at is not None

    def quantity_of(self, line_no: int) -> int:
        return sum(line.quantity for line in self.lines if line.line_no == line_no)


class Adaptation(msgspec.Struct, frozen=True, kw_only=True):
    """A change made by the pharmacist with the prescriber's agreement, as recorded."""

    line_no: int
    description: str
    finess: str
    pharmacist_rpps: str
    agreed_by_rpps: str
    agreed_on: date
    recorded_at: datetime
    dispensation_id: str | None = None


class Transmission(msgspec.Struct, frozen=True, kw_only=True):
    finess: str
    message: str
    transmitted_at: datetime
    sent_by: TransmissionSender


class SentToPatient(msgspec.Struct, frozen=True, kw_only=True):
    """The ordonnance sent to the patient's Mon espace santé mailbox by its prescriber."""

    message: str
    sent_at: datetime


class Prescription(msgspec.Struct, frozen=True, kw_only=True):
    prescription_id: str
    version: int
    issued_at: datetime
    issued_on: date
    kind: PrescriptionKind
    prescriber_rpps: str
    patient_ins: str
    execution_view_consent: bool
    lines: tuple[LineState, ...]
    dispensations: tuple[Dispensation, ...] = ()
    transmissions: tuple[Transmission, ...] = ()
    sent_to_patient: tuple[SentToPatient, ...] = ()
    adaptations: tuple[Adaptation, ...] = ()
    cancelled_at: datetime | None = None
    lines_as_sent: tuple[str, ...] = ()  # as PrescriptionIssued keeps them
    # The units of its packs, as the catalogue says today (`domain.units`); None: counted in packs.
    pack_sizes: PackSizes | None = None
    # Its conversations (MSSanté), folded in by the read side only: each is its own stream, so
    # the write side decides a conversation from that stream, never from here.
    conversations: tuple[Conversation, ...] = ()

    @property
    def folded_version(self) -> int:
        """Grows with every event folded in, the conversations' included: the read side keeps
        the row of the state that has seen the most."""
        return self.version + sum(c.version for c in self.conversations)

    def has_folded(self, event: Event) -> bool:
        """Whether this state has seen `event` already (a redelivery), by its stream's version."""
        if isinstance(event, ConversationEvent):
            seen = next(
                (c for c in self.conversations if c.conversation_id == event.conversation_id),
                None,
            )
            return seen is not None and event.version <= seen.version
        return event.version <= self.version

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None

    @property
    def standing_dispensations(self) -> tuple[Dispensation, ...]:
        """The dispensings that count: a withdrawn one counts nowhere."""
        return tuple(d for d in self.dispensations if not d.withdrawn)

    @property
    def has_dispensations(self) -> bool:
        """Whether the prescription itself was dispensed (a procedure's dispensing does not
        start its 12 months)."""
        return any(not d.withdrawn and d.procedure is None for d in self.dispensations)

    @property
    def fully_dispensed(self) -> bool:
        return all(self.amount_left(line, self.counting(line)) <= 0 for line in self.lines)

    def line(self, line_no: int) -> LineState | None:
        return next((line for line in self.lines if line.line_no == line_no), None)

    def remaining(self, line_no: int) -> int:
        """Packs of the prescribed size that may still be handed over on the line."""
        line = self.line(line_no)
        if line is None or self.cancelled:
            return 0
        count = self.counting(line)
        return self.amount_left(line, count) // count.per_pack

    def handed_over(self, line_no: int) -> list[DispensedLine]:
        """The packs of the line its standing dispensings handed over on the prescription
        itself (a procedure's are `given_under`)."""
        return self.given_under(None, line_no)

    def given_under(self, procedure: Procedure | None, line_no: int) -> list[DispensedLine]:
        """The packs of the line the standing dispensings under `procedure` handed over (None:
        on the prescription itself)."""
        return [
            given_line
            for dispensation in self.standing_dispensations
            if dispensation.procedure == procedure
            for given_line in dispensation.lines
            if given_line.line_no == line_no
        ]

    def counting(self, line: LineState, *, handing: Product | None = None) -> Counting:
        """How the line is counted (`domain.units`), `handing` being a pack about to be given."""
        handed = [given_line.product for given_line in self.handed_over(line.line_no)]
        if handing is not None:
            handed.append(handing)
        return counting(self.pack_sizes, line.prescribed.product, handed)

    def amount_left(self, line: LineState, count: Counting) -> int:
        """What the line has left in `count` (units, or packs), whatever a cancellation."""
        return count.prescribed(line.prescribed) - given(count, self.handed_over(line.line_no))

    def dispensation(self, dispensation_id: str) -> Dispensation | None:
        return next((d for d in self.dispensations if d.dispensation_id == dispensation_id), None)

    def expires_on(self) -> date:
        """Last day a dispensing is accepted: 3 months until the first one, then 12 months."""
        months = LIFETIME_MONTHS if self.has_dispensations else FIRST_DISPENSING_WINDOW_MONTHS
        return add_months(self.issued_on, months)

    def is_expired(self, today: date) -> bool:
        return today > self.expires_on()

    def status(self, today: date) -> Status:
        if self.cancelled:
            return "cancelled"
        if self.fully_dispensed:
            return "dispensed"
        if self.is_expired(today):
            return "expired"
        return "partially_dispensed" if self.has_dispensations else "active"

    def dispensed_by_other_than(self, finess: str) -> bool:
        """Whether another pharmacy has already dispensed any of it (seed 000)."""
        return any(d.finess != finess for d in self.standing_dispensations)


def add_months(day: date, months: int) -> date:
    """Same day `months` later, clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@singledispatch
def evolve(event: Event, state: Prescription | None) -> Prescription:
    """Apply one event to the state; every event type registers its own rule below."""
    msg = f"no evolve rule for {type(event).__name__}"
    raise TypeError(msg)


@evolve.register
def _issued(event: events.PrescriptionIssued, _: Prescription | None) -> Prescription:
    return Prescription(
        prescription_id=event.prescription_id,
        version=event.version,
        issued_at=event.at,
        issued_on=event.issued_on,
        kind=event.kind,
        prescriber_rpps=event.prescriber_rpps,
        patient_ins=event.patient_ins,
        execution_view_consent=event.execution_view_consent,
        lines=tuple(LineState(prescribed=line) for line in event.lines),
        lines_as_sent=event.lines_as_sent,
    )


@evolve.register
def _dispensed(event: events.DispensationRecorded, state: Prescription | None) -> Prescription:
    current = _existing(state, event)
    dispensation = Dispensation(
        dispensation_id=event.dispensation_id,
        finess=event.finess,
        pharmacist_rpps=event.pharmacist_rpps,
        dispensed_at=event.dispensed_at,
        recorded_at=event.at,
        lines=event.lines,
        lines_as_sent=event.lines_as_sent,
        procedure=event.procedure,
    )
    return _counted(current, event.version, (*current.dispensations, dispensation))


@evolve.register
def _withdrawn(event: events.DispensationWithdrawn, state: Prescription | None) -> Prescription:
    current = _existing(state, event)
    dispensations = tuple(
        msgspec.structs.replace(d, withdrawn_at=event.at)
        if d.dispensation_id == event.dispensation_id
        else d
        for d in current.dispensations
    )
    return _counted(current, event.version, dispensations)


def _counted(
    current: Prescription, version: int, dispensations: tuple[Dispensation, ...]
) -> Prescription:
    """The state with these dispensations, each line's count net of the withdrawn ones and of
    what a procedure gave beyond the prescription."""
    given = {line.line_no: 0 for line in current.lines}
    for dispensation in dispensations:
        if not dispensation.withdrawn and dispensation.procedure is None:
            for line in dispensation.lines:
                given[line.line_no] += line.quantity
    return msgspec.structs.replace(
        current,
        version=version,
        lines=tuple(
            msgspec.structs.replace(line, dispensed=given[line.line_no]) for line in current.lines
        ),
        dispensations=dispensations,
    )


@evolve.register
def _adapted(event: events.AdaptationRecorded, state: Prescription | None) -> Prescription:
    current = _existing(state, event)
    adaptation = Adaptation(
        line_no=event.line_no,
        description=event.description,
        agreed_by_rpps=event.agreed_by_rpps,
        agreed_on=event.agreed_on,
        finess=event.finess,
        pharmacist_rpps=event.pharmacist_rpps,
        recorded_at=event.at,
        dispensation_id=event.dispensation_id,
    )
    return msgspec.structs.replace(
        current, version=event.version, adaptations=(*current.adaptations, adaptation)
    )


@evolve.register
def _billed(event: events.BillingRecorded, state: Prescription | None) -> Prescription:
    current = _existing(state, event)
    return msgspec.structs.replace(
        current,
        version=event.version,
        dispensations=tuple(
            msgspec.structs.replace(
                d, invoice_number=event.invoice_number, billed_lines=event.lines
            )
            if d.dispensation_id == event.dispensation_id
            else d
            for d in current.dispensations
        ),
    )


@evolve.register
def _cancelled(event: events.PrescriptionCancelled, state: Prescription | None) -> Prescription:
    current = _existing(state, event)
    return msgspec.structs.replace(current, version=event.version, cancelled_at=event.at)


@evolve.register
def _consent(event: events.ExecutionViewConsentChanged, state: Prescription | None) -> Prescription:
    current = _existing(state, event)
    return msgspec.structs.replace(
        current, version=event.version, execution_view_consent=event.consent
    )


@evolve.register
def _transmitted(event: events.PrescriptionTransmitted, state: Prescription | None) -> Prescription:
    current = _existing(state, event)
    transmission = Transmission(
        finess=event.finess, message=event.message, transmitted_at=event.at, sent_by=event.sent_by
    )
    return msgspec.structs.replace(
        current, version=event.version, transmissions=(*current.transmissions, transmission)
    )


@evolve.register
def _sent_to_patient(
    event: events.PrescriptionSentToPatient, state: Prescription | None
) -> Prescription:
    current = _existing(state, event)
    sent = SentToPatient(message=event.message, sent_at=event.at)
    return msgspec.structs.replace(
        current, version=event.version, sent_to_patient=(*current.sent_to_patient, sent)
    )


@evolve.register
def _conversed(event: ConversationEvent, state: Prescription | None) -> Prescription:
    """A conversation about the prescription moved on: its own fold, kept beside the
    prescription's for the read side's lists (the prescription's version does not change)."""
    current = _existing(state, event)
    others = [c for c in current.conversations if c.conversation_id != event.conversation_id]
    before = next(
        (c for c in current.conversations if c.conversation_id == event.conversation_id), None
    )
    return msgspec.structs.replace(
        current, conversations=(*others, evolve_conversation(event, before))
    )


def _existing(state: Prescription | None, event: Event) -> Prescription:
    if state is None:
        msg = f"{type(event).__name__} before PrescriptionIssued for {event.prescription_id}"
        raise ValueError(msg)
    return state


def fold(events: Iterable[Event], state: Prescription | None = None) -> Prescription | None:
    """The state after these events, starting from `state` (None: nothing issued yet)."""
    for event in events:
        state = evolve(event, state)
    return state
