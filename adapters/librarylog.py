# ruff: noqa: S608 - SQL is built from our own table names; every value is a bound parameter.
"""The library log: the event log through eventsourcing's recorders, SQLite by default,
PostgreSQL in production.

The API appends through the event store (`adapters.store`; on PostgreSQL asyncpg with group
commit, not this module's recorder); the library log is the embedded store's log, the read
side's on SQLite, and the command-line tools' (seeding, demo, benchmarks).

We use the library's application recorders directly (optimistic concurrency on the
prescription's version, the gap-free notification log, LISTEN/NOTIFY on PostgreSQL) and map
our msgspec events to stored events ourselves (`adapters.storedevents`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from adapters.chain import CHAIN_MIGRATION, GENESIS, LogPoint, chained
from adapters.chain_postgres import install_chain_sync
from adapters.config import schema_of
from adapters.eventtable import (
    CLAIMS_TABLE,
    EVENTS_TABLE,
    IDEMPOTENCY_TABLE,
    MIGRATIONS_TABLE,
    EventTableSql,
)
from adapters.legacy import LEGACY_TOPICS, MIGRATION, rows_of
from adapters.locks import lock_key
from adapters.postgres import libpq_parameters, servers_of
from adapters.storedevents import AnyEvent, EventMapper, IdempotencyRecord, InvoiceClaim
from domain.coverage import NarcoticCoverage, fold_coverage
from domain.events import Event

__all__ = [
    "EVENTS_TABLE",
    "IntegrityError",
    "LibraryLog",
    "open_library_log",
]
log = structlog.get_logger("ordo.store")


class LibraryLog:
    """Prescriptions' event streams and the global notification log, in one database, through
    eventsourcing's recorders: the embedded store's log (`adapters.store.embedded`), and on
    PostgreSQL the command-line tools' (the API appends with `adapters.store.postgres`)."""

    def __init__(self, recorder: ApplicationRecorder, description: str) -> None:
        self.recorder = recorder
        self.description = description
        self.mapper = EventMapper()

    def events_of(self, prescription_id: str, after_version: int = 0) -> list[Event]:
        stored = self.recorder.select_events(prescription_id, gt=after_version or None)
        return [self.mapper.to_event(s) for s in stored]

    def coverage(self, stream_id: str) -> NarcoticCoverage:
        """A patient's narcotic coverage, folded from its own stream."""
        stored = self.recorder.select_events(stream_id)
        return fold_coverage(stream_id, map(self.mapper.to_coverage_event, stored))

    def append(self, events: Sequence[AnyEvent]) -> Sequence[int]:
        """Append atomically; raises IntegrityError if another writer took a version first."""
        return self.recorder.insert_events([self.mapper.to_stored(e) for e in events]) or ()

    def notifications(self, after: int, limit: int) -> Sequence[Notification]:
        return self.recorder.select_notifications(after, limit, inclusive_of_start=False)

    def last_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def close(self) -> None:
        self.recorder.datastore.close()  # type: ignore[attr-defined]


