# ruff: noqa: S608 - SQL is built from our own table names; every value is a bound parameter.
"""`ordo verify`: the log's hash chain recomputed, and every read model against a rebuild.

The chain (`adapters.chain`) is read in log order, batch by batch, and each stored hash compared
with SHA-256 of the previous one and the event's canonical bytes: the first that differs names
its position. The read models are folded again from the log into a copy beside the live tables
(suffix `_verify`, dropped afterwards), up to the position the live ones stand at, and each
table compared with its copy in one snapshot: the first row found in one and not in the other
names its table. The live read models keep serving meanwhile; when they move on during the
comparison the copy catches up and the comparison runs again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from adapters.bootstrap import read_models_for
from adapters.chain import ChainBreak, ChainCheck, ChainRow, event_head
from adapters.chain_postgres import ChainSql
from adapters.config import Settings
from adapters.eventtable import EVENTS_TABLE, EventTableSql
from adapters.postgres import open_pool
from adapters.readmodels import ReadModels
from adapters.readmodels.postgres import PostgresReadModels
from adapters.readmodels.sqlite import SqliteReadModels
from projections.folds import READ_MODEL_NAMES
from projections.runner import REBUILD_BATCH, ProjectionRunner

CHAIN_BATCH = 20_000  # rows read at a time
COMPARISONS = 5  # the live read models moved on this often: give up, say so


class LogRows(Protocol):
    def batches(self) -> AsyncIterator[list[ChainRow]]:
        """The whole log in order, `CHAIN_BATCH` rows at a time."""
        ...

    async def head(self) -> int: ...


class PostgresLogRows:
    """The log by pages of positions, the next page asked for while one is checked."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        sql = EventTableSql(schema)
        self._query = ChainSql(sql).rows_after
        self._head = sql.head

    async def batches(self) -> AsyncIterator[list[ChainRow]]:
        following = asyncio.ensure_future(self._after(0))
        try:
            while batch := await following:
                following = asyncio.ensure_future(self._after(batch[-1][0]))
                await asyncio.sleep(0)  # the next page is on its way
                yield batch
        finally:
            following.cancel()
            with suppress(asyncio.CancelledError):
                await following

    async def _after(self, position: int) -> list[ChainRow]:
        async with self._pool.acquire() as conn:
            rows: list[Any] = await conn.fetch(self._query, position, CHAIN_BATCH)  # as tuples
            return rows

    async def head(self) -> int:
        async with self._pool.acquire() as conn:
            return int(await conn.fetchval(self._head) or 0)


