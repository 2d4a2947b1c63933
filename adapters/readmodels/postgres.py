"""Read models on PostgreSQL, written and queried through asyncpg.

Tables (beside the event log, in the same schema):

    ordo_view_prescriptions   one row per prescription: its folded state, indexed for the
                              prescriber's and the patient's lists (newest first)
    ordo_view_inbox           one row per (pharmacy, prescription) still to prepare
    ordo_view_dispensings     one row per product handed to a patient
    ordo_view_conversations   one row per MSSanté conversation, for the pharmacy's and the
                              patient's lists (newest activity first)
    ordo_projection_positions the log position each view has applied

A batch rewrites the rows of the prescriptions it touches and moves the positions in one
transaction. A rebuild writes the same tables with a `_next` suffix beside the live ones, then
catches up and renames them in one transaction, while the API keeps reading the live ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import date
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from adapters.config import schema_of
from adapters.eventstore import EventMapper
from adapters.eventtable import CHANNEL, EventTableSql
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
from domain.events import Event
from domain.prescription import Prescription
from projections.folds import (
    VIEW_NAMES,
    InboxEntry,
    ViewName,
    fold_batch,
)
from projections.pages import CursorKey
from projections.runner import (
    REBUILD_BATCH,
    LogSource,
    Notification,
    PositionMoved,
    RebuildableStore,
)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn = PoolConnectionProxy[asyncpg.Record]

OUR_OPTIONS = {"schema", "pool_size", "max_overflow"}


def asyncpg_target(database_url: str) -> tuple[str, str]:
    """The DSN asyncpg understands, and the schema (ordo's own `?schema=` option)."""
    url = urlsplit(database_url)
    kept = urlencode([(k, v) for k, v in parse_qsl(url.query) if k not in OUR_OPTIONS])
    return urlunsplit(url._replace(scheme="postgresql", query=kept)), schema_of(database_url)


def connection_settings() -> dict[str, str]:
    """Name every connection after the process that opened it, so an operator (and a test)
    reading pg_stat_activity, or a trigger, knows which runner, relay or worker did what."""
    name = f"ordo-{os.getpid()}@{socket.gethostname()}"
    return {"application_name": name[:63]}  # PostgreSQL keeps 63 bytes of it


def lock_key(schema: str, purpose: str) -> int:
    """An advisory lock key per schema, so separate deployments never block each other."""
    digest = hashlib.sha256(f"ordo:{schema}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@asynccontextmanager
async def leadership(
    pool: asyncpg.Pool, key: int, poll_seconds: float = 1.0
) -> AsyncIterator[None]:
    """One holder at a time; a standby waits and takes over when the holder's session ends
    (a session-level advisory lock dies with its connection, so a killed leader frees it)."""
    async with pool.acquire() as conn:
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):  # noqa: ASYNC110
            await asyncio.sleep(poll_seconds)  # a database lock has no event to await
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", key)


class PostgresLog(LogSource):
    """The event store's notification log, read with asyncpg and woken by LISTEN/NOTIFY."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._sql = EventTableSql(schema)
        self._mapper = EventMapper()
        self._news = asyncio.Event()
        self._listener: Conn | None = None

    async def read(self, after: int, limit: int) -> Sequence[Notification]:
        rows = await self._pool.fetch(self._sql.notifications, after, limit)
        return [(row[0], self._decode(row[1], row[2])) for row in rows]

    async def head(self) -> int:
        head: int | None = await self._pool.fetchval(self._sql.head)
        return head or 0

    async def wait_for_news(self, seconds: float) -> None:
        if self._listener is None:
            # Kept before LISTEN is sent: a runner cancelled in between (at shutdown) must
            # still give the connection back in close(), or closing the pool waits forever.
            self._listener = await self._pool.acquire()
            await self._listener.add_listener(CHANNEL, self._notified)
        try:
            await asyncio.wait_for(self._news.wait(), seconds)
        except TimeoutError:
            return
        finally:
            self._news.clear()

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                await listener.remove_listener(CHANNEL, self._notified)
            finally:
                await self._pool.release(listener)  # the pool's reset UNLISTENs in any case

    def _notified(self, *_: object) -> None:
        self._news.set()

    def _decode(self, topic: str, state: bytes) -> Event | None:
        if not self._mapper.is_prescription_event(topic):
            return None
        return self._mapper.decode(topic, state)


class PostgresViews:
    """The views' tables; `suffix="_next"` names the copy a rebuild writes beside them."""

    def __init__(self, pool: asyncpg.Pool, schema: str, suffix: str = "") -> None:
        self.pool = pool
        self.schema = schema
        self.suffix = suffix
        self._apply_lock = lock_key(schema, "apply")

    # --- names and schema -----------------------------------------------------------------------

    def table(self, view: ViewName) -> str:
        return f'"{self.schema}".ordo_view_{view}{self.suffix}'

    def position_key(self, view: ViewName) -> str:
        return f"{view}{self.suffix}"

    async def create(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._apply_lock)
            for statement in self._ddl():
                await conn.execute(statement)
            # A view added by an upgrade starts where the others stand: the events it folds
            # did not exist before it (conversations came with it).
            start = await self.position_in(conn)
            await conn.executemany(
                f'INSERT INTO "{self.schema}".ordo_projection_positions (view, position) '
                "VALUES ($1, $2) ON CONFLICT (view) DO NOTHING",
                [(self.position_key(view), start) for view in VIEW_NAMES],
            )

    def _ddl(self) -> list[str]:
        s, x = self.schema, self.suffix
        return [
            f'CREATE TABLE IF NOT EXISTS "{s}".ordo_projection_positions ('
            "view text PRIMARY KEY, position bigint NOT NULL, "
            "updated_at timestamptz NOT NULL DEFAULT now())",
            f"CREATE TABLE IF NOT EXISTS {self.table('prescriptions')} ("
            "prescription_id text NOT NULL, prescriber_rpps text NOT NULL, "
            "patient_ins text NOT NULL, issued_at timestamptz NOT NULL, version int NOT NULL, "
            "state bytea NOT NULL, "
            f"CONSTRAINT ordo_view_prescriptions{x}_pkey PRIMARY KEY (prescription_id))",
            f"CREATE INDEX IF NOT EXISTS ordo_view_prescriptions{x}_by_prescriber ON "
            f"{self.table('prescriptions')} "
            "(prescriber_rpps, issued_at DESC, prescription_id DESC)",
            f"CREATE INDEX IF NOT EXISTS ordo_view_prescriptions{x}_by_patient ON "
            f"{self.table('prescriptions')} (patient_ins, issued_at DESC, prescription_id DESC)",
            f"CREATE TABLE IF NOT EXISTS {self.table('inbox')} ("
            "finess text NOT NULL, prescription_id text NOT NULL, "
            "transmitted_at timestamptz NOT NULL, expires_on date NOT NULL, entry bytea NOT NULL, "
            f"CONSTRAINT ordo_view_inbox{x}_pkey PRIMARY KEY (finess, prescription_id))",
            f"CREATE INDEX IF NOT EXISTS ordo_view_inbox{x}_by_time ON "
            f"{self.table('inbox')} (finess, transmitted_at, prescription_id)",
            f"CREATE INDEX IF NOT EXISTS ordo_view_inbox{x}_by_prescription ON "
            f"{self.table('inbox')} (prescription_id)",
            f"CREATE TABLE IF NOT EXISTS {self.table('dispensings')} ("
            "prescription_id text NOT NULL, dispensation_id text NOT NULL, line_no int NOT NULL, "
            "patient_ins text NOT NULL, product_code text, quantity int NOT NULL, "
            "narcotic boolean NOT NULL, duration_days int NOT NULL, "
            "dispensed_at timestamptz NOT NULL, finess text NOT NULL, "
            f"CONSTRAINT ordo_view_dispensings{x}_pkey "
            "PRIMARY KEY (prescription_id, dispensation_id, line_no))",
            f"CREATE INDEX IF NOT EXISTS ordo_view_dispensings{x}_by_patient ON "
            f"{self.table('dispensings')} (patient_ins, dispensed_at)",
            f"CREATE TABLE IF NOT EXISTS {self.table('conversations')} ("
            "conversation_id text NOT NULL, prescription_id text NOT NULL, finess text NOT NULL, "
            "patient_ins text NOT NULL, last_activity_at timestamptz NOT NULL, "
            "entry bytea NOT NULL, "
            f"CONSTRAINT ordo_view_conversations{x}_pkey PRIMARY KEY (conversation_id))",
            f"CREATE INDEX IF NOT EXISTS ordo_view_conversations{x}_by_pharmacy ON "
            f"{self.table('conversations')} (finess, last_activity_at DESC, conversation_id DESC)",
            f"CREATE INDEX IF NOT EXISTS ordo_view_conversations{x}_by_patient ON "
            f"{self.table('conversations')} "
            "(patient_ins, last_activity_at DESC, conversation_id DESC)",
            f"CREATE INDEX IF NOT EXISTS ordo_view_conversations{x}_by_prescription ON "
            f"{self.table('conversations')} (prescription_id)",
        ]

    def index_names(self, view: ViewName) -> list[str]:
        kinds = {
            "prescriptions": ["pkey", "by_prescriber", "by_patient"],
            "inbox": ["pkey", "by_time", "by_prescription"],
            "dispensings": ["pkey", "by_patient"],
            "conversations": ["pkey", "by_pharmacy", "by_patient", "by_prescription"],
        }[view]
        return [f"ordo_view_{view}{{}}_{kind}" for kind in kinds]

    async def drop(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for view in VIEW_NAMES:
                await conn.execute(f"DROP TABLE IF EXISTS {self.table(view)}")
            await self._forget_positions(conn, VIEW_NAMES)

    async def _forget_positions(self, conn: Conn, views: Collection[ViewName]) -> None:
        exists = await conn.fetchval(
            "SELECT to_regclass($1)", f'"{self.schema}".ordo_projection_positions'
        )
        if exists:
            await conn.execute(
                f'DELETE FROM "{self.schema}".ordo_projection_positions WHERE view = ANY($1)',
                [self.position_key(view) for view in views],
            )

    # --- the ViewStore port ---------------------------------------------------------------------

    async def position(self) -> int:
        async with self.pool.acquire() as conn:
            return await self.position_in(conn)

    async def position_in(self, conn: Conn) -> int:
        position: int | None = await conn.fetchval(
            f'SELECT min(position) FROM "{self.schema}".ordo_projection_positions '
            "WHERE view = ANY($1)",
            [self.position_key(view) for view in VIEW_NAMES],
        )
        return position or 0

    async def states(self, ids: Collection[str]) -> dict[str, Prescription]:
        async with self.pool.acquire() as conn:
            return await self.states_in(conn, ids)

    async def states_in(
        self, conn: Conn, ids: Collection[str], *, for_update: bool = False
    ) -> dict[str, Prescription]:
        """With `for_update`, concurrent writers of the same prescriptions wait for each other
        (two Kafka workers during a rebalance) instead of folding from the same old state."""
        rows = await conn.fetch(
            f"SELECT prescription_id, state FROM {self.table('prescriptions')} "
            "WHERE prescription_id = ANY($1) ORDER BY prescription_id"
            + (" FOR UPDATE" if for_update else ""),
            list(ids),
        )
        return {row[0]: state_decoder.decode(row[1]) for row in rows}

    async def apply(
        self, changed: Mapping[str, Prescription], position: int, expected: int
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._apply_lock)
            await self.apply_in(conn, changed, position, expected)

    async def apply_in(
        self,
        conn: Conn,
        changed: Mapping[str, Prescription],
        position: int,
        expected: int,
    ) -> None:
        moved = await conn.execute(
            f'UPDATE "{self.schema}".ordo_projection_positions '
            "SET position = $1, updated_at = now() WHERE view = ANY($2) AND position = $3",
            position,
            [self.position_key(view) for view in VIEW_NAMES],
            expected,
        )
        if moved != f"UPDATE {len(VIEW_NAMES)}":
            raise PositionMoved(f"views are no longer at {expected}")
        if changed:
            await self.write_rows(conn, list(changed.values()))

    async def write_rows(self, conn: Conn, states: list[Prescription]) -> None:
        """Each view's rows for these prescriptions; a state never replaces a newer one."""
        await conn.executemany(
            f"INSERT INTO {self.table('prescriptions')} AS t "
            "(prescription_id, prescriber_rpps, patient_ins, issued_at, version, state) "
            "VALUES ($1, $2, $3, $4, $5, $6) "
            "ON CONFLICT (prescription_id) DO UPDATE "
            "SET state = EXCLUDED.state, version = EXCLUDED.version "
            "WHERE t.version < EXCLUDED.version",
            [state_row(s) for s in states],
        )
        await self._replace(conn, "inbox", [s for s in states if s.transmissions], inbox_rows)
        await self._replace(
            conn, "dispensings", [s for s in states if s.dispensations], dispensing_rows
        )
        await self._replace(
            conn, "conversations", [s for s in states if s.conversations], conversation_rows
        )

    async def _replace(
        self,
        conn: Conn,
        view: ViewName,
        states: list[Prescription],
        rows_of: Callable[[Prescription], list[tuple[Any, ...]]],
    ) -> None:
        if not states:
            return
        await conn.execute(
            f"DELETE FROM {self.table(view)} WHERE prescription_id = ANY($1)",
            [s.prescription_id for s in states],
        )
        rows = [row for state in states for row in rows_of(state)]
        if rows:
            await conn.copy_records_to_table(
                f"ordo_view_{view}{self.suffix}",
                schema_name=self.schema,
                records=rows,
                columns=COLUMNS[view],
            )

    # --- what the API reads --------------------------------------------------------------------

    async def prescriptions_page(
        self,
        by: Literal["prescriber_rpps", "patient_ins"],
        value: str,
        after: CursorKey | None,
        limit: int,
    ) -> list[Prescription]:
        """Newest first; `after` is the key of the last item of the previous page."""
        query = f"SELECT state FROM {self.table('prescriptions')} WHERE {by} = $1"
        params: list[Any] = [value]
        if after is not None:
            query += " AND (issued_at, prescription_id) < ($2, $3)"
            params += [after.at, after.prescription_id]
        query += f" ORDER BY issued_at DESC, prescription_id DESC LIMIT {int(limit)}"
        rows = await self.pool.fetch(query, *params)
        return [state_decoder.decode(row[0]) for row in rows]

    async def inbox_page(
        self, finess: str, today: date, after: CursorKey | None, limit: int
    ) -> list[InboxEntry]:
        """Oldest transmission first; what expired before today is left out."""
        query = f"SELECT entry FROM {self.table('inbox')} WHERE finess = $1 AND expires_on >= $2"
        params: list[Any] = [finess, today]
        if after is not None:
            query += " AND (transmitted_at, prescription_id) > ($3, $4)"
            params += [after.at, after.prescription_id]
        query += f" ORDER BY transmitted_at, prescription_id LIMIT {int(limit)}"
        rows = await self.pool.fetch(query, *params)
        return [inbox_decoder.decode(row[0]) for row in rows]

    async def conversations_page(
        self,
        by: Literal["finess", "patient_ins"],
        value: str,
        after: CursorKey | None,
        limit: int,
    ) -> list[Conversation]:
        """Newest activity first; `after` is the key of the last item of the previous page."""
        query = f"SELECT entry FROM {self.table('conversations')} WHERE {by} = $1"
        params: list[Any] = [value]
        if after is not None:
            query += " AND (last_activity_at, conversation_id) < ($2, $3)"
            params += [after.at, after.prescription_id]
        query += f" ORDER BY last_activity_at DESC, conversation_id DESC LIMIT {int(limit)}"
        rows = await self.pool.fetch(query, *params)
        return [conversation_decoder.decode(row[0]) for row in rows]

    # --- operations ----------------------------------------------------------------------------

    def leadership(self) -> AbstractAsyncContextManager[None]:
        """Held by the one runner that applies batches."""
        return leadership(self.pool, lock_key(self.schema, "leader"))

    async def switch_to(
        self, scratch: RebuildableStore, source: LogSource, views: Collection[ViewName], target: int
    ) -> int:
        assert isinstance(scratch, PostgresViews)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._apply_lock)
            target = max(target, await self.position_in(conn))
            await scratch.catch_up_in(conn, source, target)
            for view in views:
                await self._rename(conn, scratch, view)
            for view in VIEW_NAMES:
                await conn.execute(f"DROP TABLE IF EXISTS {scratch.table(view)}")
            await scratch._forget_positions(conn, VIEW_NAMES)
            await conn.execute(
                f'UPDATE "{self.schema}".ordo_projection_positions SET position = $1, '
                "updated_at = now() WHERE view = ANY($2)",
                target,
                [self.position_key(view) for view in VIEW_NAMES],
            )
            return target

    async def catch_up_in(self, conn: Conn, source: LogSource, target: int) -> None:
        while (position := await self.position_in(conn)) < target:
            batch = await source.read(position, min(REBUILD_BATCH, target - position))
            events = [event for _, event in batch if event is not None]
            states = await self.states_in(conn, {event.prescription_id for event in events})
            await self.apply_in(conn, fold_batch(states, events), batch[-1][0], position)

    async def _rename(self, conn: Conn, scratch: PostgresViews, view: ViewName) -> None:
        await conn.execute(f"DROP TABLE IF EXISTS {self.table(view)}")
        await conn.execute(
            f"ALTER TABLE {scratch.table(view)} RENAME TO ordo_view_{view}{self.suffix}"
        )
        for name in self.index_names(view):
            old, new = name.format(scratch.suffix), name.format(self.suffix)
            await conn.execute(f'ALTER INDEX "{self.schema}".{old} RENAME TO {new}')
