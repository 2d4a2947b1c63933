"""One way for every use case to decide and append: load, decide, append, and again on a race.

One prescription (or conversation) is one consistency boundary. A command loads what it decides
on through the repository (`Prescriptions`), decides, and appends what it decided at the next
versions of the streams it touches (`Write`). If another writer appended first (two pharmacies
at once), the store refuses the append (`ConflictError`) and the command is decided again
against the new state, after a short random pause: so the loser of a race gets its result if
enough remains, and its domain error otherwise; never a pack dispensed twice. After
`MAX_ATTEMPTS` lost races the caller is told to retry (`ContentionError`).

What a decision appended, with each event's log position and hash, is the request's
`last_appended` until its answer is sent (its receipt is signed from it, `adapters.receipts`).

A command sent with an `Idempotency-Key` (`UnitOfWork.decide_once`) appends its result with its
events, in one transaction: a retry of an answered request gets that first result again, never
a second decision; the same key with another request is refused (`idempotency_key_reused`).
The record keeps where the command's first event landed, and a retry's `last_appended` is that
event with its position and hash, read from the log: its receipt names the same place as the
first answer's (a receipted event, prescribing, dispensing or billing, is always its command's
first). A record kept before records kept their position is replayed without a receipt.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Generic, TypeVar

import msgspec

from adapters.chain import LogPoint
from adapters.legacy import UNREPLAYABLE
from adapters.store import ConflictError, EventStore, Write
from adapters.storedevents import AnyEvent, IdempotencyRecord, InvoiceClaim
from domain.actors import Actor
from domain.catalogue import Catalogue, catalogued
from domain.conversation_state import Conversation, fold_conversation
from domain.coverage import NarcoticCoverage, coverage_stream_of
from domain.errors import DomainError
from domain.events import ConversationEvent, Event
from domain.identifiers import InvalidIdentifier, PrescriptionNumber
from domain.prescription import Prescription, fold

MAX_ATTEMPTS = 200
CACHED_STATES = 10_000  # folded prescriptions kept per process (a few kB each)

T = TypeVar("T")

NOT_FOUND = DomainError("not_found", "no such prescription")


class ContentionError(Exception):
    """Other writers kept winning the race for this prescription: the client should retry."""


class IdempotentRequest(msgspec.Struct, frozen=True):
    """A caller-scoped `Idempotency-Key` and a fingerprint of what was asked with it."""

    key: str
    fingerprint: str


def idempotent_request(
    actor: Actor, key: str | None, target: str, *asked: object
) -> IdempotentRequest | None:
    """The request an `Idempotency-Key` names (None without one): keys belong to one caller
    (the same key from another pharmacy, or another prescriber's RPPS, is another request), and
    what was asked is the target (a prescription's or conversation's id, canonical) and the
    command."""
    if key is None:
        return None
    scope = f"{actor.role}|{actor.finess}|{actor.subject}|{key}"
    if actor.role == "prescriber":
        scope += f"|{actor.rpps}"
    fingerprint = target.encode() + b"".join(msgspec.json.encode(part) for part in asked)
    return IdempotentRequest(
        key=hashlib.sha256(scope.encode()).hexdigest(),
        fingerprint=hashlib.sha256(fingerprint).hexdigest(),
    )


def prescription_request(
    actor: Actor, key: str | None, prescription_id: str, *asked: object
) -> IdempotentRequest | None:
    """`idempotent_request` for a command on a prescription, named by its number."""
    if key is None:
        return None
    return idempotent_request(actor, key, prescription_number(prescription_id).value, *asked)


class Decision(msgspec.Struct, Generic[T], frozen=True):
    """One decision of a command: its result, and what to append for it (no events: the result
    stands without an append), with the invoice number it claims, and the prescription as the
    decision leaves it (handed to the caller with what was appended, never recorded)."""

    result: T
    events: Sequence[AnyEvent] = ()
    claim: InvoiceClaim | None = None
    state: Prescription | None = None


class Appended(msgspec.Struct, frozen=True):
    """The events one decision appended, and where each landed in the log (in order), with the
    prescription as they leave it when the decision told it (None for a replayed result: read
    it again)."""

    events: Sequence[AnyEvent]
    points: Sequence[LogPoint]
    state: Prescription | None = None


# What the current request's last decision appended, or what its replayed result's command
# appended first (None: nothing yet, or a result replayed without its position).
last_appended: ContextVar[Appended | None] = ContextVar("last_appended", default=None)


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


def prescription_number(prescription_id: str) -> PrescriptionNumber:
    """A mistyped number (bad check character) is simply not found: never another prescription."""
    try:
        return PrescriptionNumber.parse(prescription_id)
    except InvalidIdentifier:
        raise NOT_FOUND from None


class Prescriptions:
    """What a decision reads: prescriptions (folded from the cache's state on), a patient's
    narcotic coverage, conversations, invoice numbers taken."""

    def __init__(self, store: EventStore, states: StateCache) -> None:
        self._store = store
        self._states = states

    async def load(self, prescription_id: str) -> Prescription:
        """The latest state: the cached fold (if any) brought up to date with the events
        stored after it, in one round trip."""
        number = prescription_number(prescription_id).value
        cached = self._states.get(number)
        news = await self._store.events_of(number, cached.version if cached else 0)
        state = fold(news, cached)
        if state is None:
            raise NOT_FOUND
        if news:
            self._states.put(state)
        return state

    async def load_catalogued(
        self, prescription_id: str, catalogue: Catalogue | None
    ) -> Prescription:
        """The prescription with its lines as the catalogue knows their packs (narcotic,
        fractioning): the rules of dispensing follow the product, whatever was written."""
        state = await self.load(prescription_id)
        return catalogued(state, catalogue.packs if catalogue else None)

    def remember(self, state: Prescription) -> Prescription:
        """A state we just appended is the latest as far as we know: the next load starts there."""
        self._states.put(state)
        return state

    async def history(self, prescription_id: str) -> list[Event]:
        """Every event of the prescription (none for an unknown one)."""
        return await self._store.events_of(prescription_number(prescription_id).value)

    async def coverage_for(
        self, state: Prescription, line_nos: set[int]
    ) -> NarcoticCoverage | None:
        """The patient's coverage, read only when one of these lines covers days on it (a
        narcotic, or a product whose overlap is forbidden)."""
        if not any(line.covers_days for line in state.lines if line.line_no in line_nos):
            return None
        return await self._store.coverage(coverage_stream_of(state.patient_ins))

    async def conversation(self, stream: str) -> Conversation | None:
        """A conversation as its own stream says (None for an unknown id, or a stream that is
        not a conversation's)."""
        events = await self._store.events_of(stream)
        return fold_conversation(event for event in events if isinstance(event, ConversationEvent))

    async def invoice_number_used(self, finess: str, invoice_number: str) -> bool:
        return await self._store.invoice_claim(finess, invoice_number) is not None


Decide = Callable[[Prescriptions], Awaitable[Decision[T]]]


class UnitOfWork:
    """Decides a command against what `prescriptions` reads and appends the decision, again
    while other writers get there first."""

    def __init__(
        self, store: EventStore, states: StateCache, after_append: Callable[[], None]
    ) -> None:
        self.prescriptions = Prescriptions(store, states)
        self._store = store
        # A failpoint for crash tests: runs after the append is durable, before answering.
        self._after_append = after_append

    async def decide(self, decide: Decide[T]) -> T:
        """The result of the first decision appended (or needing no append)."""
        return await self._until_appended(decide, None)

    async def decide_once(
        self, request: IdempotentRequest | None, decide: Decide[T], kind: type[T]
    ) -> T:
        """As `decide`; with an `Idempotency-Key`, a request already answered gets its recorded
        result again, and a new result is recorded in the same append as its events."""
        if request is None:
            return await self.decide(decide)

        async def replayed_or_decided(prescriptions: Prescriptions) -> Decision[T]:
            first = await self._replay(request, kind)
            return Decision(first) if first is not None else await decide(prescriptions)

        return await self._until_appended(replayed_or_decided, request)

    async def _until_appended(self, decide: Decide[T], request: IdempotentRequest | None) -> T:
        last_appended.set(None)
        for _ in range(MAX_ATTEMPTS):
            decision = await decide(self.prescriptions)
            if not decision.events:
                return decision.result
            record = _record(request, decision.result) if request else None
            write = Write(decision.events, record, decision.claim)
            if await self._try_append(write, decision.state):
                return decision.result
        raise ContentionError(f"{MAX_ATTEMPTS} attempts lost to concurrent writers, retry later")

    async def _try_append(self, write: Write, state: Prescription | None) -> bool:
        """Append, or report that another writer got there first (then back off a little)."""
        try:
            points = await self._store.append(write)
        except ConflictError:
            await asyncio.sleep(random.uniform(0, 0.005))
            return False
        last_appended.set(Appended(write.events, points, state))
        self._after_append()
        return True

    async def _replay(self, request: IdempotentRequest, kind: type[T]) -> T | None:
        record = await self._store.idempotency_record(request.key)
        if record is None:
            return None
        if record.fingerprint != request.fingerprint:
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
        first = msgspec.json.decode(record.result, type=kind)
        if record.position is not None:
            await self._recall_appended(record.position)
        return first

    async def _recall_appended(self, position: int) -> None:
        """What the first answer appended first, as it landed: the retry's receipt is its."""
        logged = await self._store.logged(position)
        if logged is not None:
            event, point = logged
            last_appended.set(Appended([event], [point]))


def _record(request: IdempotentRequest, result: object) -> IdempotencyRecord:
    return IdempotencyRecord(
        key=request.key, fingerprint=request.fingerprint, result=msgspec.json.encode(result)
    )