class SqliteLogRows:
    """The embedded log's file, read-only."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    async def batches(self) -> AsyncIterator[list[ChainRow]]:
        cursor = self._conn.execute(
            "SELECT rowid, originator_id, originator_version, topic, state, hash "
            f"FROM {EVENTS_TABLE} ORDER BY rowid"
        )
        while batch := cursor.fetchmany(CHAIN_BATCH):
            yield [(row[0], event_head(row[1], row[2], row[3]), row[4], row[5]) for row in batch]

    async def head(self) -> int:
        return int(self._conn.execute(f"SELECT max(rowid) FROM {EVENTS_TABLE}").fetchone()[0] or 0)

    def close(self) -> None:
        self._conn.close()


async def verify_chain(
    rows: LogRows, advanced: Callable[[int], None] = lambda position: None
) -> tuple[ChainBreak | None, ChainCheck]:
    """The first break of the chain (None: it holds), and how far the check went."""
    check = ChainCheck()
    async for batch in rows.batches():
        if (broken := check.check(batch)) is not None:
            return broken, check
        advanced(check.last_position)
    return None, check


class Difference(msgspec.Struct, frozen=True):
    """A row of a read model that the live table and a rebuild do not both hold."""

    table: str
    side: str  # "live" (only in the live table) or "rebuilt" (only in the rebuild)
    row: tuple[Any, ...]

    def __str__(self) -> str:
        where = (
            "the live table but not in a rebuild"
            if self.side == "live"
            else ("a rebuild but not in the live table")
        )
        return f"read model {self.table}: the row {self.row!r} is in {where}"


def _difference_query(live: str, rebuilt: str) -> str:
    return (
        f"SELECT 'live', * FROM (SELECT * FROM {live} EXCEPT SELECT * FROM {rebuilt}) AS a "
        f"UNION ALL SELECT 'rebuilt', * FROM (SELECT * FROM {rebuilt} EXCEPT "
        f"SELECT * FROM {live}) AS b LIMIT 1"
    )


async def first_difference(
    read_models: ReadModels, advanced: Callable[[int], None] = lambda position: None
) -> Difference | None:
    """The first read-model row that differs from a rebuild at the live position (None: all
    equal)."""
    live = read_models.store
    copy = _verify_copy(live)
    await copy.drop()
    await copy.create()
    runner = ProjectionRunner(read_models.source, copy, batch_size=REBUILD_BATCH, on_batch=advanced)
    try:
        for _ in range(COMPARISONS):
            await runner.catch_up(stop=await live.position())
            compared, difference = await _compare(live, copy)
            if compared:
                return difference
        msg = f"the live read models moved on during {COMPARISONS} comparisons: verify again"
        raise RuntimeError(msg)
    finally:
        await copy.drop()


def _verify_copy(
    live: PostgresReadModels | SqliteReadModels,
) -> PostgresReadModels | SqliteReadModels:
    if isinstance(live, PostgresReadModels):
        return PostgresReadModels(live.pool, live.schema, "_verify")
    return SqliteReadModels(live.path, "_verify", live.db)


async def _compare(
    live: PostgresReadModels | SqliteReadModels, copy: PostgresReadModels | SqliteReadModels
) -> tuple[bool, Difference | None]:
    """In one snapshot: whether both stand at one position, and then their first difference."""
    queries = [
        (name, _difference_query(live.table(name), copy.table(name))) for name in READ_MODEL_NAMES
    ]
    if isinstance(live, PostgresReadModels):
        assert isinstance(copy, PostgresReadModels)
        async with live.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            if await live.position_in(conn) != await copy.position_in(conn):
                return False, None
            for name, query in queries:
                if (row := await conn.fetchrow(query)) is not None:
                    return True, Difference(name, row[0], tuple(row)[1:])
            return True, None
    assert isinstance(copy, SqliteReadModels)

    def compare(cur: sqlite3.Cursor) -> tuple[bool, Difference | None]:
        if live.position_in(cur) != copy.position_in(cur):
            return False, None
        for name, query in queries:
            if (row := cur.execute(query).fetchone()) is not None:
                return True, Difference(name, row[0], tuple(row)[1:])
        return True, None

    return await live.db.run(compare)


async def verify(settings: Settings, console: Console) -> bool:
    """`ordo verify`: the chain, then the read models; says what it found, True if all hold."""
    started = time.perf_counter()
    async with _log_rows(settings) as rows:
        with _progress(console) as progress:
            task = progress.add_task("the log's hash chain", total=await rows.head())
            broken, check = await verify_chain(rows, lambda at: progress.update(task, completed=at))
    if broken is not None:
        console.print(
            f"[red]the log's chain breaks at position {broken.position}[/]: {broken.reason}"
        )
        return False
    elapsed = max(time.perf_counter() - started, 1e-6)
    console.print(
        f"the log's chain holds: {check.checked} events up to position {check.last_position} "
        f"in {elapsed:.1f} s ({check.checked / elapsed:,.0f} events/s)"
    )
    async with read_models_for(settings) as read_models:
        with _progress(console) as progress:
            position = await read_models.store.position()
            task = progress.add_task("the read models, rebuilt", total=position)
            difference = await first_difference(
                read_models, lambda at: progress.update(task, completed=at)
            )
    if difference is not None:
        console.print(f"[red]{difference}[/]")
        return False
    console.print(f"every read model equals a rebuild from the log ({', '.join(READ_MODEL_NAMES)})")
    return True


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("checking {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


async def chain_break(settings: Settings) -> ChainBreak | None:
    """The first break of the instance's chain, without a progress bar (a restore's check)."""
    async with _log_rows(settings) as rows:
        broken, _ = await verify_chain(rows)
    return broken


@asynccontextmanager
async def _log_rows(settings: Settings) -> AsyncIterator[LogRows]:
    if settings.database_url is None:
        rows = SqliteLogRows(settings.data_dir / "ordo.sqlite3")
        try:
            yield rows
        finally:
            rows.close()
        return
    pool, schema = await open_pool(settings.database_url, 2)
    try:
        yield PostgresLogRows(pool, schema)
    finally:
        await pool.close()


__all__ = [
    "Difference",
    "LogRows",
    "PostgresLogRows",
    "SqliteLogRows",
    "chain_break",
    "first_difference",
    "verify",
    "verify_chain",
]
