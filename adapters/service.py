"""The use cases behind the API: load a prescription, check who asks, decide, append.

One prescription is one consistency boundary. A command loads the prescription's events,
decides against that state, and appends at the next version; if another writer appended
first (two pharmacies at once), the append fails on the version and the command is decided
again against the new state. So the loser of a race gets its 201 if enough remains, and a
409 otherwise; never a 5xx, never a pack dispensed twice.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

import msgspec

from adapters.eventstore import EventLog, IdempotencyRecord, IntegrityError, InvoiceClaim
from domain import commands
from domain.actors import Actor, Role
from domain.calendar import local_day, paris_day
from domain.catalogue import PackLookup, catalogued
from domain.commands import (
    Bill,
    Catalogue,
    Dispense,
    IssuePrescription,
    Moment,
    RecordAdaptation,
    Withdraw,
)
from domain.coverage import CoverageEvent, NarcoticCoverage, coverage_stream_of
from domain.dispensable import Allowance, allowances
from domain.errors import DomainError
from domain.events import ConsentActor, Event
from domain.identifiers import Finess, InvalidIdentifier, PrescriptionNumber
from domain.prescription import Prescription, fold
from projections.views import DispensationReceipt, dispensation_view, receipt_of

MAX_ATTEMPTS = 200

E = TypeVar("E", bound=Event)


def paris_clock() -> Moment:
    """Events are stamped in UTC; prescribing uses the day in France (Europe/Paris), and
    dispensing the day at the pharmacy (`domain.calendar`)."""
    now = datetime.now(UTC)
    return Moment(at=now, today=paris_day(now))


class IdempotentRequest(msgspec.Struct, frozen=True):
    """A caller-scoped `Idempotency-Key` and a fingerprint of what was asked with it."""

    key: str
    fingerprint: str


class Answer(msgspec.Struct, frozen=True):
    status: int
    body: bytes


class Attempt(msgspec.Struct, frozen=True):
    """One decision of an answered command: its answer and what to append for it."""

    answer: Answer
    events: Sequence[Event | CoverageEvent]
    claim: InvoiceClaim | None = None


NOT_FOUND = DomainError("not_found", "no such prescription")


class PrescriptionService:
    def __init__(
        self,
        log: EventLog,
        clock: Callable[[], Moment] = paris_clock,
        after_append: Callable[[], None] = lambda: None,
        catalogue: Callable[[], PackLookup | None] = lambda: None,
        catalogue_strict: bool = False,
    ) -> None:
        self.log = log
        self.clock = clock
        # The catalogue snapshot in force (None: none imported), taken once per command.
        self._packs = catalogue
        self._strict = catalogue_strict
        # A failpoint for crash tests: runs after the append is durable, before answering.
        self._after_append = after_append

    # --- reads ---------------------------------------------------------------------------------

    def read(self, actor: Actor, prescription_id: str) -> Prescription:
        """The prescription as its own events say now: read-your-writes for every caller."""
        state = self._load(prescription_id)
        if not _may_read(actor, state):
            raise NOT_FOUND
        return state

    def history(self, actor: Actor, prescription_id: str) -> list[Event]:
        _require_role(actor, "patient", "insurer")
        number = _number(prescription_id)
        events = self.log.events_of(number.value)
        state = fold(events)
        if state is None or not (actor.role == "insurer" or actor.is_patient(state.patient_ins)):
            raise NOT_FOUND
        return events

    # --- commands ------------------------------------------------------------------------------

    def issue(self, actor: Actor, command: IssuePrescription) -> Prescription:
        _require_role(actor, "prescriber")
        while True:
            number = PrescriptionNumber.generate()
            event = commands.issue(command, number, self.clock(), self._catalogue())
            try:
                self._append([event])
            except IntegrityError:
                continue  # a number already drawn (1 in 2**95): draw another
            return _evolved(None, event)

    def dispense(
        self,
        actor: Actor,
        prescription_id: str,
        command: Dispense,
        idempotency_key: str | None = None,
    ) -> Answer:
        """Record a dispensing; with an `Idempotency-Key`, a retry replays the first answer."""
        _require_role(actor, "pharmacist")
        scoped = (
            _scoped(actor, idempotency_key, prescription_id, command) if idempotency_key else None
        )

        def attempt() -> Attempt:
            catalogue = self._catalogue()
            state = self._load_catalogued(prescription_id, catalogue)
            coverage = self._coverage_for(state, {line.line_no for line in command.lines})
            now = self.clock()
            dispensation_id = str(uuid.uuid4())
            dispensed = commands.dispense(
                state, command, dispensation_id, now, coverage, catalogue=catalogue
            )
            event = dispensed.recorded
            after = _evolved(state, event)
            answer = Answer(201, _encode_receipt(after, event.dispensation_id, command, now))
            return Attempt(answer, _present(event, dispensed.coverage))

        return self._answer_once(scoped, attempt)

    def dispensable(
        self, actor: Actor, prescription_id: str, at: datetime | None
    ) -> tuple[datetime, tuple[Allowance, ...]]:
        """What a dispensing at `at` (default now) in the caller's pharmacy may give, per line."""
        _require_role(actor, "pharmacist")
        assert actor.finess is not None  # pharmacist tokens carry the pharmacy
        state = self._load_catalogued(prescription_id, self._catalogue())
        coverage = self._coverage_for(state, {line.line_no for line in state.lines})
        instant = commands.handed_over_at(state, at, self.clock(), "at")
        return instant, allowances(state, coverage, instant, actor.finess)

    def withdraw(self, actor: Actor, prescription_id: str, command: Withdraw) -> Prescription:
        _require_role(actor, "pharmacist")
        for _ in range(MAX_ATTEMPTS):
            state = self._load_catalogued(prescription_id, self._catalogue())
            coverage = self._coverage_for(state, {line.line_no for line in state.lines})
            decided = commands.withdraw(state, command, self.clock(), coverage)
            if decided is None:
                return state
            withdrawn, released = decided
            if self._try_append(_present(withdrawn, released)):
                return _evolved(state, withdrawn)
        raise _contention()

    def record_adaptation(
        self, actor: Actor, prescription_id: str, command: RecordAdaptation
    ) -> Prescription:
        _require_role(actor, "pharmacist")
        return self._decide(
            prescription_id, lambda state: commands.record_adaptation(state, command, self.clock())
        )

    def bill(
        self,
        actor: Actor,
        prescription_id: str,
        command: Bill,
        idempotency_key: str | None = None,
    ) -> Answer:
        """Record a dispensation's billing under an invoice number this pharmacy never used.

        The number is claimed in the same append as the billing (`InvoiceClaim`): when two
        billings race for one number, the loser's append fails, and deciding again finds the
        number taken (409 `invoice_number_used`). With an `Idempotency-Key`, a retry replays
        the first answer, exactly as for dispensing."""
        _require_role(actor, "pharmacist")
        scoped = (
            _scoped(actor, idempotency_key, prescription_id, command) if idempotency_key else None
        )

        def attempt() -> Attempt:
            state = self._load(prescription_id)
            used = self.log.invoice_claim(command.pharmacy.value, command.invoice_number)
            event = commands.bill(state, command, self.clock(), invoice_number_used=bool(used))
            answer = Answer(201, _encode_billed(_evolved(state, event), command.dispensation_id))
            claim = InvoiceClaim(
                finess=event.finess,
                invoice_number=event.invoice_number,
                prescription_id=event.prescription_id,
                dispensation_id=event.dispensation_id,
            )
            return Attempt(answer, [event], claim)

        return self._answer_once(scoped, attempt)

    def cancel(self, actor: Actor, prescription_id: str, reason: str) -> Prescription:
        _require_role(actor, "prescriber")

        def decide(state: Prescription) -> Event:
            if not actor.wrote(state.prescriber_rpps):
                raise NOT_FOUND
            return commands.cancel(state, reason, self.clock())

        return self._decide(prescription_id, decide)

    def change_consent(self, actor: Actor, prescription_id: str, consent: bool) -> Prescription:
        _require_role(actor, "patient", "insurer")

        def decide(state: Prescription) -> Event | None:
            if actor.role == "patient" and not actor.is_patient(state.patient_ins):
                raise NOT_FOUND
            changed_by: ConsentActor = "patient" if actor.role == "patient" else "insurer"
            return commands.change_consent(state, consent, changed_by, self.clock())

        return self._decide(prescription_id, decide)

    def transmit(
        self, actor: Actor, prescription_id: str, pharmacy: Finess, message: str
    ) -> Prescription:
        _require_role(actor, "patient", "prescriber")

        def decide(state: Prescription) -> Event:
            # The patient, or the prescriber who wrote it; another one learns nothing (404).
            if actor.is_patient(state.patient_ins):
                return commands.transmit(state, pharmacy, message, self.clock())
            if actor.wrote(state.prescriber_rpps):
                return commands.transmit(state, pharmacy, message, self.clock(), "prescriber")
            raise NOT_FOUND

        return self._decide(prescription_id, decide)

    def ready(self) -> int:
        """The log's last position; raises if the database cannot be reached."""
        return self.log.last_position()

    # --- plumbing ------------------------------------------------------------------------------

    def _decide(
        self, prescription_id: str, decide: Callable[[Prescription], Event | None]
    ) -> Prescription:
        for _ in range(MAX_ATTEMPTS):
            state = self._load(prescription_id)
            event = decide(state)
            if event is None:
                return state
            if self._try_append([event]):
                return _evolved(state, event)
        raise _contention()

    def _answer_once(
        self, scoped: IdempotentRequest | None, attempt: Callable[[], Attempt]
    ) -> Answer:
        """Decide and append until no other writer got there first; with an `Idempotency-Key`,
        a request already answered is answered again from its record, and a new answer is
        recorded in the same append as its events."""
        for _ in range(MAX_ATTEMPTS):
            if scoped is not None and (replay := self._replay(scoped)) is not None:
                return replay
            decided = attempt()
            record = _record(scoped, decided.answer) if scoped else None
            if self._try_append(decided.events, record, decided.claim):
                return decided.answer
        raise _contention()

    def _catalogue(self) -> Catalogue | None:
        """The catalogue for one command; None while none is imported (v1 behaviour)."""
        packs = self._packs()
        return None if packs is None else Catalogue(packs, strict=self._strict)

    def _load_catalogued(self, prescription_id: str, catalogue: Catalogue | None) -> Prescription:
        """The prescription with its lines as the catalogue knows their packs (narcotic,
        fractioning): the rules of dispensing follow the product, whatever was written."""
        return catalogued(self._load(prescription_id), catalogue.packs if catalogue else None)

    def _coverage_for(self, state: Prescription, line_nos: set[int]) -> NarcoticCoverage | None:
        """The patient's narcotic coverage, read only when one of these lines is a narcotic."""
        if not any(line.prescribed.narcotic for line in state.lines if line.line_no in line_nos):
            return None
        return self.log.coverage(coverage_stream_of(state.patient_ins))

    def _load(self, prescription_id: str) -> Prescription:
        state = fold(self.log.events_of(_number(prescription_id).value))
        if state is None:
            raise NOT_FOUND
        return state

    def _try_append(
        self,
        events: Sequence[Event | CoverageEvent],
        record: IdempotencyRecord | None = None,
        claim: InvoiceClaim | None = None,
    ) -> bool:
        """Append, or report that another writer got there first (then back off a little)."""
        try:
            self._append(events, record, claim)
        except IntegrityError:
            time.sleep(random.uniform(0, 0.005))
            return False
        return True

    def _append(
        self,
        events: Sequence[Event | CoverageEvent],
        record: IdempotencyRecord | None = None,
        claim: InvoiceClaim | None = None,
    ) -> None:
        self.log.append(events, record, claim)
        self._after_append()

    def _replay(self, scoped: IdempotentRequest) -> Answer | None:
        record = self.log.idempotency_record(scoped.key)
        if record is None:
            return None
        if record.fingerprint != scoped.fingerprint:
            raise DomainError(
                "idempotency_key_reused",
                "this Idempotency-Key was already used for a different request",
                field="Idempotency-Key",
            )
        return Answer(record.status, record.body)


