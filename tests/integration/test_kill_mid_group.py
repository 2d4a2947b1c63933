"""SIGKILL of a server while groups of appends are in flight, on a real PostgreSQL.

Given narcotic prescriptions (a dispensing appends to the prescription, to the patient's
coverage stream, and an idempotency record), when many pharmacies dispense at once and the
server is killed -9 mid-load, then after a restart: every acknowledged dispensing is in the
log once, and every unacknowledged one is there entirely (its retry replays it) or not at all
(its retry records it), never in part.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from adapters.postgres import asyncpg_target
from domain.identifiers import Ins
from tests.integration.servers import ordo_server
from tests.integration.test_postgres_races_and_crashes import pharmacy, secure_morphine_for
from tools.cast import People

pytestmark = pytest.mark.postgres

CLIENTS = 48
KILL_AFTER = 300  # acknowledged dispensings before the kill


@dataclass
class Ask:
    number: str
    key: str
    finess_index: int
    dispensation_id: str | None = None  # set once a 201 was received


def morphine_for_many(patient: str) -> dict[str, Any]:
    body = secure_morphine_for(patient)
    line = body["lines"][0]
    line["quantity"] = 999
    return body


async def issue_all(base_url: str, people: People, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        numbers = []
        for index in range(count):
            patient = Ins.from_body(f"1850175{index:06d}").value
            answer = await client.post(
                "/v1/prescriptions", json=morphine_for_many(patient), headers=people.as_prescriber()
            )
            assert answer.status_code == 201, answer.text
            numbers.append(answer.json()["prescription_id"])
        return numbers


async def dispense(client: httpx.AsyncClient, people: People, ask: Ask) -> None:
    answer = await client.post(
        f"/v1/prescriptions/{ask.number}/dispensations",
        json={"lines": [{"line_no": 1, "quantity": 1}]},
        headers={
            **people.as_pharmacist(pharmacy(ask.finess_index)),
            "Idempotency-Key": ask.key,
        },
    )
    assert answer.status_code == 201, answer.text
    ask.dispensation_id = answer.json()["dispensation_id"]


async def load_until_killed(
    base_url: str, people: People, numbers: list[str], pid: int
) -> list[Ask]:
    """CLIENTS pharmacies dispense one pack after another; the server dies under them."""
    asks: list[Ask] = []
    enough = asyncio.Event()

    async def client_loop(index: int, client: httpx.AsyncClient) -> None:
        for round_no in range(10_000):
            ask = Ask(numbers[(index + round_no) % len(numbers)], f"kill-{index}-{round_no}", index)
            asks.append(ask)
            try:
                await dispense(client, people, ask)
            except httpx.TransportError:
                return
            if sum(a.dispensation_id is not None for a in asks) >= KILL_AFTER:
                enough.set()

    async def killer() -> None:
        await enough.wait()  # mid-load: 48 requests in flight, groups being committed
        os.kill(pid, signal.SIGKILL)

    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await asyncio.gather(killer(), *(client_loop(i, client) for i in range(CLIENTS)))
    return asks


async def retry_unacknowledged(base_url: str, people: People, asks: list[Ask]) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for ask in asks:
            if ask.dispensation_id is None:
                await dispense(client, people, ask)


async def count_rows(database_url: str) -> dict[str, int]:
    dsn, schema = asyncpg_target(database_url)
    conn = await asyncpg.connect(dsn)
    try:
        events = f'"{schema}".ordo_events'
        return {
            "dispensations": await conn.fetchval(
                f"SELECT count(*) FROM {events} WHERE topic LIKE 'DispensationRecorded.%'"
            ),
            "coverage": await conn.fetchval(
                f"SELECT count(*) FROM {events} WHERE originator_id LIKE 'narcotic-coverage:%'"
            ),
            "records": await conn.fetchval(f'SELECT count(*) FROM "{schema}".ordo_idempotency'),
        }
    finally:
        await conn.close()


async def dispensation_ids(database_url: str) -> list[str]:
    dsn, schema = asyncpg_target(database_url)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            f"SELECT state FROM \"{schema}\".ordo_events WHERE topic LIKE 'DispensationRecorded.%'"
        )
        import msgspec  # noqa: PLC0415

        return [msgspec.json.decode(row[0])["dispensation_id"] for row in rows]
    finally:
        await conn.close()


def test_a_server_killed_mid_group_loses_no_acknowledged_dispensing_and_splits_none(
    postgres_url: str, tmp_path: Path, people: People
) -> None:
    with ordo_server(postgres_url, tmp_path) as (base_url, process):
        numbers = asyncio.run(issue_all(base_url, people, 24))
        asks = asyncio.run(load_until_killed(base_url, people, numbers, process.pid))
        assert process.wait(timeout=10) == -signal.SIGKILL
    acknowledged = {a.key: a.dispensation_id for a in asks if a.dispensation_id is not None}
    unacknowledged = [a for a in asks if a.dispensation_id is None]
    assert len(acknowledged) >= KILL_AFTER and unacknowledged, (
        "the kill must cut requests in flight"
    )
    before_retries = asyncio.run(count_rows(postgres_url))

    with ordo_server(postgres_url, tmp_path) as (base_url, _):
        asyncio.run(retry_unacknowledged(base_url, people, asks))

    # Every command appended its three parts together, or nothing: as many of each as commands.
    assert before_retries["dispensations"] == before_retries["coverage"]
    assert before_retries["dispensations"] == before_retries["records"]
    assert before_retries["dispensations"] >= len(acknowledged)
    after = asyncio.run(count_rows(postgres_url))
    assert after == dict.fromkeys(after, len(asks))  # each ask once, retried or not
    stored = asyncio.run(dispensation_ids(postgres_url))
    assert len(stored) == len(set(stored))
    # Acknowledged answers are the log's: each once, under the id the client was given.
    assert set(acknowledged.values()) <= set(stored)
