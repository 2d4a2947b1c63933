"""The PostgreSQL event store on asyncpg, with group commit.

Stream reads waiting at once go as one statement (`stream_reads`); other reads go straight to
the pool (one round trip, prepared statements: asyncpg prepares and caches them per
connection). Appends go through one writer task per process: it takes every append waiting,
sends them as one call of `ordo_append_group` (one transaction: one table lock, one NOTIFY, one
WAL flush at commit), then resolves each caller's future with its own outcome, only once COMMIT
has returned. A command whose expected version is stale is refused alone (`ConflictError`, the
service decides it again); on a connection error every command of the group fails, none is
acknowledged (the client's retry with its `Idempotency-Key` finds out which were committed).
While tracing, a group with traced commands is one explicit transaction that also records
their events' traceparents (`ordo_event_traces`), for the Kafka relay.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from adapters.chain import LogPoint
from adapters.chain_postgres import install_chain
from adapters.eventtable import EventTableSql
from adapters.legacy import LEGACY_TOPICS, MIGRATION, rows_of
from adapters.locks import lock_key
from adapters.postgres import CONNECT_TIMEOUT, asyncpg_target, connection_settings
from adapters.store import ConflictError, Write, expected_versions, stream_of
from adapters.store.stream_reads import GroupedStreamReads, StreamReadSql
from adapters.storedevents import EventMapper, IdempotencyRecord, InvoiceClaim
from adapters.tracing import TRACER, current_traceparent
from domain.coverage import NarcoticCoverage, fold_coverage
from domain.events import Event

if TYPE_CHECKING:
    from adapters.postgres import Conn

# What a pooled connection that died under us raises on its next use.
DROPPED_CONNECTION = (
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    ConnectionError,
)
MAX_GROUP = 512  # commands per transaction: bounds one statement's size and one lock's hold
LEGACY_BATCH = 5_000  # legacy rows converted at a time while migrating: bounds the memory used
log = structlog.get_logger("ordo.store")


@dataclass
class Pending:
    """One command's append, waiting for its group's commit."""

    write: Write
    rows: list[tuple[str, int, str, bytes]]
    expected: dict[str, int]
    done: asyncio.Future[list[LogPoint]]
    traceparent: str | None = None  # the append's span, kept with its events while tracing

    def resolve(self, outcome: BaseException | dict[tuple[str, int], LogPoint]) -> None:
        """Tell the caller: an error, or where its events landed (a conflict if they did not)."""
        if self.done.done():  # the caller went away (cancelled): nobody to tell
            return
        if isinstance(outcome, BaseException):
            self.done.set_exception(outcome)
        elif (self.rows[0][0], self.rows[0][1]) not in outcome:
            self.done.set_exception(ConflictError("stale"))
        else:
            self.done.set_result([outcome[row[0], row[1]] for row in self.rows])


@dataclass
class Group:
    """Commands appended in one transaction; no two touch one stream, key or invoice number,
    so each one's checks see the database as it was before the group."""

    commands: list[Pending] = field(default_factory=list)
    streams: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    claims: set[tuple[str, str]] = field(default_factory=set)

    def admits(self, pending: Pending) -> bool:
        write = pending.write
        return not (
            self.streams.intersection(pending.expected)
            or (write.idempotency is not None and write.idempotency.key in self.keys)
            or (write.claim is not None and _claim_key(write.claim) in self.claims)
        )

    def add(self, pending: Pending) -> None:
        self.commands.append(pending)
        self.streams.update(pending.expected)
        if pending.write.idempotency is not None:
            self.keys.add(pending.write.idempotency.key)
        if pending.write.claim is not None:
            self.claims.add(_claim_key(pending.write.claim))

    def arguments(self) -> tuple[list[object], ...]:
        """The 17 arrays of `ordo_append_group`, column by column."""
        columns: tuple[list[object], ...] = tuple([] for _ in range(17))
        for index, pending in enumerate(self.commands):
            for stream, version in pending.expected.items():
                _extend(columns, 0, index, stream, version)
            for row in pending.rows:
                _extend(columns, 3, index, *row)
            if (record := pending.write.idempotency) is not None:
                _extend(columns, 8, index, record.key, record.fingerprint, record.result)
            if (claim := pending.write.claim) is not None:
                _extend(
                    columns,
                    12,
                    index,
                    claim.finess,
                    claim.invoice_number,
                    claim.prescription_id,
                    claim.dispensation_id,
                )
        return columns

    def traced(self) -> dict[tuple[str, int], str]:
        """The traceparent of each event of a traced command, by stream and version."""
        return {
            (row[0], row[1]): pending.traceparent
            for pending in self.commands
            if pending.traceparent is not None
            for row in pending.rows
        }


def _extend(columns: tuple[list[object], ...], start: int, *values: object) -> None:
    for offset, value in enumerate(values):
        columns[start + offset].append(value)