def _number(prescription_id: str) -> PrescriptionNumber:
    """A mistyped number (bad check character) is simply not found: never another prescription."""
    try:
        return PrescriptionNumber.parse(prescription_id)
    except InvalidIdentifier:
        raise NOT_FOUND from None


def _may_read(actor: Actor, state: Prescription) -> bool:
    match actor.role:
        case "pharmacist" | "insurer":
            return True
        case "prescriber":
            return actor.wrote(state.prescriber_rpps)
        case "patient":
            return actor.is_patient(state.patient_ins)


def _present(*events: Event | CoverageEvent | None) -> list[Event | CoverageEvent]:
    """The events one decision appends together, in one transaction."""
    return [event for event in events if event is not None]


def _require_role(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        raise DomainError("forbidden", f"this operation is for the role {' or '.join(roles)}")


def _evolved(state: Prescription | None, event: Event) -> Prescription:
    after = fold([event], state)
    assert after is not None
    return after


def _encode_receipt(
    state: Prescription, dispensation_id: str, command: Dispense, now: Moment
) -> bytes:
    pharmacy = command.pharmacy.value
    receipt: DispensationReceipt = receipt_of(
        state, dispensation_id, pharmacy, local_day(now.at, pharmacy)
    )
    return msgspec.json.encode(receipt)


def _encode_billed(state: Prescription, dispensation_id: str) -> bytes:
    dispensation = state.dispensation(dispensation_id)
    assert dispensation is not None  # billing succeeded on it
    return msgspec.json.encode(dispensation_view(dispensation))


def _scoped(
    actor: Actor, key: str, prescription_id: str, command: Dispense | Bill
) -> IdempotentRequest:
    """Keys belong to one caller: the same key from another pharmacy is another request."""
    scope = f"{actor.role}|{actor.finess}|{actor.subject}|{key}"
    asked = _number(prescription_id).value.encode() + msgspec.json.encode(command)
    return IdempotentRequest(
        key=hashlib.sha256(scope.encode()).hexdigest(),
        fingerprint=hashlib.sha256(asked).hexdigest(),
    )


def _record(scoped: IdempotentRequest, answer: Answer) -> IdempotencyRecord:
    return IdempotencyRecord(
        key=scoped.key, fingerprint=scoped.fingerprint, status=answer.status, body=answer.body
    )


class ContentionError(Exception):
    """Other writers kept winning the race for this prescription: the client should retry."""


def _contention() -> ContentionError:
    return ContentionError(f"{MAX_ATTEMPTS} attempts lost to concurrent writers, retry later")
