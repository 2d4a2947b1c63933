"""Writes access-log entries in batches, off the request path.

A request only puts its entry on an in-process queue (no I/O before or after its answer); a
thread drains the queue every FLUSH_SECONDS and inserts what it found in one statement. So an
entry is durable within FLUSH_SECONDS plus one insert (well under 1 s) of its answer, and a
crash of the process (SIGKILL, power loss of the host) loses at most the entries answered in
that last interval, plus, on SQLite, the last commits on power loss (synchronous=NORMAL).
When the database is unreachable the batch is kept and retried; entries beyond MAX_PENDING are
dropped with an error line rather than exhausting memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import msgspec
import structlog

from adapters.access.store import AccessEntry, AccessLogStore

FLUSH_SECONDS = 0.2
RETRY_SECONDS = 1.0
MAX_PENDING = 200_000

log = structlog.get_logger("ordo.access_log")


class Pending(msgspec.Struct, frozen=True):
    """An entry, and for a patient's refused call the INS to compare with the prescription's:
    a patient's own calls are not logged, and only a refused one needs looking up. The INS is
    compared in memory and never stored."""

    entry: AccessEntry
    caller_ins: str | None = None


class AccessRecorder:
    def __init__(
        self,
        store: AccessLogStore,
        patient_of: Callable[[str], str | None],
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.store = store
        self._patient_of = patient_of
        self._flush_seconds = flush_seconds
        self._queue: queue.Queue[Pending] = queue.Queue(maxsize=MAX_PENDING)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._unwritten: list[Pending] = []

    def record(self, pending: Pending) -> None:
        """Called on the event loop: never blocks."""
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            log.error("access log entry dropped", reason="queue full", action=pending.entry.action)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Writes what is queued, then stops (a graceful shutdown loses nothing)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.flush()

    def flush(self) -> int:
        """Inserts every queued entry now (and any batch that failed before); the number
        written. On failure the batch is kept for the next try and the error raised."""
        batch = self._unwritten + self._drain()
        self._unwritten = []
        try:
            entries = [p.entry for p in batch if not self._own_call(p)]
            if entries:
                self.store.insert(entries)
        except Exception:
            self._unwritten = batch[-MAX_PENDING:]
            raise
        return len(entries)

    def _run(self) -> None:
        while not self._stopping.wait(self._flush_seconds):
            try:
                self.flush()
            except Exception:
                log.exception("access log batch not written, retrying")
                self._stopping.wait(RETRY_SECONDS)

    def _drain(self) -> list[Pending]:
        batch = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return batch

    def _own_call(self, pending: Pending) -> bool:
        if pending.caller_ins is None:
            return False
        return self._patient_of(pending.entry.prescription_id) == pending.caller_ins
