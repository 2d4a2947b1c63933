"""The use cases behind the API: load a prescription, check who asks, decide, append.

One prescription is one consistency boundary. A command loads the prescription's events,
decides against that state, and appends at the next version; if another writer appended
first (two pharmacies at once), the append is refused on the version (`ConflictError`) and the
command is decided again against the new state. So the loser of a race gets its result if
enough remains, and its domain error otherwise; never a pack dispensed twice.

The use cases speak the domain: they return states, receipts and views, or raise a
`DomainError`; the HTTP layer alone turns those into statuses and bodies. Adding a use case:
an entry in `adapters.permissions.PERMISSIONS`, an `async def` that calls `allow(actor, "name")`
first, loads with `self._load`, decides with `domain.decisions`, and appends through
`self._decide` (one event on the prescription) or `self._record_once` (results replayed under
an `Idempotency-Key`).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from typing import Generic, TypeVar

import msgspec

from adapters.eventstore import IdempotencyRecord, InvoiceClaim
from adapters.legacy import UNREPLAYABLE
from adapters.permissions import allow
from adapters.store import ConflictError, EventStore, Write
from domain.actors import Actor
from domain.calendar import Moment, local_day, paris_day
from domain.catalogue import Catalogue, PackLookup, catalogued
from domain.coverage import CoverageEvent, NarcoticCoverage, coverage_stream_of
from domain.decisions import billing, corrections, dispensing, lifecycle
from domain.decisions.billing import Bill
from domain.decisions.corrections import RecordAdaptation, Withdraw
from domain.decisions.dispensing import Dispense
from domain.decisions.issuing import IssuePrescription, issue
from domain.dispensable import Allowance, allowances
from domain.errors import DomainError
from domain.events import ConsentActor, Event
from domain.identifiers import Finess, InvalidIdentifier, PrescriptionNumber, Rpps
from domain.prescription import Prescription, fold
from domain.views import (
    DispensationReceipt,
    DispensationView,
    dispensation_view,
    receipt_of,
)

MAX_ATTEMPTS = 200
CACHED_STATES = 10_000  # folded prescriptions kept per process (a few kB each)

R = TypeVar("R", DispensationReceipt, DispensationView)
C = TypeVar("C")
# A command as the HTTP body gives it, completed with who acts once their role is checked.
ByPharmacist = Callable[[Finess, Rpps], C]
ByPrescriber = Callable[[Rpps, date], C]


def paris_clock() -> Moment:
    """Events are stamped in UTC; prescribing uses the day in France (Europe/Paris), and
    dispensing the day at the pharmacy (`domain.calendar`)."""
    now = datetime.now(UTC)
    return Moment(at=now, today=paris_day(now))


class IdempotentRequest(msgspec.Struct, frozen=True):
    """A caller-scoped `Idempotency-Key` and a fingerprint of what was asked with it."""

    key: str
    fingerprint: str


class Attempt(msgspec.Struct, Generic[R], frozen=True):
    """One decision of a command whose result is recorded: the result and what to append."""

    result: R
    events: Sequence[Event | CoverageEvent]
    claim: InvoiceClaim | None = None


class StateCache:
    """Folded prescriptions by id, the least recently used dropped beyond `size`.

    A cached state is a starting point, never an answer: every load asks the store for the
    events after its version (one round trip), so a decision always sees the latest state.
    """

    def __init__(self, size: int = CACHED_STATES) -> None:
        self._size = size
        self._states: OrderedDict[str, Prescription] = OrderedDict()

    def get(self, prescription_id: str) -> Prescription | None:
        state = self._states.get(prescription_id)
        if state is not None:
            self._states.move_to_end(prescription_id)
        return state

    def put(self, state: Prescription) -> None:
        known = self._states.get(state.prescription_id)
        if known is not None and known.version >= state.version:
            return  # a concurrent load got further: keep the newer
        self._states[state.prescription_id] = state
        self._states.move_to_end(state.prescription_id)
        while len(self._states) > self._size:
            self._states.popitem(last=False)

    def __len__(self) -> int:
        return len(self._states)


NOT_FOUND = DomainError("not_found", "no such prescription")


class PrescriptionService:
    def __init__(
        self,
        store: EventStore,
        *,
        clock: Callable[[], Moment] = paris_clock,
        after_append: Callable[[], None] = lambda: None,
        catalogue: Callable[[], PackLookup | None] = lambda: None,
        catalogue_strict: bool = False,
        cached_states: int = CACHED_STATES,
    ) -> None:
        self.store = store
        self.clock = clock
        # The catalogue snapshot in force (None: none imported), taken once per command.
        self._packs = catalogue
        self._strict = catalogue_strict
        # A failpoint for crash tests: runs after the append is durable, before answering.
        self._after_append = after_append
        self._states = StateCache(cached_states)

    # --- reads ---------------------------------------------------------------------------------

    async def read(self, actor: Actor, prescription_id: str) -> Prescription:
        """The prescription as its own events say now: read-your-writes for every caller."""
        allow(actor, "read")
        state = await self._load(prescription_id)
        if not _may_read(actor, state):
            raise NOT_FOUND
        return state

    async def history(self, actor: Actor, prescription_id: str) -> list[Event]:
        allow(actor, "history")
        number = _number(prescription_id)
        events = await self.store.events_of(number.value)
        state = fold(events)
        if state is None or not (actor.role == "insurer" or actor.is_patient(state.patient_ins)):
            raise NOT_FOUND
        return events

    # --- commands ------------------------------------------------------------------------------

    async def issue(self, actor: Actor, command: ByPrescriber[IssuePrescription]) -> Prescription:
        allow(actor, "issue")
        assert actor.rpps is not None  # prescriber tokens carry the RPPS
        issuing = command(Rpps(actor.rpps), self.clock().today)
        while True:
            number = PrescriptionNumber.generate()
            event = issue(issuing, number, self.clock(), self._catalogue())
            try:
                await self._append(Write([event]))
            except ConflictError:
                continue  # a number already drawn (1 in 2**95): draw another
            return self._remember(_evolved(None, event))

    async def dispense(
        self,
        actor: Actor,
        prescription_id: str,
        by: ByPharmacist[Dispense],
        idempotency_key: str | None = None,
    ) -> DispensationReceipt:
        """Record a dispensing; with an `Idempotency-Key`, a retry replays the first receipt."""
        allow(actor, "dispense")
        command = by(*_pharmacy(actor))
        scoped = (
            _scoped(actor, idempotency_key, prescription_id, command) if idempotency_key else None
        )

        async def attempt() -> Attempt[DispensationReceipt]:
            catalogue = self._catalogue()
            state = await self._load_catalogued(prescription_id, catalogue)
            coverage = await self._coverage_for(state, {line.line_no for line in command.lines})
            now = self.clock()
            dispensation_id = str(uuid.uuid4())
            dispensed = dispensing.dispense(
                state, command, dispensation_id, now, coverage, catalogue=catalogue
            )
            event = dispensed.recorded
            after = _evolved(state, event)
            pharmacy = command.pharmacy.value
            receipt = receipt_of(after, dispensation_id, pharmacy, local_day(now.at, pharmacy))
            return Attempt(receipt, _present(event, dispensed.coverage))

        return await self._record_once(scoped, attempt, DispensationReceipt)

    async def dispensable(
        self, actor: Actor, prescription_id: str, at: datetime | None
    ) -> tuple[datetime, tuple[Allowance, ...]]:
        """What a dispensing at `at` (default now) in the caller's pharmacy may give, per line."""
        allow(actor, "dispensable")
        assert actor.finess is not None  # pharmacist tokens carry the pharmacy
        state = await self._load_catalogued(prescription_id, self._catalogue())
        coverage = await self._coverage_for(state, {line.line_no for line in state.lines})
        instant = dispensing.handed_over_at(state, at, self.clock(), "at")
        return instant, allowances(state, coverage, instant, actor.finess)

    async def withdraw(
        self, actor: Actor, prescription_id: str, by: ByPharmacist[Withdraw]
    ) -> Prescription:
        allow(actor, "withdraw")
        command = by(*_pharmacy(actor))
        for _ in range(MAX_ATTEMPTS):
            state = await self._load_catalogued(prescription_id, self._catalogue())
            coverage = await self._coverage_for(state, {line.line_no for line in state.lines})
            decided = corrections.withdraw(state, command, self.clock(), coverage)
            if decided is None:
                return state
            withdrawn, released = decided
            if await self._try_append(Write(_present(withdrawn, released))):
                return _evolved(state, withdrawn)  # catalogued: not the cache's kind of state
        raise _contention()

    async def record_adaptation(
        self, actor: Actor, prescription_id: str, by: ByPharmacist[RecordAdaptation]
    ) -> Prescription:
        allow(actor, "record_adaptation")
        command = by(*_pharmacy(actor))
        return await self._decide(
            prescription_id,
            lambda state: corrections.record_adaptation(state, command, self.clock()),
        )

    async def bill(
        self,
        actor: Actor,
        prescription_id: str,
        by: ByPharmacist[Bill],
        idempotency_key: str | None = None,
    ) -> DispensationView:
        """Record a dispensation's billing under an invoice number this pharmacy never used.

        The number is claimed in the same append as the billing (`InvoiceClaim`): when two
        billings race for one number, the loser's append is refused, and deciding again finds
        the number taken (`invoice_number_used`). With an `Idempotency-Key`, a retry replays
        the first result, exactly as for dispensing."""
        allow(actor, "bill")
        command = by(*_pharmacy(actor))
        scoped = (
            _scoped(actor, idempotency_key, prescription_id, command) if idempotency_key else None
        )

        async def attempt() -> Attempt[DispensationView]:
            state = await self._load(prescription_id)
            used = await self.store.invoice_claim(command.pharmacy.value, command.invoice_number)
            event = billing.bill(state, command, self.clock(), invoice_number_used=bool(used))
            billed = _evolved(state, event).dispensation(command.dispensation_id)
            assert billed is not None  # billing succeeded on it
            claim = InvoiceClaim(
                finess=event.finess,
                invoice_number=event.invoice_number,
                prescription_id=event.prescription_id,
                dispensation_id=event.dispensation_id,
            )
            return Attempt(dispensation_view(billed), [event], claim)

        return await self._record_once(scoped, attempt, DispensationView)

    async def cancel(self, actor: Actor, prescription_id: str, reason: str) -> Prescription:
        allow(actor, "cancel")

        def decide(state: Prescription) -> Event:
            if not actor.wrote(state.prescriber_rpps):
                raise NOT_FOUND
            return lifecycle.cancel(state, reason, self.clock())

        return await self._decide(prescription_id, decide)

    async def change_consent(
        self, actor: Actor, prescription_id: str, consent: bool
    ) -> Prescription:
        allow(actor, "change_consent")

        def decide(state: Prescription) -> Event | None:
            if actor.role == "patient" and not actor.is_patient(state.patient_ins):
                raise NOT_FOUND
            changed_by: ConsentActor = "patient" if actor.role == "patient" else "insurer"
            return lifecycle.change_consent(state, consent, changed_by, self.clock())

        return await self._decide(prescription_id, decide)

    async def ready(self) -> int:
        """The log's last position; raises if the database cannot be reached."""
        return await self.store.last_position()

    # --- plumbing ------------------------------------------------------------------------------

    async def _decide(
        self, prescription_id: str, decide: Callable[[Prescription], Event | None]
    ) -> Prescription:
        for _ in range(MAX_ATTEMPTS):
            state = await self._load(prescription_id)
            event = decide(state)
            if event is None:
                return state
            if await self._try_append(Write([event])):
                return self._remember(_evolved(state, event))
        raise _contention()

    async def _record_once(
        self,
        scoped: IdempotentRequest | None,
        attempt: Callable[[], Awaitable[Attempt[R]]],
        kind: type[R],
    ) -> R:
        """Decide and append until no other writer got there first; with an `Idempotency-Key`,
        a request already answered gets its recorded result again, and a new result is recorded
        in the same append as its events."""
        for _ in range(MAX_ATTEMPTS):
            if scoped is not None and (replay := await self._replay(scoped, kind)) is not None:
                return replay
            decided = await attempt()
            record = _record(scoped, decided.result) if scoped else None
            if await self._try_append(Write(decided.events, record, decided.claim)):
                return decided.result
        raise _contention()

    def _catalogue(self) -> Catalogue | None:
        """The catalogue for one command; None while none is imported (v1 behaviour)."""
        packs = self._packs()
        return None if packs is None else Catalogue(packs, strict=self._strict)

    async def _load_catalogued(
        self, prescription_id: str, catalogue: Catalogue | None
    ) -> Prescription:
        """The prescription with its lines as the catalogue knows their packs (narcotic,
        fractioning): the rules of dispensing follow the product, whatever was written."""
        state = await self._load(prescription_id)
        return catalogued(state, catalogue.packs if catalogue else None)

    async def _coverage_for(
        self, state: Prescription, line_nos: set[int]
    ) -> NarcoticCoverage | None:
        """The patient's narcotic coverage, read only when one of these lines is a narcotic."""
        if not any(line.prescribed.narcotic for line in state.lines if line.line_no in line_nos):
            return None
        return await self.store.coverage(coverage_stream_of(state.patient_ins))

    async def _load(self, prescription_id: str) -> Prescription:
        """The latest state: the cached fold (if any) brought up to date with the events
        stored after it, in one round trip."""
        number = _number(prescription_id).value
        cached = self._states.get(number)
        news = await self.store.events_of(number, cached.version if cached else 0)
        state = fold(news, cached)
        if state is None:
            raise NOT_FOUND
        if news:
            self._states.put(state)
        return state

    def _remember(self, state: Prescription) -> Prescription:
        """A state we just appended is the latest as far as we know: the next load starts there."""
        self._states.put(state)
        return state

    async def _try_append(self, write: Write) -> bool:
        """Append, or report that another writer got there first (then back off a little)."""
        try:
            await self._append(write)
        except ConflictError:
            await asyncio.sleep(random.uniform(0, 0.005))
            return False
        return True

    async def _append(self, write: Write) -> None:
        await self.store.append(write)
        self._after_append()

    async def _replay(self, scoped: IdempotentRequest, kind: type[R]) -> R | None:
        record = await self.store.idempotency_record(scoped.key)
        if record is None:
            return None
        if record.fingerprint != scoped.fingerprint:
            raise DomainError(
                "idempotency_key_reused",
                "this Idempotency-Key was already used for a different request",
                field="Idempotency-Key",
            )
        if record.result == UNREPLAYABLE:
            # Committed before the upgrade, its answer lost in conversion: never decide again.
            raise DomainError(
                "idempotency_key_reused",
                "this Idempotency-Key was used before the upgrade and its first answer cannot "
                "be given again: read the prescription to see what was recorded",
                field="Idempotency-Key",
            )
        return msgspec.json.decode(record.result, type=kind)


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


def _pharmacy(actor: Actor) -> tuple[Finess, Rpps]:
    assert actor.finess is not None and actor.rpps is not None  # pharmacist tokens carry both
    return Finess(actor.finess), Rpps(actor.rpps)


def _evolved(state: Prescription | None, event: Event) -> Prescription:
    after = fold([event], state)
    assert after is not None
    return after


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


def _record(
    scoped: IdempotentRequest, result: DispensationReceipt | DispensationView
) -> IdempotencyRecord:
    return IdempotencyRecord(
        key=scoped.key, fingerprint=scoped.fingerprint, result=msgspec.json.encode(result)
    )


class ContentionError(Exception):
    """Other writers kept winning the race for this prescription: the client should retry."""


def _contention() -> ContentionError:
    return ContentionError(f"{MAX_ATTEMPTS} attempts lost to concurrent writers, retry later")
