# ruff: noqa: S608 - SQL is built from our own table names; every value is a bound parameter.
"""The access log's own append-only table: SQLite (embedded default) or PostgreSQL.

It is not the event log: reads change nothing, and an entry records a call (who, when, which
action, which answer), never what was read. Rows are only inserted, and deleted by
`ordo access-log prune` once older than the retention period. No patient identifier is stored:
the prescription number keys the rows, and the caller's identity is a professional's (RPPS,
FINESS), a role, and the token's subject.

SQLite keeps the table in its own file (`access-log.sqlite3`, WAL) beside the event log's, so
the batch writer never waits for the log's single write lock nor makes a command wait for it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

import msgspec
import psycopg
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from adapters.locks import lock_key
from adapters.postgres import asyncpg_target

TABLE = "ordo_access_log"
SQLITE_FILE = "access-log.sqlite3"


class AccessEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One call on a prescription's endpoints, as answered."""

    prescription_id: str
    at: datetime
    role: str
    rpps: str | None
    finess: str | None
    subject: str
    action: str
    status: int


class Position(msgspec.Struct, frozen=True, array_like=True):
    """Where a page stopped: newest first on (at, id), so later entries never shift it."""

    at: datetime
    id: int


class StoredEntry(msgspec.Struct, frozen=True):
    position: Position
    entry: AccessEntry


@runtime_checkable
class AccessLogStore(Protocol):
    def insert(self, entries: Sequence[AccessEntry]) -> None: ...

    def page(
        self, prescription_id: str, before: Position | None, limit: int
    ) -> list[StoredEntry]: ...

    def prune(self, older_than: datetime) -> int: ...

    def close(self) -> None: ...


COLUMNS = "prescription_id, at, role, rpps, finess, subject, action, status"


def _row(entry: AccessEntry) -> tuple[object, ...]:
    return (
        entry.prescription_id,
        entry.at,
        entry.role,
        entry.rpps,
        entry.finess,
        entry.subject,
        entry.action,
        entry.status,
    )


def _stored(row: Sequence[object]) -> StoredEntry:
    entry_id, prescription_id, at, role, rpps, finess, subject, action, status = row
    moment = at if isinstance(at, datetime) else _from_micros(int(str(at)))
    entry = AccessEntry(
        prescription_id=str(prescription_id),
        at=moment.astimezone(UTC),
        role=str(role),
        rpps=None if rpps is None else str(rpps),
        finess=None if finess is None else str(finess),
        subject=str(subject),
        action=str(action),
        status=int(str(status)),
    )
    return StoredEntry(Position(entry.at, int(str(entry_id))), entry)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    """SQLite keeps instants as integer microseconds since the epoch (UTC): ordered, compact,
    and no text formatting on the write path. Integer arithmetic, so that a page's cursor
    names exactly the instant stored (no float rounding)."""
    return (moment - EPOCH) // MICROSECOND


def _from_micros(micros: int) -> datetime:
    return EPOCH + micros * MICROSECOND


# One statement per batch, its rows in one JSON parameter: the writer thread releases and takes
# back the GIL once per batch instead of once per row (each take-back can wait behind the
# request threads), which is what made a row-by-row executemany cost reads on a busy server.
SQLITE_INSERT = (
    f"INSERT INTO {TABLE} ({COLUMNS}) SELECT "
    + ", ".join(f"json_extract(value, '$[{n}]')" for n in range(8))
    + " FROM json_each(?)"
)
POSTGRES_RECORD = (
    "prescription_id text, at timestamptz, role text, rpps text, finess text, subject text, "
    "action text, status smallint"
)