def _claim_key(claim: InvoiceClaim) -> tuple[str, str]:
    return claim.finess, claim.invoice_number


class GroupCommitter:
    """The process's one writer: gathers concurrent appends into one transaction each."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        sql: EventTableSql,
        max_group: int = MAX_GROUP,
    ) -> None:
        self._pool = pool
        self._statement = sql.append_group
        self._record_traces = sql.record_traces
        self._max_group = max_group
        self._waiting: deque[Pending] = deque()
        self._news = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.groups = 0  # committed groups, for tests and benchmarks
        self.largest_group = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ordo-group-commit")

    async def stop(self) -> None:
        """Commit what is waiting, then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._news.set()
        await self._task

    async def append(self, pending: Pending) -> list[LogPoint]:
        if self._task is None or self._task.done() or self._stopping:
            msg = "the event store is not started"
            raise RuntimeError(msg)
        self._waiting.append(pending)
        self._news.set()
        return await pending.done

    async def _run(self) -> None:
        while not self._stopping:
            await self._news.wait()
            self._news.clear()
            while self._waiting:
                await self._commit(self._next_group())

    def _next_group(self) -> Group:
        """The longest run of waiting commands that do not touch each other, oldest first; the
        others keep their place for the next group."""
        group, deferred = Group(), deque[Pending]()
        while self._waiting and len(group.commands) < self._max_group:
            pending = self._waiting.popleft()
            if group.admits(pending):
                group.add(pending)
            else:
                deferred.append(pending)
        self._waiting.extendleft(reversed(deferred))
        return group

    async def _commit(self, group: Group) -> None:
        try:
            async with self._pool.acquire() as conn:
                traced = group.traced()
                if traced:
                    rows = await self._append_traced(conn, group, traced)
                else:
                    rows = await conn.fetch(self._statement, *group.arguments())
        except asyncpg.UniqueViolationError as error:
            # Cannot happen under the table lock unless someone writes without it: decide
            # every command again rather than answer for rows we do not know the fate of.
            log.warning("group_append_unique_violation", error=str(error))
            for pending in group.commands:
                pending.resolve(ConflictError(str(error)))
            return
        except Exception as error:  # every caller hears of it; none is acknowledged
            failed = len(group.commands)
            log.warning("group_append_failed", error=type(error).__name__, commands=failed)
            for pending in group.commands:
                pending.resolve(error)
            return
        self.groups += 1
        self.largest_group = max(self.largest_group, len(group.commands))
        landed = {(row[0], row[1]): LogPoint(row[2], bytes(row[3])) for row in rows}
        for pending in group.commands:
            pending.resolve(landed)

    async def _append_traced(
        self, conn: Conn, group: Group, traced: dict[tuple[str, int], str]
    ) -> list[Any]:
        """The group's append with its events' traceparents, in one transaction: the relay
        never reads a traced event before its traceparent."""
        async with conn.transaction():
            rows: list[Any] = await conn.fetch(self._statement, *group.arguments())
            landed = [
                (row[2], traced[row[0], row[1]]) for row in rows if (row[0], row[1]) in traced
            ]
            if landed:
                positions, traceparents = zip(*landed, strict=True)
                await conn.execute(self._record_traces, list(positions), list(traceparents))
        return rows


async def migrate_legacy_streams(conn: Conn, sql: EventTableSql) -> None:
    """Copy the previous release's idempotency and invoice streams into their tables, once.

    Run in the DDL's transaction, under its advisory lock: of several servers starting at once,
    the first copies and records it in `ordo_migrations`, the others find the row (one primary
    key lookup, the cost of every later start). Rows already in the tables are kept as they are.
    """
    if await conn.fetchval(sql.migration_ran, MIGRATION):
        return
    # As every writer of these tables: a concurrent append (a tool's, a previous release's)
    # waits, so the scan sees the whole log and no key is inserted twice at once.
    await conn.execute(sql.lock_events)
    records = claims = 0
    cursor = await conn.cursor(sql.legacy_rows, list(LEGACY_TOPICS))
    while batch := await cursor.fetch(LEGACY_BATCH):
        record_rows, claim_rows = rows_of([(row[0], row[1], bytes(row[2])) for row in batch])
        if record_rows:
            await conn.executemany(sql.copy_record, record_rows)
        if claim_rows:
            await conn.executemany(sql.copy_claim, claim_rows)
        records, claims = records + len(record_rows), claims + len(claim_rows)
    await conn.execute(sql.mark_migrated, MIGRATION, records, claims)
    log.info("legacy_streams_migrated", idempotency_records=records, invoice_claims=claims)


async def _session_kept(_: asyncpg.Connection) -> None:
    """The store's connections go back to the pool as they are: nothing here LISTENs, holds a
    session advisory lock or SETs anything, so asyncpg's default reset (a round trip of
    `RESET ALL; UNLISTEN *; ...` on every release, 17 % of a server's CPU under load) is
    skipped. An open transaction is still rolled back by the pool itself."""


