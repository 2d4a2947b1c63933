"""Read models of the embedded default: a SQLite file beside the event log (`views.sqlite3`).

Same tables and the same transaction discipline as on PostgreSQL (rows and position committed
together, `BEGIN IMMEDIATE` as the apply lock); the runner lives inside `ordo serve`, woken by
the process's own appends and, for writers in other processes, by a short poll.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio.to_thread

from adapters.eventstore import EventLog
from adapters.readmodels.rows import (
    COLUMNS,
    conversation_decoder,
    conversation_rows,
    dispensing_rows,
    inbox_decoder,
    inbox_rows,
    state_decoder,
    state_row,
)
from domain.conversation import Conversation
from domain.prescription import Prescription
from projections.folds import VIEW_NAMES, InboxEntry, ViewName, fold_batch
from projections.pages import CursorKey
from projections.runner import (
    REBUILD_BATCH,
    LogSource,
    Notification,
    PositionMoved,
    RebuildableStore,
)

T = TypeVar("T")
INDEXES: dict[ViewName, list[tuple[str, str]]] = {
    "prescriptions": [
        ("by_prescriber", "prescriber_rpps, issued_at DESC, prescription_id DESC"),
        ("by_patient", "patient_ins, issued_at DESC, prescription_id DESC"),
    ],
    "inbox": [
        ("by_time", "finess, transmitted_at, prescription_id"),
        ("by_prescription", "prescription_id"),
    ],
    "dispensings": [("by_patient", "patient_ins, dispensed_at")],
    "conversations": [
        ("by_pharmacy", "finess, last_activity_at DESC, conversation_id DESC"),
        ("by_patient", "patient_ins, last_activity_at DESC, conversation_id DESC"),
        ("by_prescription", "prescription_id"),
    ],
}
TABLES: dict[ViewName, str] = {
    "prescriptions": "prescription_id TEXT PRIMARY KEY, prescriber_rpps TEXT NOT NULL, "
    "patient_ins TEXT NOT NULL, issued_at TEXT NOT NULL, version INTEGER NOT NULL, "
    "state BLOB NOT NULL",
    "inbox": "finess TEXT NOT NULL, prescription_id TEXT NOT NULL, transmitted_at TEXT NOT NULL, "
    "expires_on TEXT NOT NULL, entry BLOB NOT NULL, PRIMARY KEY (finess, prescription_id)",
    "dispensings": "prescription_id TEXT NOT NULL, dispensation_id TEXT NOT NULL, "
    "line_no INTEGER NOT NULL, patient_ins TEXT NOT NULL, product_code TEXT, "
    "quantity INTEGER NOT NULL, narcotic INTEGER NOT NULL, duration_days INTEGER NOT NULL, "
    "dispensed_at TEXT NOT NULL, finess TEXT NOT NULL, "
    "PRIMARY KEY (prescription_id, dispensation_id, line_no)",
    "conversations": "conversation_id TEXT PRIMARY KEY, prescription_id TEXT NOT NULL, "
    "finess TEXT NOT NULL, patient_ins TEXT NOT NULL, last_activity_at TEXT NOT NULL, "
    "entry BLOB NOT NULL",
}


class SqliteLog(LogSource):
    """The embedded event log's notifications; `notify()` wakes the runner from any thread."""

    def __init__(self, log: EventLog) -> None:
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


