"""The embedded event store: the SQLite log on eventsourcing's recorder, behind the async API.

SQLite is not the speed target: its calls run in a worker thread (a write waits for the
database file's lock and an fsync, which must not stall the event loop). One command's append
is one SQLite transaction with its idempotency record and invoice claim (`EmbeddedRecorder`).
"""

from __future__ import annotations

from typing import cast

import anyio.to_thread

from adapters.chain import LogPoint
from adapters.librarylog import EmbeddedRecorder, IntegrityError, LibraryLog
from adapters.store import ConflictError, Write
from adapters.storedevents import IdempotencyRecord, InvoiceClaim
from adapters.tracing import TRACER
from domain.coverage import NarcoticCoverage
from domain.events import Event


class EmbeddedEventStore:
    def __init__(self, log: LibraryLog) -> None:
        self.log = log
        self.description = log.description
        self._recorder = cast(EmbeddedRecorder, log.recorder)

    async def start(self) -> None:
        """Nothing to open: the log was opened with its tables."""

    async def close(self) -> None:
        """The log belongs to whoever opened it."""

    async def events_of(self, stream_id: str, after_version: int = 0) -> list[Event]:
        return await anyio.to_thread.run_sync(self.log.events_of, stream_id, after_version)

    async def coverage(self, stream_id: str) -> NarcoticCoverage:
        return await anyio.to_thread.run_sync(self.log.coverage, stream_id)

    async def append(self, write: Write) -> list[LogPoint]:
        with TRACER.start_as_current_span(
            "event store append",
            attributes={"db.system": "sqlite", "ordo.events": len(write.events)},
        ):
            return await anyio.to_thread.run_sync(self._append, write)

    def _append(self, write: Write) -> list[LogPoint]:
        stored = [self.log.mapper.to_stored(event) for event in write.events]
        try:
            return self._recorder.insert_chained(
                stored, idempotency=write.idempotency, claim=write.claim
            )
        except IntegrityError as error:
            raise ConflictError(str(error)) from error

    async def idempotency_record(self, key: str) -> IdempotencyRecord | None:
        return await anyio.to_thread.run_sync(self._recorder.idempotency_record, key)

    async def logged(self, position: int) -> tuple[Event, LogPoint] | None:
        found = await anyio.to_thread.run_sync(self._recorder.logged, position)
        if found is None or not self.log.mapper.is_prescription_event(found[0].topic):
            return None
        stored, point = found
        return self.log.mapper.to_event(stored), point

    async def invoice_claim(self, finess: str, invoice_number: str) -> InvoiceClaim | None:
        return await anyio.to_thread.run_sync(self._recorder.invoice_claim, finess, invoice_number)

    async def last_position(self) -> int:
        return await anyio.to_thread.run_sync(self.log.last_position)
