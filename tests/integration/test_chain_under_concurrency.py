"""The hash chain under concurrency, on a real PostgreSQL through real server processes.

Given two `ordo serve` processes on one database (each its own group commit, one key ring),
when 48 clients dispense at once, half through each, then `ordo verify` finds the chain whole
and every read model equal to a rebuild, and each receipt's log hash is the one stored at its
log position, signed by a key both servers publish.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from adapters.postgres import asyncpg_target
from tests.integration.servers import ordo_server
from tests.integration.test_postgres_races_and_crashes import pharmacy, register
from tools.cast import SECRET, People
from tools.harness import ordo_argv

pytestmark = pytest.mark.postgres
CLIENTS = 48


async def dispense_at_once(bases: list[str], people: People, numbers: list[str]) -> list[Any]:
    """Client `i` dispenses one pack of prescription `numbers[i % len]` through server `i % 2`."""
    async with httpx.AsyncClient(timeout=60) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    f"{bases[i % 2]}/v1/prescriptions/{numbers[i % len(numbers)]}/dispensations",
                    json={"lines": [{"line_no": 1, "quantity": 1}]},
                    headers=people.as_pharmacist(pharmacy(i)),
                )
                for i in range(CLIENTS)
            )
        )
    return list(answers)


def stored_hashes(database_url: str) -> dict[int, str]:
    dsn, schema = asyncpg_target(database_url)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f'SELECT notification_id, hash FROM "{schema}".ordo_events').fetchall()
    return {position: bytes(digest).hex() for position, digest in rows}


def test_48_clients_on_two_servers_leave_one_chain_that_verifies(
    postgres_url: str, tmp_path: Path, people: People
) -> None:
    with (
        ordo_server(postgres_url, tmp_path) as (first, _),
        ordo_server(postgres_url, tmp_path) as (second, _),
    ):
        numbers = [register(first, people, 8) for _ in range(12)]
        answers = asyncio.run(dispense_at_once([first, second], people, numbers))
        keys = [
            jwt.PyJWKSet.from_dict(httpx.get(f"{b}/.well-known/jwks.json").json())
            for b in (first, second)
        ]

    assert [a.status_code for a in answers] == [201] * CLIENTS, [a.text for a in answers]
    hashes = stored_hashes(postgres_url)
    for answer in answers:
        receipt = answer.headers["Ordo-Receipt"]
        kid = jwt.get_unverified_header(receipt)["kid"]
        for published in keys:
            claims = jwt.decode(receipt, published[kid].key, algorithms=["EdDSA"])
            assert hashes[claims["log_position"]] == claims["log_hash"]
    verify = subprocess.run(
        ordo_argv("verify"),
        env={
            **os.environ,
            "ORDO_DATABASE_URL": postgres_url,
            "ORDO_DATA_DIR": str(tmp_path),
            "ORDO_AUTH_SECRET": SECRET,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"the log's chain holds: {12 + CLIENTS} events" in verify.stdout
    assert "every read model equals a rebuild" in verify.stdout
