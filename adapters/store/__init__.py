"""The event store the use cases talk to, asynchronously: streams, appends, idempotency records.

Two implementations: `PostgresEventStore` (asyncpg, appends group-committed; the production
store) and `EmbeddedEventStore` (the SQLite log of `adapters.librarylog`, on eventsourcing's
recorder, its calls in a worker thread). Both keep one command's append atomic: its events on
every stream it touches, its idempotency record and its invoice claim, all or none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from adapters.chain import LogPoint
from adapters.storedevents import AnyEvent, IdempotencyRecord, InvoiceClaim, stream_of
from domain.coverage import NarcoticCoverage
from domain.events import Event


class ConflictError(Exception):
    """Another writer got there first: a stream moved past the version the command was decided
    on, or its idempotency key or invoice number was taken. The command is decided again."""


class Write(msgspec.Struct, frozen=True):
    """What one decided command appends, atomically."""

    events: Sequence[AnyEvent]
    idempotency: IdempotencyRecord | None = None
    claim: InvoiceClaim | None = None


class EventStore(Protocol):
    description: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def events_of(self, stream_id: str, after_version: int = 0) -> list[Event]:
        """A prescription's events after `after_version` (all of them from 0)."""
        ...

    async def coverage(self, stream_id: str) -> NarcoticCoverage: ...

    async def append(self, write: Write) -> list[LogPoint]:
        """Durable when it returns, with where each event landed in the log (in the write's
        order); raises ConflictError if another writer got there first."""
        ...

    async def idempotency_record(self, key: str) -> IdempotencyRecord | None:
        """The record of a key, with where its command's first event landed."""
        ...

    async def logged(self, position: int) -> tuple[Event, LogPoint] | None:
        """The prescription's (or conversation's) event at a log position, with its hash
        (None: no such event there)."""
        ...

    async def invoice_claim(self, finess: str, invoice_number: str) -> InvoiceClaim | None: ...

    async def last_position(self) -> int: ...


def expected_versions(events: Sequence[AnyEvent]) -> dict[str, int]:
    """Per stream, the version the command was decided on: its first new event's, minus one."""
    expected: dict[str, int] = {}
    for event in events:
        expected.setdefault(stream_of(event), event.version - 1)
    return expected


__all__ = ["ConflictError", "EventStore", "Write", "expected_versions", "stream_of"]