class SqliteViews:
    """The views' tables in one SQLite file; `suffix="_next"` names a rebuild's copy."""

    def __init__(self, path: Path, suffix: str = "", connection: Connection | None = None) -> None:
        self.path = path
        self.suffix = suffix
        self.db = connection or Connection(path)

    def table(self, view: ViewName) -> str:
        return f"ordo_view_{view}{self.suffix}"

    def keys(self) -> list[str]:
        return [f"{view}{self.suffix}" for view in VIEW_NAMES]

    def scratch(self) -> SqliteViews:
        return SqliteViews(self.path, "_next", self.db)

    async def create(self) -> None:
        await self.db.run(self._create)

    def _create(self, cur: sqlite3.Cursor) -> None:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS ordo_projection_positions ("
            "view TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at TEXT)"
        )
        for view in VIEW_NAMES:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self.table(view)} ({TABLES[view]})")
            self._create_indexes(cur, view, self.table(view))
        # A view added by an upgrade starts where the others stand: the events it folds did
        # not exist before it (conversations came with it).
        (start,) = cur.execute(
            f"SELECT coalesce(min(position), 0) FROM ordo_projection_positions "
            f"WHERE view IN {_ALL_VIEWS}",
            self.keys(),
        ).fetchone()
        cur.executemany(
            "INSERT OR IGNORE INTO ordo_projection_positions (view, position) VALUES (?, ?)",
            [(key, start) for key in self.keys()],
        )

    def _create_indexes(self, cur: sqlite3.Cursor, view: ViewName, table: str) -> None:
        for name, columns in INDEXES[view]:
            cur.execute(f"CREATE INDEX IF NOT EXISTS {table}_{name} ON {table} ({columns})")

    async def drop(self) -> None:
        await self.db.run(self._drop)

    def _drop(self, cur: sqlite3.Cursor) -> None:
        for view in VIEW_NAMES:
            cur.execute(f"DROP TABLE IF EXISTS {self.table(view)}")
        if cur.execute(
            "SELECT name FROM sqlite_master WHERE name = 'ordo_projection_positions'"
        ).fetchone():
            cur.execute(
                f"DELETE FROM ordo_projection_positions WHERE view IN {_ALL_VIEWS}",
                self.keys(),
            )

    # --- the ViewStore port ----------------------------------------------------------------------

    async def position(self) -> int:
        return await self.db.run(self.position_in)

    def position_in(self, cur: sqlite3.Cursor) -> int:
        row = cur.execute(
            f"SELECT min(position) FROM ordo_projection_positions WHERE view IN {_ALL_VIEWS}",
            self.keys(),
        ).fetchone()
        return int(row[0] or 0)

    async def states(self, ids: Collection[str]) -> dict[str, Prescription]:
        return await self.db.run(lambda cur: self.states_in(cur, ids))

    async def encoded_states(self, ids: Collection[str]) -> dict[str, bytes]:
        """The states as stored (MessagePack), undecoded: reconciliation decodes what it needs."""
        if not ids:
            return {}
        query = (
            f"SELECT prescription_id, state FROM {self.table('prescriptions')} "
            "WHERE prescription_id IN (SELECT value FROM json_each(?))"
        )
        ids_json = json.dumps(list(ids))
        rows = await self.db.run(lambda cur: cur.execute(query, [ids_json]).fetchall())
        return {row[0]: row[1] for row in rows}

    def states_in(self, cur: sqlite3.Cursor, ids: Collection[str]) -> dict[str, Prescription]:
        found: dict[str, Prescription] = {}
        ordered = list(ids)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            rows = cur.execute(
                f"SELECT prescription_id, state FROM {self.table('prescriptions')} "
                f"WHERE prescription_id IN {_marks(len(chunk))}",
                chunk,
            )
            found.update({row[0]: state_decoder.decode(row[1]) for row in rows})
        return found

    async def apply(
        self, changed: Mapping[str, Prescription], position: int, expected: int
    ) -> None:
        await self.db.run(lambda cur: self.apply_in(cur, changed, position, expected), write=True)

    def apply_in(
        self, cur: sqlite3.Cursor, changed: Mapping[str, Prescription], position: int, expected: int
    ) -> None:
        cur.execute(
            "UPDATE ordo_projection_positions SET position = ?, updated_at = ? "
            f"WHERE view IN {_ALL_VIEWS} AND position = ?",
            [position, _now(), *self.keys(), expected],
        )
        if cur.rowcount != len(VIEW_NAMES):
            raise PositionMoved(f"views are no longer at {expected}")
        states = list(changed.values())
        cur.executemany(
            f"INSERT INTO {self.table('prescriptions')} VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (prescription_id) DO UPDATE "
            "SET state = excluded.state, version = excluded.version "
            f"WHERE {self.table('prescriptions')}.version < excluded.version",
            [_sqlite_row(state_row(s)) for s in states],
        )
        self._replace(cur, "inbox", [s for s in states if s.transmissions], inbox_rows)
        self._replace(cur, "dispensings", [s for s in states if s.dispensations], dispensing_rows)
        self._replace(
            cur, "conversations", [s for s in states if s.conversations], conversation_rows
        )

    def _replace(
        self,
        cur: sqlite3.Cursor,
        view: ViewName,
        states: list[Prescription],
        rows_of: Callable[[Prescription], list[tuple[Any, ...]]],
    ) -> None:
        if not states:
            return
        cur.executemany(
            f"DELETE FROM {self.table(view)} WHERE prescription_id = ?",
            [(s.prescription_id,) for s in states],
        )
        rows = [_sqlite_row(row) for state in states for row in rows_of(state)]
        cur.executemany(
            f"INSERT INTO {self.table(view)} ({', '.join(COLUMNS[view])}) "
            f"VALUES {_marks(len(COLUMNS[view]))}",
            rows,
        )

    # --- what the API reads ----------------------------------------------------------------------

    async def prescriptions_page(
        self,
        by: Literal["prescriber_rpps", "patient_ins"],
        value: str,
        after: CursorKey | None,
        limit: int,
    ) -> list[Prescription]:
        query = f"SELECT state FROM {self.table('prescriptions')} WHERE {by} = ?"
        params: list[Any] = [value]
        if after is not None:
            query += " AND (issued_at, prescription_id) < (?, ?)"
            params += [_sqlite_value(after.at), after.prescription_id]
        query += " ORDER BY issued_at DESC, prescription_id DESC LIMIT ?"
        rows = await self.db.run(lambda cur: cur.execute(query, [*params, limit]).fetchall())
        return [state_decoder.decode(row[0]) for row in rows]

    async def inbox_page(
        self, finess: str, today: date, after: CursorKey | None, limit: int
    ) -> list[InboxEntry]:
        query = f"SELECT entry FROM {self.table('inbox')} WHERE finess = ? AND expires_on >= ?"
        params: list[Any] = [finess, today.isoformat()]
        if after is not None:
            query += " AND (transmitted_at, prescription_id) > (?, ?)"
            params += [_sqlite_value(after.at), after.prescription_id]
        query += " ORDER BY transmitted_at, prescription_id LIMIT ?"
        rows = await self.db.run(lambda cur: cur.execute(query, [*params, limit]).fetchall())
        return [inbox_decoder.decode(row[0]) for row in rows]

    async def conversations_page(
        self,
        by: Literal["finess", "patient_ins"],
        value: str,
        after: CursorKey | None,
        limit: int,
    ) -> list[Conversation]:
        """Newest activity first."""
        query = f"SELECT entry FROM {self.table('conversations')} WHERE {by} = ?"
        params: list[Any] = [value]
        if after is not None:
            query += " AND (last_activity_at, conversation_id) < (?, ?)"
            params += [_sqlite_value(after.at), after.prescription_id]
        query += " ORDER BY last_activity_at DESC, conversation_id DESC LIMIT ?"
        rows = await self.db.run(lambda cur: cur.execute(query, [*params, limit]).fetchall())
        return [conversation_decoder.decode(row[0]) for row in rows]

    # --- operations ------------------------------------------------------------------------------

    @asynccontextmanager
    async def leadership(self, poll_seconds: float = 1.0) -> AsyncIterator[None]:
        """One runner per data directory: an OS file lock, released when its process dies."""
        lock_path = self.path.with_suffix(".lock")
        with lock_path.open("w") as handle:
            while not _try_lock(handle.fileno()):  # noqa: ASYNC110
                await asyncio.sleep(poll_seconds)  # a file lock has no event to await
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    async def switch_to(
        self, scratch: RebuildableStore, source: LogSource, views: Collection[ViewName], target: int
    ) -> int:
        assert isinstance(scratch, SqliteViews)
        reached = max(target, await self.position())
        # The catch-up reads the log outside the write transaction, then applies inside it.
        while (position := await scratch.position()) < reached:
            batch = await source.read(position, min(REBUILD_BATCH, reached - position))
            events = [event for _, event in batch if event is not None]
            states = await scratch.states({event.prescription_id for event in events})
            await scratch.apply(fold_batch(states, events), batch[-1][0], position)
        return await self.db.run(
            lambda cur: self._rename_all(cur, scratch, views, reached), write=True
        )

    def _rename_all(
        self, cur: sqlite3.Cursor, scratch: SqliteViews, views: Collection[ViewName], reached: int
    ) -> int:
        if self.position_in(cur) > reached:
            raise PositionMoved("the live views moved during the switch; run the rebuild again")
        for view in views:
            cur.execute(f"DROP TABLE IF EXISTS {self.table(view)}")
            cur.execute(f"ALTER TABLE {scratch.table(view)} RENAME TO {self.table(view)}")
            for name, _ in INDEXES[view]:
                cur.execute(f"DROP INDEX IF EXISTS {scratch.table(view)}_{name}")
            self._create_indexes(cur, view, self.table(view))
        scratch._drop(cur)
        cur.execute(
            f"UPDATE ordo_projection_positions SET position = ? WHERE view IN {_ALL_VIEWS}",
            [reached, *self.keys()],
        )
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


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _marks(count: int) -> str:
    return "(" + ", ".join("?" * count) + ")"


_ALL_VIEWS = _marks(len(VIEW_NAMES))


def _now() -> str:
    return datetime.now().astimezone().isoformat()


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Times and days as ISO text (which sorts like the values), booleans as integers."""
    return tuple(_sqlite_value(value) for value in row)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return value.isoformat() if isinstance(value, date) else value
