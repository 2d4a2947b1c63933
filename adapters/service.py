"""The use cases behind the API: check who asks, then decide and append in a unit of work.

Each command decides against the prescription as its own events say now and appends what it
decided through `adapters.unit_of_work` (retried when another writer got there first; with an
`Idempotency-Key`, the first result replayed).

The use cases speak the domain: they return states, receipts and views, or raise a
`DomainError`; the HTTP layer alone turns those into statuses and bodies. Adding a use case:
an entry in `adapters.permissions.PERMISSIONS`, an `async def` that calls `allow(actor, "name")`
first, then decides with `domain.decisions` in a function of the unit of work's `Prescriptions`
that returns a `Decision`, run by `self._uow.decide` (or `self._decide`: one event on the
prescription) or `self._uow.decide_once` (results replayed under an `Idempotency-Key`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime
from typing import TypeVar

from adapters.permissions import allow
from adapters.store import EventStore
from adapters.storedevents import InvoiceClaim
from adapters.unit_of_work import (
    CACHED_STATES,
    NOT_FOUND,
    Decision,
    IdempotentRequest,
    Prescriptions,
    StateCache,
    UnitOfWork,
    idempotent_request,
    prescription_request,
)
from domain.actors import Actor
from domain.calendar import Moment, local_day, paris_day
from domain.catalogue import Catalogue, PackLookup, pack_sizes, sized
from domain.coverage import CoverageEvent
from domain.decisions import billing, corrections, dispensing, lifecycle
from domain.decisions.billing import Bill
from domain.decisions.corrections import RecordAdaptation, Withdraw
from domain.decisions.dispensing import Dispense
from domain.decisions.issuing import IssuePrescription, issue
from domain.dispensable import Allowance, allowances
from domain.events import ConsentActor, DispensationRecorded, Event, Product
from domain.identifiers import Finess, PrescriptionNumber, Rpps
from domain.prescription import Prescription, fold
from domain.units import PackSizes
from domain.views import (
    DispensationReceipt,
    DispensationView,
    dispensation_view,
    receipt_of,
)

C = TypeVar("C")
# A command as the HTTP body gives it, completed with who acts once their role is checked.
ByPharmacist = Callable[[Finess, Rpps], C]
ByPrescriber = Callable[[Rpps, date], C]
# The e-mails a dispensing owes its prescriber (MTE-PH, exceptional supply), added to its event: the
# prescription after it, and the event.
PrescriberNotices = Callable[[Prescription, DispensationRecorded], DispensationRecorded]


def _no_notices(_: Prescription, recorded: DispensationRecorded) -> DispensationRecorded:
    return recorded


def paris_clock() -> Moment:
    """Events are stamped in UTC; prescribing uses the day in France (Europe/Paris), and
    dispensing the day at the pharmacy (`domain.calendar`)."""
    now = datetime.now(UTC)
    return Moment(at=now, today=paris_day(now))


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
        prescriber_notices: PrescriberNotices = _no_notices,
    ) -> None:
        self.store = store
        self._notices = prescriber_notices
        self.clock = clock
        # The catalogue snapshot in force (None: none imported), taken once per command.
        self._packs = catalogue
        self._strict = catalogue_strict
        self._states = StateCache(cached_states)
        # `after_append`: a failpoint for crash tests, run once an append is durable.
        self._uow = UnitOfWork(store, self._states, after_append)
        self._prescriptions = self._uow.prescriptions

    # --- reads ---------------------------------------------------------------------------------

    async def read(self, actor: Actor, prescription_id: str) -> Prescription:
        """The prescription as its own events say now: read-your-writes for every caller."""
        allow(actor, "read")
        state = await self._prescriptions.load(prescription_id)
        if not _may_read(actor, state):
            raise NOT_FOUND
        return sized(state, self._packs())

    def with_units(self, state: Prescription) -> Prescription:
        """A state read elsewhere (the lists' read models, folded without the catalogue) with
        the units of its packs, as `read` gives it."""
        return sized(state, self._packs())

    def pack_sizes(self, products: Iterable[Product]) -> PackSizes | None:
        """The units of these packs as the catalogue in force states them (None: no catalogue),
        for a read model's rows that name packs (the inbox's), as `with_units` for a state."""
        packs = self._packs()
        return None if packs is None else pack_sizes(products, packs)

    async def history(self, actor: Actor, prescription_id: str) -> list[Event]:
        allow(actor, "history")
        events = await self._prescriptions.history(prescription_id)
        state = fold(events)
        if state is None or not (actor.role == "insurer" or actor.is_patient(state.patient_ins)):
            raise NOT_FOUND
        return events

    # --- commands ------------------------------------------------------------------------------

    async def issue(
        self,
        actor: Actor,
        command: ByPrescriber[IssuePrescription],
        idempotency_key: str | None = None,
    ) -> Prescription:
        """Register a prescription; with an `Idempotency-Key`, a retry replays the first one."""
        allow(actor, "issue")
        assert actor.rpps is not None  # prescriber tokens carry the RPPS
        issuing = command(Rpps(actor.rpps), self.clock().today)
        scoped = idempotent_request(actor, idempotency_key, "issue", issuing)

        async def draw(_: Prescriptions) -> Decision[Prescription]:
            # A number already drawn (1 in 2**95) conflicts on its stream: drawn again.
            number = PrescriptionNumber.generate()
            event = issue(issuing, number, self.clock(), self._catalogue())
            return Decision(_evolved(None, event), [event])

        issued = await self._uow.decide_once(scoped, draw, Prescription)
        return self._prescriptions.remember(issued)

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
        scoped = prescription_request(actor, idempotency_key, prescription_id, command)

        async def attempt(prescriptions: Prescriptions) -> Decision[DispensationReceipt]:
            catalogue = self._catalogue()
            state = await prescriptions.load_catalogued(prescription_id, catalogue)
            lines = {line.line_no for line in command.lines}
            coverage = await prescriptions.coverage_for(state, lines)
            now = self.clock()
            dispensation_id = str(uuid.uuid4())
            dispensed = dispensing.dispense(
                state, command, dispensation_id, now, coverage, catalogue=catalogue
            )
            after = sized(
                _evolved(state, dispensed.recorded), catalogue.packs if catalogue else None
            )
            event = self._notices(after, dispensed.recorded)
            pharmacy = command.pharmacy.value
            receipt = receipt_of(after, dispensation_id, pharmacy, local_day(now.at, pharmacy))
            return Decision(receipt, _present(event, dispensed.coverage), state=after)

        return await self._uow.decide_once(scoped, attempt, DispensationReceipt)

    async def dispensable(
        self, actor: Actor, prescription_id: str, at: datetime | None
    ) -> tuple[datetime, tuple[Allowance, ...]]:
        """What a dispensing at `at` (default now) in the caller's pharmacy may give, per line."""
        allow(actor, "dispensable")
        assert actor.finess is not None  # pharmacist tokens carry the pharmacy
        state = await self._prescriptions.load_catalogued(prescription_id, self._catalogue())
        lines = {line.line_no for line in state.lines}
        coverage = await self._prescriptions.coverage_for(state, lines)
        instant = dispensing.handed_over_at(state, at, self.clock(), "at")
        return instant, allowances(state, coverage, instant, actor.finess)

    async def withdraw(
        self,
        actor: Actor,
        prescription_id: str,
        by: ByPharmacist[Withdraw],
        idempotency_key: str | None = None,
    ) -> Prescription:
        async def named(_: str) -> str:
            return prescription_id

        return await self.withdraw_dispensation(actor, named, by, idempotency_key)

    async def withdraw_dispensation(
        self,
        actor: Actor,
        prescription_of: Callable[[str], Awaitable[str]],
        by: ByPharmacist[Withdraw],
        idempotency_key: str | None = None,
    ) -> Prescription:
        """Withdraw a dispensing recorded in error, of the prescription `prescription_of` its
        dispensation's id (FHIR names the dispensation alone: the projections find it). With an
        `Idempotency-Key`, a retry is answered before it is looked for: a withdrawn
        dispensation is no longer found there."""
        allow(actor, "withdraw")
        command = by(*_pharmacy(actor))
        scoped = idempotent_request(
            actor, idempotency_key, command.dispensation_id, "withdraw", command
        )

        async def attempt(prescriptions: Prescriptions) -> Decision[Prescription]:
            prescription_id = await prescription_of(command.dispensation_id)
            state = await prescriptions.load_catalogued(prescription_id, self._catalogue())
            lines = {line.line_no for line in state.lines}
            coverage = await prescriptions.coverage_for(state, lines)
            decided = corrections.withdraw(state, command, self.clock(), coverage)
            if decided is None:
                return Decision(state)
            withdrawn, released = decided
            # Catalogued: not the cache's kind of state, so not remembered.
            return Decision(_evolved(state, withdrawn), _present(withdrawn, released))

        return await self._uow.decide_once(scoped, attempt, Prescription)

    async def record_adaptation(
        self,
        actor: Actor,
        prescription_id: str,
        by: ByPharmacist[RecordAdaptation],
        idempotency_key: str | None = None,
    ) -> Prescription:
        allow(actor, "record_adaptation")
        command = by(*_pharmacy(actor))
        return await self._decide(
            prescription_id,
            lambda state: corrections.record_adaptation(state, command, self.clock()),
            prescription_request(
                actor, idempotency_key, prescription_id, "record_adaptation", command
            ),
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
        scoped = prescription_request(actor, idempotency_key, prescription_id, command)

        async def attempt(prescriptions: Prescriptions) -> Decision[DispensationView]:
            state = await prescriptions.load(prescription_id)
            used = await prescriptions.invoice_number_used(
                command.pharmacy.value, command.invoice_number
            )
            event = billing.bill(state, command, self.clock(), invoice_number_used=used)
            billed = _evolved(state, event).dispensation(command.dispensation_id)
            assert billed is not None  # billing succeeded on it
            claim = InvoiceClaim(
                finess=event.finess,
                invoice_number=event.invoice_number,
                prescription_id=event.prescription_id,
                dispensation_id=event.dispensation_id,
            )
            return Decision(dispensation_view(billed), [event], claim)

        return await self._uow.decide_once(scoped, attempt, DispensationView)

    async def cancel(
        self,
        actor: Actor,
        prescription_id: str,
        reason: str,
        idempotency_key: str | None = None,
    ) -> Prescription:
        allow(actor, "cancel")

        def decide(state: Prescription) -> Event:
            if not actor.wrote(state.prescriber_rpps):
                raise NOT_FOUND
            return lifecycle.cancel(state, reason, self.clock())

        scoped = prescription_request(actor, idempotency_key, prescription_id, "cancel", reason)
        return await self._decide(prescription_id, decide, scoped)

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
        self,
        prescription_id: str,
        decide: Callable[[Prescription], Event | None],
        request: IdempotentRequest | None = None,
    ) -> Prescription:
        """A command that appends at most one event on the prescription, which it remembers
        (with an `Idempotency-Key`, the first result replayed)."""

        async def attempt(prescriptions: Prescriptions) -> Decision[Prescription]:
            state = await prescriptions.load(prescription_id)
            event = decide(state)
            return Decision(state) if event is None else Decision(_evolved(state, event), [event])

        decided = await self._uow.decide_once(request, attempt, Prescription)
        return self._prescriptions.remember(decided)

    def _catalogue(self) -> Catalogue | None:
        """The catalogue for one command; None while none is imported (then the prescriber's
        word decides)."""
        packs = self._packs()
        return None if packs is None else Catalogue(packs, strict=self._strict)


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
