# ruff: noqa: S608 - SQL is built from our own table names; every value is a bound parameter.
"""`ordo verify`: the log's hash chain recomputed, and every read model against a rebuild.

The chain (`adapters.chain`) is read in log order, batch by batch, and each stored hash compared
with SHA-256 of the previous one and the event's canonical bytes: the first that differs names
its position.

The read models are folded again from the log in this process, up to the position the live ones
stand at, and each table's rows compared with the rows the folded states give, all read in one
snapshot: the first row found on one side and not the other names its table. The live read
models keep serving meanwhile; when they move on during the fold, the fold catches up and the
comparison runs again. The folded states and the rows compared are held in memory: at the peak
about 7 kB per prescription of the log (2.1 GB for a log of 1,000,000 events, 285,714
prescriptions).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
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
from adapters.heap import collector_paused
from adapters.postgres import open_pool
from adapters.readmodels import ReadModels
from adapters.readmodels.postgres import PostgresReadModels
from adapters.readmodels.sqlite import SqliteReadModels
from adapters.readmodels.tables import TABLES, Dialect, Row
from domain.prescription import Prescription
from projections.folds import READ_MODEL_NAMES, ReadModelName
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


class HeldStates:
    """A rebuild's states held in this process (the `ReadModelStore` port): folding them
    needs no round trip, and their rows are compared with the live tables' at the end."""

    def __init__(self) -> None:
        self._by_id: dict[str, Prescription] = {}
        self._position = 0

    async def position(self) -> int:
        return self._position

    async def states(self, ids: Collection[str]) -> dict[str, Prescription]:
        return {id_: self._by_id[id_] for id_ in ids if id_ in self._by_id}

    async def apply(
        self, changed: Mapping[str, Prescription], position: int, expected: int
    ) -> None:
        assert expected == self._position, "one runner folds a rebuild"
        self._by_id.update(changed)
        self._position = position

    def rows(self, dialect: Dialect) -> dict[ReadModelName, set[Row]]:
        """Each table's rows as the live table stores them."""
        return {
            name: {
                dialect.row(row) for state in self._by_id.values() for row in table.rows_of(state)
            }
            for name, table in TABLES.items()
        }


async def first_difference(
    read_models: ReadModels, advanced: Callable[[int], None] = lambda position: None
) -> Difference | None:
    """The first read-model row that differs from a rebuild at the live position (None: all
    equal)."""
    live = read_models.store
    held = HeldStates()
    runner = ProjectionRunner(read_models.source, held, batch_size=REBUILD_BATCH, on_batch=advanced)
    # The held states grow to every prescription of the log, and the rows compared to every
    # row of the read models; they hold no cycles, and each full collection would walk them
    # all again (three quarters of the fold's time on 300,000 events).
    with collector_paused():
        for _ in range(COMPARISONS):
            await runner.catch_up(stop=await live.position())
            rows = await _live_rows(live, at=await held.position())
            if rows is not None:
                return _first_of(rows, held.rows(live.sql.dialect))
    msg = f"the live read models moved on during {COMPARISONS} comparisons: verify again"
    raise RuntimeError(msg)


def _first_of(
    live: dict[ReadModelName, set[Row]], rebuilt: dict[ReadModelName, set[Row]]
) -> Difference | None:
    """The first table (in `READ_MODEL_NAMES`' order) whose rows differ, and the first row
    only one side holds: a live row before a rebuilt one, then the least as written."""
    for name in READ_MODEL_NAMES:
        only = [("live", row) for row in live[name] - rebuilt[name]]
        only += [("rebuilt", row) for row in rebuilt[name] - live[name]]
        if only:
            side, row = min(only, key=repr)
            return Difference(name, side, row)
    return None


async def _live_rows(
    live: PostgresReadModels | SqliteReadModels, at: int
) -> dict[ReadModelName, set[Row]] | None:
    """Every live table's rows in one snapshot, if the live read models stand at `at` then
    (None: they moved on)."""
    queries = {
        name: f"SELECT {', '.join(table.column_names)} FROM {live.table(name)}"
        for name, table in TABLES.items()
    }
    if isinstance(live, PostgresReadModels):
        async with live.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            if await live.position_in(conn) != at:
                return None
            return {
                name: {tuple(row) for row in await conn.fetch(q)} for name, q in queries.items()
            }

    def read(cur: sqlite3.Cursor) -> dict[ReadModelName, set[Row]] | None:
        if live.position_in(cur) != at:
            return None
        return {name: set(cur.execute(q).fetchall()) for name, q in queries.items()}

    return await live.db.run(read)


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
