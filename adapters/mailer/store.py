"""The mailer's own state: the log position it has read up to, and each e-mail's delivery.

    ordo_mail_position  the last log position whose e-mails are queued (one row)
    ordo_mail_outbox    one row per Message-ID: the e-mail as recorded, its state
                        (pending / delivered / failed), attempts, next attempt, reason

Queueing a batch's e-mails and moving the position happen in one transaction, and a Message-ID
is queued once (its primary key), so following the log again after a crash queues nothing
twice. The same tables live in SQLite (`mailer.sqlite3` beside the embedded log) or in the
PostgreSQL schema of the log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

import asyncpg
import msgspec

from adapters.locks import file_leadership, leadership, lock_key
from adapters.readmodels.sqlite import Connection
from domain.events import Mail
from projections.runner import PositionMoved

DeliveryState = Literal["pending", "delivered", "failed"]


class Queued(msgspec.Struct, frozen=True, kw_only=True):
    """An e-mail waiting for delivery, with when its message was written."""

    mail: Mail
    written_at: datetime
    position: int
    attempts: int = 0


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    message_id: str
    kind: str
    attempts: int
    reason: str
    written_at: datetime


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Queued)


class OutboxStore(Protocol):
    async def create(self) -> None: ...

    async def position(self) -> int: ...

    async def enqueue(self, queued: Sequence[Queued], reached: int, expected: int) -> None: ...

    async def due(self, now: float, limit: int) -> list[Queued]: ...

    async def delivered(self, message_id: str, now: float) -> None: ...

    async def postpone(self, message_id: str, attempts: int, at: float, reason: str) -> None: ...

    async def failed(self, message_id: str, attempts: int, reason: str) -> None: ...

    async def next_due(self) -> float | None: ...

    async def counts(self) -> dict[str, int]: ...

    async def failures(self, limit: int) -> list[Failure]: ...

    def leadership(self) -> AbstractAsyncContextManager[None]: ...

    async def close(self) -> None: ...


class SqliteOutbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = Connection(path)

    async def create(self) -> None:
        await self.db.run(self._create, write=True)

    def _create(self, cur: sqlite3.Cursor) -> None:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS ordo_mail_position (id INTEGER PRIMARY KEY CHECK (id = 1), "
            "position INTEGER NOT NULL)"
        )
        cur.execute("INSERT OR IGNORE INTO ordo_mail_position VALUES (1, 0)")
        cur.execute(
            "CREATE TABLE IF NOT EXISTS ordo_mail_outbox (message_id TEXT PRIMARY KEY, "
            "position INTEGER NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, "
            "delivered_at REAL, reason TEXT, written_at TEXT NOT NULL, record BLOB NOT NULL)"
        )
        cur.execute(
            "CREATE INDEX IF NOT EXISTS ordo_mail_outbox_due ON ordo_mail_outbox "
            "(state, next_attempt_at)"
        )

    async def position(self) -> int:
        return await self.db.run(
            lambda cur: int(cur.execute("SELECT position FROM ordo_mail_position").fetchone()[0])
        )

    async def enqueue(self, queued: Sequence[Queued], reached: int, expected: int) -> None:
        def work(cur: sqlite3.Cursor) -> None:
            cur.execute(
                "UPDATE ordo_mail_position SET position = ? WHERE position = ?", (reached, expected)
            )
            if cur.rowcount != 1:
                raise PositionMoved(f"the mailer is no longer at {expected}")
            cur.executemany(
                "INSERT OR IGNORE INTO ordo_mail_outbox (message_id, position, kind, state, "
                "next_attempt_at, written_at, record) VALUES (?, ?, ?, 'pending', 0, ?, ?)",
                [
                    (
                        q.mail.message_id,
                        q.position,
                        q.mail.kind,
                        q.written_at.isoformat(),
                        _encoder.encode(q),
                    )
                    for q in queued
                ],
            )

        await self.db.run(work, write=True)

    async def due(self, now: float, limit: int) -> list[Queued]:
        rows = await self.db.run(
            lambda cur: cur.execute(
                "SELECT record, attempts FROM ordo_mail_outbox WHERE state = 'pending' "
                "AND next_attempt_at <= ? ORDER BY position, message_id LIMIT ?",
                (now, limit),
            ).fetchall()
        )
        return [msgspec.structs.replace(_decoder.decode(r[0]), attempts=r[1]) for r in rows]

    async def delivered(self, message_id: str, now: float) -> None:
        await self._update(
            "UPDATE ordo_mail_outbox SET state = 'delivered', delivered_at = ?, reason = NULL "
            "WHERE message_id = ?",
            (now, message_id),
        )

    async def postpone(self, message_id: str, attempts: int, at: float, reason: str) -> None:
        await self._update(
            "UPDATE ordo_mail_outbox SET attempts = ?, next_attempt_at = ?, reason = ? "
            "WHERE message_id = ?",
            (attempts, at, reason, message_id),
        )

    async def failed(self, message_id: str, attempts: int, reason: str) -> None:
        await self._update(
            "UPDATE ordo_mail_outbox SET state = 'failed', attempts = ?, reason = ? "
            "WHERE message_id = ?",
            (attempts, reason, message_id),
        )

    async def _update(self, sql: str, params: tuple[object, ...]) -> None:
        await self.db.run(lambda cur: cur.execute(sql, params), write=True)

    async def next_due(self) -> float | None:
        row = await self.db.run(
            lambda cur: cur.execute(
                "SELECT min(next_attempt_at) FROM ordo_mail_outbox WHERE state = 'pending'"
            ).fetchone()
        )
        return None if row[0] is None else float(row[0])

    async def counts(self) -> dict[str, int]:
        rows = await self.db.run(
            lambda cur: cur.execute(
                "SELECT state, count(*) FROM ordo_mail_outbox GROUP BY state"
            ).fetchall()
        )
        return {"pending": 0, "delivered": 0, "failed": 0, **{r[0]: int(r[1]) for r in rows}}

    async def failures(self, limit: int) -> list[Failure]:
        rows = await self.db.run(
            lambda cur: cur.execute(
                "SELECT message_id, kind, attempts, reason, written_at FROM ordo_mail_outbox "
                "WHERE state = 'failed' ORDER BY written_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [
            Failure(
                message_id=r[0],
                kind=r[1],
                attempts=r[2],
                reason=r[3] or "",
                written_at=datetime.fromisoformat(r[4]),
            )
            for r in rows
        ]

    def leadership(self) -> AbstractAsyncContextManager[None]:
        """One mailer per data directory: an OS file lock, released when its process dies."""
        return file_leadership(self.path.with_suffix(".lock"), poll_seconds=0.5)

    async def close(self) -> None:
        self.db.close()


class PostgresOutbox:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        self._outbox = f'"{schema}".ordo_mail_outbox'
        self._position = f'"{schema}".ordo_mail_position'

    async def create(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1)", lock_key(self.schema, "mailer-ddl")
            )
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._position} (id int PRIMARY KEY CHECK (id = 1), "
                "position bigint NOT NULL)"
            )
            await conn.execute(f"INSERT INTO {self._position} VALUES (1, 0) ON CONFLICT DO NOTHING")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {self._outbox} (message_id text PRIMARY KEY, "
                "position bigint NOT NULL, kind text NOT NULL, state text NOT NULL, "
                "attempts int NOT NULL DEFAULT 0, next_attempt_at double precision NOT NULL, "
                "delivered_at double precision, reason text, written_at timestamptz NOT NULL, "
                "record bytea NOT NULL)"
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS ordo_mail_outbox_due ON {self._outbox} "
                "(state, next_attempt_at)"
            )

    async def position(self) -> int:
        position: int = await self.pool.fetchval(f"SELECT position FROM {self._position}")
        return position

    async def enqueue(self, queued: Sequence[Queued], reached: int, expected: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            moved = await conn.execute(
                f"UPDATE {self._position} SET position = $1 WHERE position = $2", reached, expected
            )
            if moved != "UPDATE 1":
                raise PositionMoved(f"the mailer is no longer at {expected}")
            await conn.executemany(
                f"INSERT INTO {self._outbox} (message_id, position, kind, state, next_attempt_at, "
                "written_at, record) VALUES ($1, $2, $3, 'pending', 0, $4, $5) "
                "ON CONFLICT (message_id) DO NOTHING",
                [
                    (q.mail.message_id, q.position, q.mail.kind, q.written_at, _encoder.encode(q))
                    for q in queued
                ],
            )

    async def due(self, now: float, limit: int) -> list[Queued]:
        rows = await self.pool.fetch(
            f"SELECT record, attempts FROM {self._outbox} WHERE state = 'pending' "
            "AND next_attempt_at <= $1 ORDER BY position, message_id LIMIT $2",
            now,
            limit,
        )
        return [msgspec.structs.replace(_decoder.decode(r[0]), attempts=r[1]) for r in rows]

    async def delivered(self, message_id: str, now: float) -> None:
        await self.pool.execute(
            f"UPDATE {self._outbox} SET state = 'delivered', delivered_at = $1, reason = NULL "
            "WHERE message_id = $2",
            now,
            message_id,
        )

    async def postpone(self, message_id: str, attempts: int, at: float, reason: str) -> None:
        await self.pool.execute(
            f"UPDATE {self._outbox} SET attempts = $1, next_attempt_at = $2, reason = $3 "
            "WHERE message_id = $4",
            attempts,
            at,
            reason,
            message_id,
        )

    async def failed(self, message_id: str, attempts: int, reason: str) -> None:
        await self.pool.execute(
            f"UPDATE {self._outbox} SET state = 'failed', attempts = $1, reason = $2 "
            "WHERE message_id = $3",
            attempts,
            reason,
            message_id,
        )

    async def next_due(self) -> float | None:
        value = await self.pool.fetchval(
            f"SELECT min(next_attempt_at) FROM {self._outbox} WHERE state = 'pending'"
        )
        return None if value is None else float(value)

    async def counts(self) -> dict[str, int]:
        rows = await self.pool.fetch(f"SELECT state, count(*) FROM {self._outbox} GROUP BY state")
        return {"pending": 0, "delivered": 0, "failed": 0, **{r[0]: int(r[1]) for r in rows}}

    async def failures(self, limit: int) -> list[Failure]:
        rows = await self.pool.fetch(
            f"SELECT message_id, kind, attempts, reason, written_at FROM {self._outbox} "
            "WHERE state = 'failed' ORDER BY written_at DESC LIMIT $1",
            limit,
        )
        return [
            Failure(message_id=r[0], kind=r[1], attempts=r[2], reason=r[3] or "", written_at=r[4])
            for r in rows
        ]

    def leadership(self) -> AbstractAsyncContextManager[None]:
        return leadership(self.pool, lock_key(self.schema, "mailer"), poll_seconds=0.5)

    async def close(self) -> None:
        pass  # the pool belongs to whoever opened it