class SqliteAccessLog:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / SQLITE_FILE
        with self._connection() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "prescription_id TEXT NOT NULL, at INTEGER NOT NULL, role TEXT NOT NULL, "
                "rpps TEXT, finess TEXT, subject TEXT NOT NULL, action TEXT NOT NULL, "
                "status INTEGER NOT NULL)"
            )
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {TABLE}_by_prescription "
                f"ON {TABLE} (prescription_id, at DESC, id DESC)"
            )
            conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_by_time ON {TABLE} (at)")
        # The writer's own connection, kept open: opening one per batch would also make each
        # close checkpoint the WAL (the last connection to close a WAL database does).
        self._writer = sqlite3.connect(
            self.path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._writer.execute("PRAGMA synchronous=NORMAL")
        self._writing = threading.Lock()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        # One short-lived connection per call: the writer thread and request threads never
        # share one, and WAL lets readers run beside the writer.
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
            yield conn
        finally:
            conn.close()

    def insert(self, entries: Sequence[AccessEntry]) -> None:
        rows = msgspec.json.encode(
            [(e.prescription_id, _micros(e.at), *_row(e)[2:]) for e in entries]
        )
        with self._writing:
            self._writer.execute(SQLITE_INSERT, [rows.decode()])

    def page(self, prescription_id: str, before: Position | None, limit: int) -> list[StoredEntry]:
        query = f"SELECT id, {COLUMNS} FROM {TABLE} WHERE prescription_id = ?"
        params: list[object] = [prescription_id]
        if before is not None:
            query += " AND (at < ? OR (at = ? AND id < ?))"
            at = _micros(before.at)
            params += [at, at, before.id]
        query += " ORDER BY at DESC, id DESC LIMIT ?"
        with self._connection() as conn:
            rows = conn.execute(query, [*params, limit]).fetchall()
        return [_stored(row) for row in rows]

    def prune(self, older_than: datetime) -> int:
        with self._connection() as conn:
            cursor = conn.execute(f"DELETE FROM {TABLE} WHERE at < ?", [_micros(older_than)])
            return cursor.rowcount

    def close(self) -> None:
        self._writer.close()


class PostgresAccessLog:
    def __init__(self, dsn: str, schema: str) -> None:
        self._table = f'"{schema}".{TABLE}'
        self._pool: ConnectionPool[psycopg.Connection[TupleRow]] = ConnectionPool(
            dsn, min_size=1, max_size=4, kwargs={"autocommit": True}, open=True
        )
        # Servers starting together create the table one at a time (concurrent `CREATE TABLE
        # IF NOT EXISTS` of one table make one of them fail).
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(schema, "access-log-ddl")])
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._table} (id BIGSERIAL PRIMARY KEY, "
                "prescription_id TEXT NOT NULL, at TIMESTAMPTZ NOT NULL, role TEXT NOT NULL, "
                "rpps TEXT, finess TEXT, subject TEXT NOT NULL, action TEXT NOT NULL, "
                "status SMALLINT NOT NULL)"
            )
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {TABLE}_by_prescription "
                f"ON {self._table} (prescription_id, at DESC, id DESC)"
            )
            conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_by_time ON {self._table} (at)")

    def insert(self, entries: Sequence[AccessEntry]) -> None:
        # One statement for the whole batch, its rows in one JSON parameter (encoded in C).
        rows = msgspec.json.encode(entries).decode()
        with self._pool.connection() as conn:
            conn.execute(
                f"INSERT INTO {self._table} ({COLUMNS}) SELECT {COLUMNS} "
                f"FROM jsonb_to_recordset(%s::jsonb) AS x({POSTGRES_RECORD})",
                [rows],
            )

    def page(self, prescription_id: str, before: Position | None, limit: int) -> list[StoredEntry]:
        query = f"SELECT id, {COLUMNS} FROM {self._table} WHERE prescription_id = %s"
        params: list[object] = [prescription_id]
        if before is not None:
            query += " AND (at, id) < (%s, %s)"
            params += [before.at, before.id]
        query += " ORDER BY at DESC, id DESC LIMIT %s"
        with self._pool.connection() as conn:
            rows = conn.execute(query, [*params, limit]).fetchall()
        return [_stored(row) for row in rows]

    def prune(self, older_than: datetime) -> int:
        with self._pool.connection() as conn:
            cursor = conn.execute(f"DELETE FROM {self._table} WHERE at < %s", [older_than])
            return cursor.rowcount

    def close(self) -> None:
        self._pool.close()


def open_access_log(database_url: str | None, data_dir: Path) -> AccessLogStore:
    """Beside the instance's event log: the same PostgreSQL schema, or a file under data_dir."""
    if database_url:
        dsn, schema = asyncpg_target(database_url)
        return PostgresAccessLog(dsn, schema)
    return SqliteAccessLog(data_dir)
