"""The access log's batch writer: nothing queued is lost when the table cannot be written for a
while, nor when the server stops gracefully; a patient's own refused calls are left out."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.access.recorder import AccessRecorder, Call
from adapters.access.store import TABLE, AccessEntry, SqliteAccessLog
from domain.actors import Actor, Role
from domain.identifiers import PrescriptionNumber

NUMBER = PrescriptionNumber.generate().value
PATIENT = "184127645108946"


def call(role: Role = "pharmacist", status: int = 200, ins: str | None = None) -> Call:
    actor = Actor(role=role, subject=f"{role}-1", ins=ins)
    return Call(NUMBER, time.time(), actor, "read", status)


def recorder_on(tmp_path: Path, flush_seconds: float = 60.0) -> AccessRecorder:
    return AccessRecorder(SqliteAccessLog(tmp_path), lambda _: PATIENT, flush_seconds)


def stored(tmp_path: Path) -> int:
    return len(SqliteAccessLog(tmp_path).page(NUMBER, None, 1000))


def test_a_batch_that_could_not_be_written_is_written_by_the_next_flush(tmp_path: Path) -> None:
    recorder = recorder_on(tmp_path)
    with sqlite3.connect(tmp_path / "access-log.sqlite3") as conn:
        conn.execute(f"ALTER TABLE {TABLE} RENAME TO elsewhere")
    for _ in range(3):
        recorder.record(call())

    with pytest.raises(sqlite3.OperationalError):
        recorder.flush()
    with sqlite3.connect(tmp_path / "access-log.sqlite3") as conn:
        conn.execute(f"ALTER TABLE elsewhere RENAME TO {TABLE}")
    recorder.record(call())

    assert recorder.flush() == 4
    assert stored(tmp_path) == 4


def test_a_graceful_stop_writes_what_is_queued(tmp_path: Path) -> None:
    recorder = recorder_on(tmp_path, flush_seconds=60)  # the thread would not flush in time
    recorder.start()
    for _ in range(5):
        recorder.record(call())

    recorder.stop()

    assert stored(tmp_path) == 5


def test_the_writer_thread_flushes_within_its_interval(tmp_path: Path) -> None:
    recorder = recorder_on(tmp_path, flush_seconds=0.05)
    recorder.start()
    try:
        recorder.record(call())
        deadline = time.monotonic() + 1.0
        while stored(tmp_path) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stored(tmp_path) == 1
    finally:
        recorder.stop()


def test_a_patients_refused_call_is_kept_only_if_it_was_not_on_their_own(tmp_path: Path) -> None:
    recorder = recorder_on(tmp_path)
    recorder.record(call("patient", 403, ins=PATIENT))
    recorder.record(call("patient", 404, ins="290022A00100142"))

    assert recorder.flush() == 1
    (kept,) = SqliteAccessLog(tmp_path).page(NUMBER, None, 10)
    assert (kept.entry.role, kept.entry.status) == ("patient", 404)


def test_a_number_that_names_no_prescription_is_not_recorded(tmp_path: Path) -> None:
    recorder = recorder_on(tmp_path)
    recorder.record(
        Call("not-a-number", time.time(), Actor(role="insurer", subject="x"), "read", 404)
    )
    recorder.record(call())

    assert recorder.flush() == 1


def test_pages_end_to_end_give_every_entry_once_even_at_the_same_instant(tmp_path: Path) -> None:
    store = SqliteAccessLog(tmp_path)
    same = datetime(2026, 3, 1, 9, 30, 0, 438901, tzinfo=UTC)
    instants = [same] * 5 + [same + timedelta(microseconds=n) for n in (-1, 1, 7)]
    store.insert([entry_at(at, status) for status, at in enumerate(instants, start=200)])

    seen, before = [], None
    while page := store.page(NUMBER, before, 2):
        seen += [stored.entry.status for stored in page]
        before = page[-1].position

    assert sorted(seen) == list(range(200, 208))
    assert seen[0] == 207 and seen[-1] == 205  # newest first, the earliest last


def entry_at(at: datetime, status: int) -> AccessEntry:
    return AccessEntry(
        prescription_id=NUMBER,
        at=at,
        role="insurer",
        rpps=None,
        finess=None,
        subject="caisse",
        action="read",
        status=status,
    )