class PostgresEventStore:
    """The event store on PostgreSQL (asyncpg), appends group-committed."""

    def __init__(
        self,
        database_url: str,
        pool_size: int = 16,
    ) -> None:
        self._dsn, schema = asyncpg_target(database_url)
        self._sql = EventTableSql(schema)
        self._pool_size = pool_size
        self._mapper = EventMapper()
        self._pool: asyncpg.Pool | None = None
        self._committer: GroupCommitter | None = None
        self._stream_reads: GroupedStreamReads | None = None
        self.description = f"postgresql (asyncpg, schema {schema})"

    @property
    def sql(self) -> EventTableSql:
        return self._sql

    @property
    def committer(self) -> GroupCommitter:
        assert self._committer is not None, "start() first"
        return self._committer

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "start() first"
        return self._pool

    async def start(self) -> None:
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=2,
            max_size=self._pool_size,
            server_settings=connection_settings(),
            reset=_session_kept,
            timeout=CONNECT_TIMEOUT,
        )
        await self._create_tables()
        self._committer = GroupCommitter(self._pool, self._sql)
        self._committer.start()
        self._stream_reads = GroupedStreamReads(
            partial(self.read, "fetch"),
            StreamReadSql(one=self._sql.stream_after, many=self._sql.streams_after),
        )
        self._stream_reads.start()

    async def _create_tables(self) -> None:
        # Several servers start at once: one of them runs the DDL at a time.
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1)", lock_key(self._sql.schema, "event-table")
            )
            for statement in self._sql.create():
                await conn.execute(statement)
            # The chain first: the legacy copy leaves its cursor open until COMMIT.
            await install_chain(conn, self._sql)
            await migrate_legacy_streams(conn, self._sql)

    async def close(self) -> None:
        if self._stream_reads is not None:
            await self._stream_reads.stop()
        if self._committer is not None:
            await self._committer.stop()
        if self._pool is not None:
            await self._pool.close()

    @property
    def stream_reads(self) -> GroupedStreamReads:
        assert self._stream_reads is not None, "start() first"
        return self._stream_reads

    async def events_of(self, stream_id: str, after_version: int = 0) -> list[Event]:
        rows = await self.stream_reads.events_after(stream_id, after_version)
        return [self._mapper.decode(row[0], row[1]) for row in rows]

    async def coverage(self, stream_id: str) -> NarcoticCoverage:
        rows = await self.stream_reads.events_after(stream_id, 0)
        return fold_coverage(stream_id, (self._mapper.coverage(row[0], row[1]) for row in rows))

    async def append(self, write: Write) -> list[LogPoint]:
        rows = [
            (stream_of(event), event.version, topic, state)
            for event in write.events
            for topic, state in (self._mapper.encode(event),)
        ]
        with TRACER.start_as_current_span(
            "event store append", attributes={"db.system": "postgresql", "ordo.events": len(rows)}
        ):
            pending = Pending(
                write,
                rows,
                expected_versions(write.events),
                asyncio.get_running_loop().create_future(),
                current_traceparent(),
            )
            return await self.committer.append(pending)

    async def idempotency_record(self, key: str) -> IdempotencyRecord | None:
        row = await self.read("fetchrow", self._sql.idempotency_record, key)
        if row is None:
            return None
        return IdempotencyRecord(key=key, fingerprint=row[0], result=bytes(row[1]), position=row[2])

    async def logged(self, position: int) -> tuple[Event, LogPoint] | None:
        row = await self.read("fetchrow", self._sql.logged, position)
        if row is None or row[2] is None or not self._mapper.is_prescription_event(row[0]):
            return None
        return self._mapper.decode(row[0], row[1]), LogPoint(position, bytes(row[2]))

    async def invoice_claim(self, finess: str, invoice_number: str) -> InvoiceClaim | None:
        row = await self.read("fetchrow", self._sql.invoice_claim, finess, invoice_number)
        return InvoiceClaim.from_row(finess, invoice_number, row)

    async def read(self, method: str, query: str, *args: object) -> Any:
        """A read, asked again once on another connection when the pooled one turns out dead
        (the database restarted, or an operator ended our sessions): a read can be repeated,
        and otherwise every stale connection in the pool would fail one caller."""
        for attempt in (1, 2):
            try:
                async with self.pool.acquire() as conn:
                    return await getattr(conn, method)(query, *args)
            except DROPPED_CONNECTION:
                if attempt == 2:
                    raise
                log.warning("store_read_retried_on_a_dropped_connection")
        raise AssertionError("unreachable")

    async def last_position(self) -> int:
        head: int | None = await self.read("fetchval", self._sql.head)
        return head or 0


__all__ = ["GroupCommitter", "PostgresEventStore", "migrate_legacy_streams"]