class EmbeddedRecorder(SQLiteApplicationRecorder):
    """The library's SQLite recorder, with the idempotency records and invoice claims in tables
    of their own, inserted in the events' transaction (`insert_events(..., idempotency=,
    claim=)`): a taken key or number fails the whole append, as a taken version does. Each
    event is hash-chained (`adapters.chain`) in the same transaction, once inserted: the insert
    holds the database's write lock, so the head it follows is the log's."""

    def __init__(self, datastore: SQLiteDatastore, *, events_table_name: str) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.insert_events_statement = (
            f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?)"
        )
        self.create_table_statements += [
            f"CREATE TABLE IF NOT EXISTS {IDEMPOTENCY_TABLE} (key TEXT PRIMARY KEY, "
            "fingerprint TEXT NOT NULL, result BLOB NOT NULL, position INTEGER)",
            f"CREATE TABLE IF NOT EXISTS {CLAIMS_TABLE} (finess TEXT NOT NULL, "
            "invoice_number TEXT NOT NULL, prescription_id TEXT NOT NULL, "
            "dispensation_id TEXT NOT NULL, PRIMARY KEY (finess, invoice_number))",
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (name TEXT PRIMARY KEY, "
            "ran_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, records INTEGER NOT NULL, "
            "claims INTEGER NOT NULL)",
        ]

    def _create_table(self, c: SQLiteCursor) -> None:
        super()._create_table(c)
        self._add_record_position(c)
        self._migrate_legacy_streams(c)
        self._chain_once(c)

    def _add_record_position(self, c: SQLiteCursor) -> None:
        """Where a record's command's first event landed: a table created before it was kept
        gains the column, NULL in its rows."""
        c.execute(
            f"SELECT name FROM pragma_table_info('{IDEMPOTENCY_TABLE}') WHERE name = 'position'"
        )
        if c.fetchone() is None:
            c.execute(f"ALTER TABLE {IDEMPOTENCY_TABLE} ADD COLUMN position INTEGER")

    def _chain_once(self, c: SQLiteCursor) -> None:
        """Add the `hash` column and chain the rows a previous release wrote, in log order,
        once (recorded in `ordo_migrations`)."""
        c.execute(f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE name = ?", (CHAIN_MIGRATION,))
        if c.fetchone() is not None:
            return
        c.execute(f"SELECT name FROM pragma_table_info('{EVENTS_TABLE}') WHERE name = 'hash'")
        if c.fetchone() is None:
            c.execute(f"ALTER TABLE {EVENTS_TABLE} ADD COLUMN hash BLOB")
        c.execute(
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {EVENTS_TABLE} "
            "ORDER BY rowid"
        )
        previous, hashes = GENESIS, []
        for position, stream, version, topic, state in c.fetchall():
            previous = chained(previous, stream, version, topic, bytes(state))
            hashes.append((previous, position))
        c.executemany(f"UPDATE {EVENTS_TABLE} SET hash = ? WHERE rowid = ?", hashes)
        c.execute(
            f"INSERT INTO {MIGRATIONS_TABLE} (name, records, claims) VALUES (?, ?, 0)",
            (CHAIN_MIGRATION, len(hashes)),
        )
        log.info("log_chained", events=len(hashes))

    def _migrate_legacy_streams(self, c: SQLiteCursor) -> None:
        """Copy the previous release's idempotency and invoice streams into their tables, once
        (`adapters.legacy`), in the create step's transaction; later starts find the
        `ordo_migrations` row and stop there."""
        c.execute(f"SELECT 1 FROM {MIGRATIONS_TABLE} WHERE name = ?", (MIGRATION,))
        if c.fetchone() is not None:
            return
        c.execute(
            f"SELECT rowid, topic, state FROM {EVENTS_TABLE} WHERE topic IN (?, ?)",
            LEGACY_TOPICS,
        )
        records, claims = rows_of([(row[0], row[1], bytes(row[2])) for row in c.fetchall()])
        c.executemany(
            f"INSERT OR IGNORE INTO {IDEMPOTENCY_TABLE} (key, fingerprint, result) "
            "VALUES (?, ?, ?)",
            records,
        )
        c.executemany(f"INSERT OR IGNORE INTO {CLAIMS_TABLE} VALUES (?, ?, ?, ?)", claims)
        c.execute(
            f"INSERT INTO {MIGRATIONS_TABLE} (name, records, claims) VALUES (?, ?, ?)",
            (MIGRATION, len(records), len(claims)),
        )
        log.info(
            "legacy_streams_migrated", idempotency_records=len(records), invoice_claims=len(claims)
        )

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = self._insert_chained(c, stored_events, **kwargs)
        return [point.position for point in positions]

    def insert_chained(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> list[LogPoint]:
        """As `insert_events`, returning where each event landed in the log and its hash."""
        with self.datastore.transaction(commit=True) as c:
            return self._insert_chained(c, stored_events, **kwargs)

    def _insert_chained(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> list[LogPoint]:
        positions = super()._insert_events(c, stored_events) or []
        points = self._chain(c, stored_events, positions)
        record: IdempotencyRecord | None = kwargs.get("idempotency")
        if record is not None:
            first = points[0].position if points else None
            c.execute(
                f"INSERT INTO {IDEMPOTENCY_TABLE} VALUES (?, ?, ?, ?)",
                (record.key, record.fingerprint, record.result, first),
            )
        claim: InvoiceClaim | None = kwargs.get("claim")
        if claim is not None:
            c.execute(
                f"INSERT INTO {CLAIMS_TABLE} VALUES (?, ?, ?, ?)",
                (claim.finess, claim.invoice_number, claim.prescription_id, claim.dispensation_id),
            )
        return points

    def _chain(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], positions: Sequence[int]
    ) -> list[LogPoint]:
        if not positions:
            return []
        c.execute(
            f"SELECT hash FROM {EVENTS_TABLE} WHERE rowid < ? ORDER BY rowid DESC LIMIT 1",
            (positions[0],),
        )
        row = c.fetchone()
        previous = GENESIS if row is None else bytes(row[0])
        points = []
        for event, position in zip(stored_events, positions, strict=True):
            previous = chained(
                previous,
                str(event.originator_id),
                event.originator_version,
                event.topic,
                event.state,
            )
            points.append(LogPoint(position, previous))
        c.executemany(
            f"UPDATE {EVENTS_TABLE} SET hash = ? WHERE rowid = ?",
            [(point.hash, point.position) for point in points],
        )
        return points

    def idempotency_record(self, key: str) -> IdempotencyRecord | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT fingerprint, result, position FROM {IDEMPOTENCY_TABLE} WHERE key = ?",
                (key,),
            )
            row = c.fetchone()
        if row is None:
            return None
        return IdempotencyRecord(key=key, fingerprint=row[0], result=bytes(row[1]), position=row[2])

    def logged(self, position: int) -> tuple[StoredEvent, LogPoint] | None:
        """The stored event at a log position, with its hash (None: none there, or unchained)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_id, originator_version, topic, state, hash "
                f"FROM {EVENTS_TABLE} WHERE rowid = ?",
                (position,),
            )
            row = c.fetchone()
        if row is None or row[4] is None:
            return None
        stored = StoredEvent(
            originator_id=row[0], originator_version=row[1], topic=row[2], state=bytes(row[3])
        )
        return stored, LogPoint(position, bytes(row[4]))

    def invoice_claim(self, finess: str, invoice_number: str) -> InvoiceClaim | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT prescription_id, dispensation_id FROM {CLAIMS_TABLE} "
                "WHERE finess = ? AND invoice_number = ?",
                (finess, invoice_number),
            )
            row = c.fetchone()
        return InvoiceClaim.from_row(finess, invoice_number, row)


class SingleTripPostgresRecorder(PostgresApplicationRecorder):
    """The library's PostgreSQL recorder, appending in one round trip instead of a pipeline.

    `ordo_append` is the event store's group append (`ordo_append_group`) of one command with
    no expected versions: the same EXCLUSIVE table lock (so notification ids commit in the
    order they are issued and no reader skips one), the same NOTIFY, the same hash chain, and
    the same primary key on (prescription, version) that makes a concurrent append fail. As a
    single statement on an autocommit connection it is its own transaction: the lock is held
    for one server-side call, not for client round trips, and the client does a tenth of the
    work (BENCHMARKS.md).
    """

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(datastore.schema)
        nothing = ", ".join(["'{{}}'"] * 9)  # no idempotency record, no invoice claim
        self._function_ddl = SQL(
            "CREATE OR REPLACE FUNCTION {schema}.ordo_append("
            "ids text[], versions bigint[], topics text[], states bytea[]) "
            "RETURNS SETOF bigint LANGUAGE plpgsql AS $$ BEGIN "
            "RETURN QUERY SELECT g.log_position FROM {schema}.ordo_append_group("
            "'{{}}', '{{}}', '{{}}', array_fill(0, ARRAY[cardinality(ids)]), "
            f"ids, versions, topics, states, {nothing}) AS g; "
            "END $$"
        ).format(schema=schema)
        self._append = SQL(
            "SELECT n AS notification_id FROM {schema}.ordo_append(%s, %s, %s, %s) AS n"
        ).format(schema=schema)

    def create_table(self) -> None:
        # Servers starting together (the workers of one `ordo serve`) run this DDL one at a
        # time: two concurrent `CREATE TABLE IF NOT EXISTS` of one table make one of them fail.
        sql = EventTableSql(self.datastore.schema or "public")
        key = lock_key(sql.schema, "event-table")
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                super().create_table()
                with self.datastore.transaction(commit=True) as curs:
                    curs.execute(self._function_ddl)
                    install_chain_sync(curs, sql)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int]:
        columns = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._append, columns, prepare=True)
            return [row["notification_id"] for row in curs.fetchall()]


def open_library_log(database_url: str | None, data_dir: Path, pool_size: int = 10) -> LibraryLog:
    """The embedded SQLite log under `data_dir`, or PostgreSQL when a URL is given."""
    if database_url:
        return _postgres_library_log(database_url, pool_size)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "ordo.sqlite3"
    datastore = SQLiteDatastore(
        str(path), lock_timeout=30, pool_size=pool_size, originator_id_type="text"
    )
    recorder = EmbeddedRecorder(datastore, events_table_name=EVENTS_TABLE)
    recorder.create_table()
    return LibraryLog(recorder, f"sqlite:{path}")


def _postgres_library_log(database_url: str, pool_size: int) -> LibraryLog:
    url = urlsplit(database_url)
    if url.scheme not in {"postgresql", "postgres"}:
        msg = f"ORDO_DATABASE_URL must start with postgresql://, got {url.scheme}://"
        raise ValueError(msg)
    options = {name: values[-1] for name, values in parse_qs(url.query).items()}
    # libpq's keywords: one server or several (comma-separated hosts and ports, tried in turn).
    server = libpq_parameters(database_url)
    datastore = PostgresDatastore(
        dbname=server.pop("dbname", "ordo"),
        host=server.pop("host", "127.0.0.1"),
        port=server.pop("port", "5432"),
        user=server.pop("user", "postgres"),
        password=server.pop("password", ""),
        pool_size=int(options.get("pool_size", pool_size)),
        max_overflow=int(options.get("max_overflow", pool_size)),
        schema=schema_of(database_url, default=""),
        originator_id_type="text",
    )
    # The URL's other keywords (target_session_attrs, sslmode, ...) for every connection.
    connection_keywords = datastore.pool.kwargs
    assert isinstance(connection_keywords, dict), "PostgresDatastore passes a dict"
    connection_keywords.update(server)
    recorder = SingleTripPostgresRecorder(datastore, events_table_name=EVENTS_TABLE)
    recorder.create_table()
    return LibraryLog(recorder, f"postgresql://{servers_of(database_url)}")
