"""Webhooks end to end with real processes: the receiver down for 10 s (its port closed, each
connection refused) while events are appended, then up again on the same port, loses nothing;
and a prescriber's subscription under the patient's opposition, through a real server, an
`ordo webhooks` process and a receiver, is never told of a dispensing, nor anything more than
the prescriber may read."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.servers import ordo_process, ordo_server, wait_for
from tests.integration.test_webhooks import Receiver, World, pushed, sent_then_cancelled
from tools.cast import SECRET, People

DOWN_SECONDS = 10


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.release.set()
    server.server.shutdown()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def ids_received(receiver: Receiver) -> set[str]:
    return {webhook_id for _, webhook_id, _ in receiver.received}


def refusals(data_dir: Path) -> list[tuple[int, str]]:
    """(attempts, reason) of the deliveries still pending after a failed attempt."""
    with sqlite3.connect(f"file:{data_dir / 'webhooks.sqlite3'}?mode=ro", uri=True) as db:
        return db.execute(
            "SELECT attempts, reason FROM ordo_webhook_deliveries "
            "WHERE state = 'pending' AND attempts > 0"
        ).fetchall()


def test_the_receiver_down_10_s_then_up_on_its_port_loses_nothing_and_keeps_the_order(
    tmp_path: Path, people: People, receiver: Receiver
) -> None:
    world = World(tmp_path, people)

    async def given() -> list[str]:
        await world.hooks.create()
        await world.subscribe(receiver, "/pharmacy", ("pharmacy", people.pharmacy))
        await world.subscribe(receiver, "/prescriber", ("prescriber", people.prescriber))
        return [await world.send_and_cancel() for _ in range(3)]

    async def appended_while_down() -> list[str]:
        ids, ends = [], time.monotonic() + DOWN_SECONDS
        while time.monotonic() < ends:
            ids.append(await world.send_and_cancel())
            await asyncio.sleep(1)
        return ids

    before = asyncio.run(given())
    env = {**os.environ, "ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH_SECRET": SECRET}
    deliverer = subprocess.Popen([sys.executable, "-m", "adapters.cli", "webhooks"], env=env)
    try:
        wait_for(lambda: len(ids_received(receiver)) == 9, 30, "the deliveries before the outage")
        port, secrets, received = receiver.port, receiver.secrets, receiver.received
        receiver.stop()
        assert refused(port)
        during = asyncio.run(appended_while_down())
        tried = refusals(tmp_path)
        assert len(received) == 9, "nothing arrives while the port is closed"
        back = Receiver(secrets=secrets, received=received, port=port)
        try:
            expected = 9 + 3 * len(during)
            wait_for(lambda: len(ids_received(back)) == expected, 60, "the deliveries after it")
            time.sleep(0.5)  # anything sent twice would arrive now
        finally:
            back.server.shutdown()
    finally:
        deliverer.terminate()
        deliverer.wait(15)

    assert tried and all("ConnectError" in reason for _, reason in tried)
    ids = before + during
    assert pushed(back, "/pharmacy") == sent_then_cancelled(ids)
    assert pushed(back, "/prescriber") == [("cancellation", pid) for pid in ids]
    assert len(back.received) == len(ids_received(back))  # each once
    assert asyncio.run(world.hooks.counts()) == {
        "pending": 0,
        "delivered": 3 * len(ids),
        "failed": 0,
    }


ALL_KINDS = ["transmission", "cancellation", "message", "dispensed_elsewhere"]


@pytest.mark.postgres
def test_a_prescriber_under_the_patient_s_opposition_is_not_told_of_a_dispensing(
    postgres_url: str, tmp_path: Path, receiver: Receiver, people: People
) -> None:
    data_dir = tmp_path / "data"
    env = {"ORDO_WEBHOOKS_ALLOW_HTTP": "true"}
    with ordo_server(postgres_url, data_dir, extra_env=env) as (base, _):
        made = httpx.post(
            f"{base}/v1/subscriptions",
            json={"url": receiver.url("/lap"), "events": ALL_KINDS},
            headers=people.as_prescriber(),
        )
        assert made.status_code == 201, made.text
        receiver.secrets["/lap"] = made.json()["secret"]

        def issued_and_dispensed(opposed: bool) -> str:
            number: str = httpx.post(
                f"{base}/v1/prescriptions",
                json=people.prescription_body(2),
                headers=people.as_prescriber(),
            ).json()["prescription_id"]
            if opposed:
                changed = httpx.put(
                    f"{base}/v1/prescriptions/{number}/execution-view-consent",
                    json={"consent": False},
                    headers=people.as_patient(),
                )
                assert changed.status_code == 200, changed.text
            dispensed = httpx.post(
                f"{base}/v1/prescriptions/{number}/dispensations",
                json={"lines": [{"line_no": 1, "quantity": 1}]},
                headers=people.as_pharmacist(),
            )
            assert dispensed.status_code == 201, dispensed.text
            return number  # a webhook names it as the API does

        opposed = issued_and_dispensed(opposed=True)
        consenting = issued_and_dispensed(opposed=False)
        last = httpx.post(
            f"{base}/v1/prescriptions",
            json=people.prescription_body(1),
            headers=people.as_prescriber(),
        ).json()["prescription_id"]
        cancelled = httpx.post(
            f"{base}/v1/prescriptions/{last}/cancel",
            json={"reason": "erreur de posologie"},
            headers=people.as_prescriber(),
        )
        assert cancelled.status_code in (200, 201), cancelled.text
        webhooks_env = {
            "ORDO_DATABASE_URL": postgres_url,
            "ORDO_DATA_DIR": str(data_dir),
            "ORDO_WEBHOOKS_ALLOW_HTTP": "true",
        }
        with ordo_process(["webhooks"], webhooks_env, tmp_path / "webhooks.log"):
            # in order per subscription: once the cancellation is in, all before it was sent
            wait_for(lambda: len(receiver.received) >= 2, 30, "the prescriber's webhooks")
            time.sleep(0.5)

    assert pushed(receiver, "/lap") == [
        ("dispensed_elsewhere", consenting),
        ("cancellation", last),
    ]
    for _, _, payload in receiver.received:
        assert set(payload) == {"type", "timestamp", "data"}
        assert set(payload["data"]) <= {"prescription_id", "reason"}
    told = json.dumps([payload for _, _, payload in receiver.received])
    for unreadable in (opposed, people.pharmacy, people.pharmacist, people.patient):
        assert unreadable not in told
