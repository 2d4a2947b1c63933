"""`ordo backup` while pharmacies dispense, `ordo restore` into an empty instance, on both
stores: every dispensing acknowledged before the backup began is in the restored instance, a
truncated backup is refused before anything is restored, and a backup of a log altered in place
is refused by its hash chain and leaves the instance empty."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest

from adapters.config import schema_of
from adapters.postgres import asyncpg_target
from adapters.store.postgres import PostgresEventStore
from tests.integration.servers import ordo_server
from tests.integration.test_failover import read_back
from tests.integration.test_kill_mid_group import Ask, dispense, issue_all
from tools.cast import SECRET, People
from tools.harness import ordo_argv, without_ordo_settings

PRESCRIPTIONS = 6
CLIENTS = 6


@dataclass(frozen=True)
class Instance:
    """Where an ordo instance keeps its data: a PostgreSQL URL, or only a data directory."""

    data_dir: Path
    database_url: str = ""

    def env(self) -> dict[str, str]:
        env = {
            **without_ordo_settings(),
            "ORDO_DATA_DIR": str(self.data_dir),
            "ORDO_AUTH_SECRET": SECRET,
        }
        if self.database_url:
            env["ORDO_DATABASE_URL"] = self.database_url
        return env

    def ordo(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ordo_argv(*arguments),
            check=False,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )


@contextmanager
def empty_database_like(database_url: str) -> Iterator[str]:
    """A new database on the same server, for the same schema name; dropped afterwards."""
    name = f"restore_{uuid.uuid4().hex[:10]}"
    server = database_url.partition("?")[0]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlsplit(database_url)._replace(path=f"/{name}").geturl()
    try:
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def backup_while_dispensing(
    base_url: str, people: People, numbers: list[str], live: Instance, backup_dir: Path
) -> tuple[list[Ask], subprocess.CompletedProcess[str]]:
    """Pharmacies dispense; the backup runs mid-way. Returns the asks acknowledged before the
    backup began, and the backup's outcome."""
    acknowledged: list[Ask] = []
    started = threading.Event()
    done = threading.Event()
    outcome: list[subprocess.CompletedProcess[str]] = []

    def take_backup() -> None:
        started.set()
        outcome.append(live.ordo("backup", str(backup_dir)))
        done.set()

    async def client_loop(index: int, client: httpx.AsyncClient) -> None:
        round_no = 0
        while not done.is_set():
            ask = Ask(numbers[(index + round_no) % len(numbers)], f"bk-{index}-{round_no}", index)
            before_backup = not started.is_set()
            await dispense(client, people, ask)
            if before_backup:
                acknowledged.append(ask)
            if len(acknowledged) >= 30 and not started.is_set():
                threading.Thread(target=take_backup).start()
            round_no += 1

    async def load() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
            await asyncio.wait_for(
                asyncio.gather(*(client_loop(i, client) for i in range(CLIENTS))), timeout=90
            )

    asyncio.run(load())
    return acknowledged, outcome[0]


@pytest.fixture(params=["sqlite", "postgres"])
def instances(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Instance, Instance]]:
    """A live instance and an empty one to restore into, on one store."""
    if request.param == "sqlite":
        yield Instance(tmp_path / "live"), Instance(tmp_path / "restored")
        return
    live_url: str = request.getfixturevalue("postgres_url")
    with empty_database_like(live_url) as empty_url:
        yield Instance(tmp_path / "live", live_url), Instance(tmp_path / "restored", empty_url)


