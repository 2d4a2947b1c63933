"""The access log survives a crash of `ordo serve`: SIGKILL the real process in the middle of a
stream of reads, and every call answered more than 1 s before the kill is in the table."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from adapters.access.store import open_access_log
from domain.identifiers import PrescriptionNumber
from tests.integration.servers import ordo_server
from tools.cast import People


def reads_until_stopped(
    base_url: str, number: str, people: People, stop: threading.Event
) -> list[float]:
    """A pharmacy reading the prescription in a loop; the instant each answer arrived."""
    answered = []
    with httpx.Client(base_url=base_url, headers=people.as_pharmacist(), timeout=5) as client:
        while not stop.is_set():
            try:
                response = client.get(f"/v1/prescriptions/{number}")
            except httpx.TransportError:
                break  # the server is gone
            if response.status_code == 200:
                answered.append(time.time())
    return answered


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_entries_answered_a_second_before_a_kill_survive_it(
    backend: str, tmp_path: Path, people: People, request: pytest.FixtureRequest
) -> None:
    database_url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    with ordo_server(database_url, tmp_path) as (base_url, process):
        created = httpx.post(
            f"{base_url}/v1/prescriptions",
            json=people.prescription_body(3),
            headers=people.as_prescriber(),
        )
        number = created.json()["prescription_id"]
        stop = threading.Event()
        answered: list[float] = []
        reader = threading.Thread(
            target=lambda: answered.extend(reads_until_stopped(base_url, number, people, stop))
        )
        reader.start()
        time.sleep(2.5)

        killed_at = time.time()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        stop.set()
        reader.join(timeout=10)

    store = open_access_log(database_url or None, tmp_path)
    try:
        stored = store.page(PrescriptionNumber.parse(number).value, None, 1_000_000)
    finally:
        store.close()
    due = [at for at in answered if at < killed_at - 1.0]
    recorded = [s.entry.at.timestamp() for s in stored]
    assert len(due) > 50, "the server answered too few reads to test anything"
    assert len(recorded) >= len(due), (len(recorded), len(due), len(answered))
    assert all(
        sum(1 for at in recorded if at <= answer + 0.05) >= rank
        for rank, answer in enumerate(due, start=1)
    ), "an entry answered more than 1 s before the kill is missing"
