"""Writes access-log entries in batches, off the request path.

A request only appends what it knows (the raw prescription number from the path, the time, the
caller, the action, the status) to an in-process queue: no I/O and almost no work before or
after its answer. A thread drains the queue every FLUSH_SECONDS, turns what it found into
entries and inserts them in one statement. So an entry is durable within FLUSH_SECONDS plus one
insert (well under 1 s) of its answer, and a crash of the process (SIGKILL, the OOM killer, a
power cut) loses at most the entries answered in that last interval, plus, on SQLite, the last
commits on a power cut (synchronous=NORMAL). When the database is unreachable the batch is kept
and retried; entries beyond MAX_PENDING are dropped with an error line rather than exhausting
memory.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

import msgspec
import structlog

from adapters.access.store import AccessEntry, AccessLogStore
from domain.actors import Actor
from domain.identifiers import InvalidIdentifier, PrescriptionNumber

FLUSH_SECONDS = 0.2
RETRY_SECONDS = 1.0
MAX_PENDING = 200_000

log = structlog.get_logger("ordo.access_log")


class Call(msgspec.Struct, frozen=True, array_like=True):
    """A call as the request saw it, before the writer makes an entry of it."""

    prescription_id: str  # as typed in the path
    answered_at: float  # time.time() when the answer started
    actor: Actor
    action: str
    status: int


@functools.lru_cache(maxsize=65_536)
def _canonical(typed: str) -> str | None:
    """A prescription number as stored (the same few are read again and again: cached)."""
    try:
        return PrescriptionNumber.parse(typed).value
    except InvalidIdentifier:
        return None


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
        # deque.append and popleft are atomic: the event loop appends, the writer pops, and
        # neither takes a lock.
        self._queue: deque[Call] = deque()
        self._unwritten: list[AccessEntry] = []
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def record(self, call: Call) -> None:
        """Called on the event loop: never blocks."""
        if len(self._queue) >= MAX_PENDING:
            log.error("access log entry dropped", reason="queue full", action=call.action)
            return
        self._queue.append(call)

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
        batch = self._unwritten + [e for call in self._drain() if (e := self._entry(call))]
        self._unwritten = []
        if not batch:
            return 0
        try:
            self.store.insert(batch)
        except Exception:
            self._unwritten = batch[-MAX_PENDING:]
            raise
        return len(batch)

    def _run(self) -> None:
        while not self._stopping.wait(self._flush_seconds):
            try:
                self.flush()
            except Exception:
                log.exception("access log batch not written, retrying")
                self._stopping.wait(RETRY_SECONDS)

    def _drain(self) -> list[Call]:
        calls = []
        while self._queue:
            calls.append(self._queue.popleft())
        return calls

    def _entry(self, call: Call) -> AccessEntry | None:
        """The entry to store, or None: a number that names no prescription, or a patient's
        call on their own prescription (only a refused one reaches here: it is looked up, and
        the INS compared in memory, never stored)."""
        number = _canonical(call.prescription_id)
        if number is None:
            return None
        actor = call.actor
        if actor.role == "patient" and self._patient_of(number) == actor.ins:
            return None
        return AccessEntry(
            prescription_id=number,
            at=datetime.fromtimestamp(call.answered_at, UTC),
            role=actor.role,
            rpps=actor.rpps,
            finess=actor.finess,
            subject=actor.subject,
            action=call.action,
            status=call.status,
        )