@pytest.mark.postgres
def test_a_backup_taken_while_dispensing_restores_every_acknowledged_dispensing(
    instances: tuple[Instance, Instance], tmp_path: Path, people: People
) -> None:
    live, empty = instances
    backup_dir = tmp_path / "backup"
    with ordo_server(live.database_url, live.data_dir) as (base_url, _):
        numbers = asyncio.run(issue_all(base_url, people, PRESCRIPTIONS))
        acknowledged, backed_up = backup_while_dispensing(
            base_url, people, numbers, live, backup_dir
        )
    assert backed_up.returncode == 0, backed_up.stderr

    truncated = tmp_path / "truncated"
    truncated.mkdir()
    for file in backup_dir.iterdir():
        data = file.read_bytes()
        (truncated / file.name).write_bytes(
            data[: len(data) - 100] if file.suffix != ".json" else data
        )
    refused = empty.ordo("restore", str(truncated))
    assert refused.returncode == 1
    assert "truncated" in refused.stderr

    restored = empty.ordo("restore", str(backup_dir))
    assert restored.returncode == 0, restored.stderr
    again = empty.ordo("restore", str(backup_dir))
    assert (again.returncode, "restore into an empty one" in again.stderr) == (1, True)
    with ordo_server(empty.database_url, empty.data_dir) as (base_url, _):
        shown = read_back(base_url, people, numbers)
    assert {ask.dispensation_id for ask in acknowledged} <= shown
    assert schema_of(empty.database_url) == schema_of(live.database_url)


@pytest.mark.postgres
def test_a_database_kept_in_the_public_schema_restores_into_another_ones_public_schema(
    postgres_server_url: str, tmp_path: Path
) -> None:
    with (
        empty_database_like(postgres_server_url) as live_url,
        empty_database_like(postgres_server_url) as empty_url,
    ):
        asyncio.run(create_the_event_store(live_url))
        live, empty = Instance(tmp_path / "live", live_url), Instance(tmp_path / "new", empty_url)

        assert live.ordo("backup", str(tmp_path / "backup")).returncode == 0
        restored = empty.ordo("restore", str(tmp_path / "backup"))

        assert restored.returncode == 0, restored.stderr
        assert "0 events" in restored.stdout


def alter_the_last_event(instance: Instance) -> None:
    """One byte of the last event's stored state flipped in place, as a hand on the database
    would: the manifest of a backup taken afterwards agrees with it, the chain does not."""
    flip = "set_byte(state, 20, get_byte(state, 20) # 1)"
    if not instance.database_url:
        with sqlite3.connect(instance.data_dir / "ordo.sqlite3") as conn:
            (state,) = conn.execute("SELECT state FROM ordo_events ORDER BY rowid DESC").fetchone()
            changed = bytearray(state)
            changed[20] ^= 0x01
            last = "(SELECT max(rowid) FROM ordo_events)"
            conn.execute(f"UPDATE ordo_events SET state = ? WHERE rowid = {last}", [changed])
        return
    dsn, schema = asyncpg_target(instance.database_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        table = f'"{schema}".ordo_events'
        last = f"(SELECT max(notification_id) FROM {table})"
        conn.execute(f"UPDATE {table} SET state = {flip} WHERE notification_id = {last}")


def holds_nothing(instance: Instance) -> bool:
    if not instance.database_url:
        return not list(instance.data_dir.glob("*.sqlite3"))
    dsn, schema = asyncpg_target(instance.database_url)
    with psycopg.connect(dsn) as conn:
        found = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", [schema])
        row = found.fetchone()
    return row is not None and row[0] == 0


@pytest.mark.postgres
def test_a_backup_of_a_log_altered_in_place_is_refused_and_restores_nothing(
    instances: tuple[Instance, Instance], tmp_path: Path, people: People
) -> None:
    live, empty = instances
    with ordo_server(live.database_url, live.data_dir) as (base_url, _):
        asyncio.run(issue_all(base_url, people, 2))
    alter_the_last_event(live)
    assert live.ordo("backup", str(tmp_path / "backup")).returncode == 0

    refused = empty.ordo("restore", str(tmp_path / "backup"))

    assert refused.returncode == 1
    assert "hash chain breaks at position" in refused.stderr
    assert holds_nothing(empty)


async def create_the_event_store(database_url: str) -> None:
    store = PostgresEventStore(database_url)
    await store.start()
    await store.close()
