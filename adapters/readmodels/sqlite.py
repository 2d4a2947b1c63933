"""Read models of the embedded default: a SQLite file beside the event log (`views.sqlite3`).

Same tables (`tables.py`) and the same transaction discipline as on PostgreSQL (rows and
position committed together, `BEGIN IMMEDIATE` as the apply lock); the runner lives inside
`ordo serve`, woken by the process's own appends and, for writers in other processes, by a
short poll.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from adapters.librarylog import LibraryLog
from adapters.locks import file_leadership
from adapters.readmodels.queries import ReadModelQueries
from adapters.readmodels.rows import state_decoder
from adapters.readmodels.tables import (
    PRESCRIPTIONS,
    SQLITE,
    ReadModelSql,
    replacements,
)
from domain.prescription import Prescription
from projections.folds import READ_MODEL_NAMES, ReadModelName
from projections.runner import (
    REBUILD_BATCH,
    EventFeed,
    Notification,
    PositionMoved,
    ProjectionRunner,
    Switch,
)

T = TypeVar("T")


class SqliteEventFeed(EventFeed):
    """The embedded event log's notifications; `notify()` wakes the runner from any thread."""

    def __init__(self, log: LibraryLog) -> None:
        self._log = log
        self._news = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def read(self, after: int, limit: int) -> Sequence[Notification]:
        notifications = await anyio.to_thread.run_sync(self._log.notifications, after, limit)
        mapper = self._log.mapper
        return [
            (
                n.id,
                mapper.decode(n.topic, n.state) if mapper.is_prescription_event(n.topic) else None,
            )
            for n in notifications
        ]

    async def head(self) -> int:
        return await anyio.to_thread.run_sync(self._log.last_position)

    def notify(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._news.set)

    async def wait_for_news(self, seconds: float) -> None:
        self._loop = asyncio.get_running_loop()
        with suppress(TimeoutError):
            await asyncio.wait_for(self._news.wait(), seconds)
        self._news.clear()


class SqliteReadModels(ReadModelQueries):
    """The read models' tables in one SQLite file; `suffix="_next"` names a rebuild's copy."""

    def __init__(self, path: Path, suffix: str = "", connection: Connection | None = None) -> None:
        self.path = path
        self.suffix = suffix
        self.db = connection or Connection(path)
        self.sql = ReadModelSql(SQLITE, None, suffix)
        self._keys = SQLITE.listed(self.sql.position_keys())

    def table(self, name: ReadModelName) -> str:
        return self.sql.table(name)

    def scratch(self) -> SqliteReadModels:
        return SqliteReadModels(self.path, "_next", self.db)

    async def create(self) -> None:
        await self.db.run(self._create, write=True)

    def _create(self, cur: sqlite3.Cursor) -> None:
        for statement in self.sql.create():
            cur.execute(statement)
        # A table added by an upgrade starts where the others stand: the events it folds did
        # not exist before it (conversations came with it).
        start = self.position_in(cur)
        cur.executemany(self.sql.start_position, [(key, start) for key in self.sql.position_keys()])

    async def drop(self) -> None:
        await self.db.run(self._drop, write=True)

    def _drop(self, cur: sqlite3.Cursor) -> None:
        for name in READ_MODEL_NAMES:
            cur.execute(self.sql.drop(name))
        if cur.execute(
            "SELECT name FROM sqlite_master WHERE name = 'ordo_projection_positions'"
        ).fetchone():
            cur.execute(self.sql.forget_positions, [self._keys])

    # --- the ReadModelStore port ------------------------------------------------------------

    async def position(self) -> int:
        return await self.db.run(self.position_in)

    def position_in(self, cur: sqlite3.Cursor) -> int:
        row = cur.execute(self.sql.position, [self._keys]).fetchone()
        return int(row[0] or 0)

    async def states(self, ids: Collection[str]) -> dict[str, Prescription]:
        encoded = await self.encoded_states(ids)
        return {id_: state_decoder.decode(state) for id_, state in encoded.items()}

    async def apply(
        self, changed: Mapping[str, Prescription], position: int, expected: int
    ) -> None:
        await self.db.run(lambda cur: self._apply_in(cur, changed, position, expected), write=True)

    def _apply_in(
        self, cur: sqlite3.Cursor, changed: Mapping[str, Prescription], position: int, expected: int
    ) -> None:
        cur.execute(self.sql.move_positions, [position, self._keys, expected])
        if cur.rowcount != len(READ_MODEL_NAMES):
            raise PositionMoved(f"read models are no longer at {expected}")
        states = list(changed.values())
        cur.executemany(
            self.sql.upsert(PRESCRIPTIONS),
            [SQLITE.row(row) for s in states for row in PRESCRIPTIONS.rows_of(s)],
        )
        for replaced in replacements(states):
            cur.execute(
                self.sql.delete_prescriptions(replaced.table),
                [SQLITE.listed(replaced.prescription_ids)],
            )
            cur.executemany(
                self.sql.insert(replaced.table), [SQLITE.row(row) for row in replaced.rows]
            )

    async def _fetch(self, query: str, params: list[Any]) -> list[Any]:
        return await self.db.run(lambda cur: cur.execute(query, params).fetchall())

    # --- operations ------------------------------------------------------------------------------

    def leadership(self, poll_seconds: float = 1.0) -> AbstractAsyncContextManager[None]:
        """One runner per data directory: an OS file lock, released when its process dies."""
        return file_leadership(self.path.with_suffix(".lock"), poll_seconds)

    async def switch_to(self, switch: Switch) -> int:
        """The catch-up reads the log and applies outside the switch's write transaction (one
        connection: a transaction cannot span the thread hops); the switch then checks that
        the live tables did not move meanwhile."""
        scratch = switch.scratch
        assert isinstance(scratch, SqliteReadModels)
        reached = max(switch.target, await self.position())
        runner = ProjectionRunner(switch.source, scratch, batch_size=REBUILD_BATCH)
        await runner.catch_up(stop=reached)
        return await self.db.run(
            lambda cur: self._replace_all(cur, scratch, switch.views, reached), write=True
        )

    def _replace_all(
        self,
        cur: sqlite3.Cursor,
        scratch: SqliteReadModels,
        views: Collection[ReadModelName],
        reached: int,
    ) -> int:
        if self.position_in(cur) > reached:
            raise PositionMoved(
                "the live read models moved during the switch; run the rebuild again"
            )
        for name in views:
            for statement in self.sql.replace_with(scratch.sql, name):
                cur.execute(statement)
        scratch._drop(cur)
        cur.execute(self.sql.set_positions, [reached, self._keys])
        return reached


class Connection:
    """One SQLite connection shared by the runner and the API, used by one thread at a time."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=30
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()

    async def run(self, work: Callable[[sqlite3.Cursor], T], *, write: bool = False) -> T:
        return await anyio.to_thread.run_sync(self._run, work, write)

    def _run(self, work: Callable[[sqlite3.Cursor], T], write: bool) -> T:
        with self._lock, self._transaction(write) as cur:
            return work(cur)

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Cursor]:
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def close(self) -> None:
        """Waits for the work in progress: a cancelled task's thread may still be using it."""
        with self._lock:
            self._conn.close()
