"""Servers starting together on a new database (the workers of one `ordo serve`, a standby
relay beside the leader): their start-up DDL runs one at a time, so none fails to start."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest

from adapters.access.store import open_access_log
from adapters.kafka.relay import create_positions_table
from adapters.librarylog import open_library_log
from adapters.postgres import asyncpg_target

pytestmark = pytest.mark.postgres

T = TypeVar("T")
TOGETHER = 8


def started_together(start: Callable[[], T]) -> list[T]:
    """`start()` in TOGETHER threads released at the same instant."""
    barrier = threading.Barrier(TOGETHER)

    def at_once() -> T:
        barrier.wait()
        return start()

    with ThreadPoolExecutor(TOGETHER) as pool:
        return [future.result() for future in [pool.submit(at_once) for _ in range(TOGETHER)]]


def test_servers_create_the_event_log_together(postgres_url: str, tmp_path: Path) -> None:
    logs = started_together(lambda: open_library_log(postgres_url, tmp_path, pool_size=2))

    assert {log.last_position() for log in logs} == {0}
    for log in logs:
        log.close()


def test_servers_create_the_access_log_together(postgres_url: str, tmp_path: Path) -> None:
    stores = started_together(lambda: open_access_log(postgres_url, tmp_path))

    assert {len(store.page("any", None, 10)) for store in stores} == {0}
    for store in stores:
        store.close()


def test_relays_create_their_positions_together(postgres_url: str) -> None:
    dsn, schema = asyncpg_target(postgres_url)

    async def create_one() -> None:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        try:
            await create_positions_table(pool, schema)
        finally:
            await pool.close()

    started_together(lambda: asyncio.run(create_one()))
