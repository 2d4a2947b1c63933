"""An event store in memory, for the service's tests: `adapters.store.EventStore`, no database.

It keeps the store's promises: streams with versions, an append refused (`ConflictError`) when
one of the streams it touches moved past the version its command was decided on, or when its
idempotency key or invoice number is taken; all of a `Write` or none of it (its record
keeping where its first event landed, read back by `logged`); events encoded and
decoded as the stored ones are. A test makes a race happen with `interpose`: a competing writer
runs just before the next append is applied, after the command was decided.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec

from adapters.chain import GENESIS, LogPoint, chained
from adapters.store import ConflictError, Write, expected_versions, stream_of
from adapters.storedevents import EventMapper, IdempotencyRecord, InvoiceClaim
from domain.coverage import NarcoticCoverage, fold_coverage
from domain.events import Event

Competitor = Callable[[Write], Awaitable[None]]
Stored = tuple[int, str, bytes]  # an event's version, topic and encoded body


class MemoryEventStore:
    description = "memory"

    def __init__(self) -> None:
        self._mapper = EventMapper()
        self._streams: dict[str, list[Stored]] = {}
        self._positions = 0
        self._head = GENESIS  # the hash of the last event, chained as the real stores do
        self._log: dict[int, tuple[str, bytes, bytes]] = {}  # position: topic, body, hash
        self._records: dict[str, IdempotencyRecord] = {}
        self._claims: dict[tuple[str, str], InvoiceClaim] = {}
        self._competitor: Competitor | None = None
        self._turns = 0
        self.appends = 0  # appends applied
        self.refused = 0  # appends refused (ConflictError)

    def interpose(self, competitor: Competitor, turns: int = 1) -> None:
        """Before each of the next `turns` appends is applied, `competitor` runs with the write
        about to be applied (its own appends go through at once)."""
        self._competitor, self._turns = competitor, turns

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def events_of(self, stream_id: str, after_version: int = 0) -> list[Event]:
        await asyncio.sleep(0)  # a round trip: other tasks run meanwhile
        stored = self._streams.get(stream_id, [])
        return [self._mapper.decode(t, state) for v, t, state in stored if v > after_version]

    async def coverage(self, stream_id: str) -> NarcoticCoverage:
        await asyncio.sleep(0)
        stored = self._streams.get(stream_id, [])
        return fold_coverage(stream_id, (self._mapper.coverage(t, state) for _, t, state in stored))

    async def append(self, write: Write) -> list[LogPoint]:
        await asyncio.sleep(0)
        competitor = self._competitor
        if competitor is not None and self._turns > 0:
            self._turns -= 1
            self._competitor = None  # the competitor's own appends are not interposed
            try:
                await competitor(write)
            finally:
                self._competitor = competitor
        return self._apply(write)

    def _apply(self, write: Write) -> list[LogPoint]:
        """All of the write, or none of it and ConflictError."""
        if conflict := self._conflict(write):
            self.refused += 1
            raise ConflictError(conflict)
        points = []
        for event in write.events:
            topic, state = self._mapper.encode(event)
            stream = stream_of(event)
            self._streams.setdefault(stream, []).append((event.version, topic, state))
            self._positions += 1
            self._head = chained(self._head, stream, event.version, topic, state)
            points.append(LogPoint(self._positions, self._head))
            self._log[self._positions] = (topic, state, self._head)
        if write.idempotency is not None:
            first = points[0].position if points else None
            record = msgspec.structs.replace(write.idempotency, position=first)
            self._records[record.key] = record
        if write.claim is not None:
            claim = write.claim
            self._claims[claim.finess, claim.invoice_number] = claim
        self.appends += 1
        return points

    def _conflict(self, write: Write) -> str | None:
        for stream, version in expected_versions(write.events).items():
            if self._version(stream) != version:
                return f"stream {stream} is not at version {version}"
        rows = [(stream_of(event), event.version) for event in write.events]
        if len(set(rows)) != len(rows):
            return "one version twice in a stream"
        if write.idempotency is not None and write.idempotency.key in self._records:
            return "idempotency key taken"
        claim = write.claim
        if claim is not None and (claim.finess, claim.invoice_number) in self._claims:
            return "invoice number taken"
        return None

    async def idempotency_record(self, key: str) -> IdempotencyRecord | None:
        await asyncio.sleep(0)
        return self._records.get(key)

    async def logged(self, position: int) -> tuple[Event, LogPoint] | None:
        await asyncio.sleep(0)
        found = self._log.get(position)
        if found is None or not self._mapper.is_prescription_event(found[0]):
            return None
        topic, state, hash_ = found
        return self._mapper.decode(topic, state), LogPoint(position, hash_)

    async def invoice_claim(self, finess: str, invoice_number: str) -> InvoiceClaim | None:
        await asyncio.sleep(0)
        return self._claims.get((finess, invoice_number))

    async def last_position(self) -> int:
        await asyncio.sleep(0)
        return self._positions

    def _version(self, stream_id: str) -> int:
        stored = self._streams.get(stream_id)
        return stored[-1][0] if stored else 0
