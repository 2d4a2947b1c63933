"""What the upgrade from the legacy streams costs at start (`adapters.legacy`), on PostgreSQL and
SQLite: a log of --events events of which --legacy are the previous release's record and claim
streams, then the store started twice. The first start copies them (one scan of the event
table) and hash-chains the log (`adapters.chain`); the second finds the `ordo_migrations` rows.
Baseline: the store started on an empty database (the DDL alone)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import msgspec
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from adapters.config import with_schema
from adapters.legacy import (
    LEGACY_CLAIM_TOPIC,
    LEGACY_RECORD_TOPIC,
    LegacyIdempotencyRecord,
    LegacyInvoiceClaim,
)
from adapters.librarylog import EVENTS_TABLE, open_library_log
from adapters.store.postgres import PostgresEventStore
from tools.benchmarks_md import markdown_table, python_speed, update_benchmarks
from tools.cast import PHARMACY

RECEIPT = (
    b'{"dispensation_id":"6f0c","status":"partially_dispensed",'
    b'"lines":[{"line_no":1,"dispensed":1,"remaining":2}],"dispensed_elsewhere":false}'
)
Row = tuple[str, int, str, bytes]


def legacy_rows(count: int) -> list[Row]:
    """Half keyed answers, half invoice claims, encoded as the previous release did."""
    rows: list[Row] = []
    for n in range(count):
        if n % 2:
            claim = LegacyInvoiceClaim(
                finess=PHARMACY.value,
                invoice_number=f"F-{n}",
                prescription_id="P",
                dispensation_id="d",
            )
            rows.append((f"invoice:{n:064x}", 1, LEGACY_CLAIM_TOPIC, msgspec.json.encode(claim)))
        else:
            record = LegacyIdempotencyRecord(
                key=f"{n:064x}", fingerprint="f" * 64, status=201, body=RECEIPT
            )
            rows.append(
                (f"idempotency:{n:064x}", 1, LEGACY_RECORD_TOPIC, msgspec.json.encode(record))
            )
    return rows


def timed(start: Callable[[], None]) -> float:
    began = time.perf_counter()
    start()
    return time.perf_counter() - began


async def postgres_starts(url: str, events: int, legacy: int) -> list[float]:
    """Seconds of: a start on an empty schema, the first start on the log, the second."""
    schema = f"bench_upgrade_{uuid.uuid4().hex[:8]}"
    scratch = with_schema(url, schema)
    conn = await asyncpg.connect(url)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        empty = await _postgres_start(scratch)
        table = f'"{schema}".ordo_events'
        await conn.execute(f'DROP TABLE {table}, "{schema}".ordo_migrations')  # as before
        await conn.execute(
            f'DROP TABLE "{schema}".ordo_idempotency, "{schema}".ordo_invoice_claims'
        )
        log = open_library_log(scratch, Path(tempfile.gettempdir()))
        log.close()  # the library's event table, as the previous release created it ...
        await conn.execute(f"ALTER TABLE {table} DROP COLUMN hash")  # ... without the chain
        for beside in ("ordo_migrations", "ordo_idempotency", "ordo_invoice_claims"):
            await conn.execute(f'DROP TABLE "{schema}".{beside}')
        await conn.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "SELECT 'P' || (n / 4), n % 4 + 1, 'DispensationRecorded.v1', '{}'::bytea "
            "FROM generate_series(0, $1 - 1) AS n",
            events - legacy,
        )
        await conn.copy_records_to_table(
            "ordo_events",
            schema_name=schema,
            columns=["originator_id", "originator_version", "topic", "state"],
            records=legacy_rows(legacy),
        )
        return [empty, await _postgres_start(scratch), await _postgres_start(scratch)]
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def _postgres_start(url: str) -> float:
    store = PostgresEventStore(url, pool_size=2)
    began = time.perf_counter()
    await store.start()
    elapsed = time.perf_counter() - began
    await store.close()
    return elapsed


def sqlite_starts(events: int, legacy: int) -> list[float]:
    with tempfile.TemporaryDirectory() as empty_dir, tempfile.TemporaryDirectory() as data_dir:
        empty = timed(lambda: open_library_log(None, Path(empty_dir)).close())
        path = Path(data_dir) / "ordo.sqlite3"
        previous = SQLiteDatastore(str(path), originator_id_type="text")
        # The previous release's log: the library's recorder and its table, nothing beside it.
        SQLiteApplicationRecorder(previous, events_table_name=EVENTS_TABLE).create_table()
        previous.close()
        with sqlite3.connect(path) as conn:
            conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1) "
                "INSERT INTO ordo_events (originator_id, originator_version, topic, state) "
                "SELECT 'P' || (i / 4), i % 4 + 1, 'DispensationRecorded.v1', X'7B7D' FROM n",
                (events - legacy,),
            )
            conn.executemany(
                "INSERT INTO ordo_events (originator_id, originator_version, topic, state) "
                "VALUES (?, ?, ?, ?)",
                legacy_rows(legacy),
            )
        first = timed(lambda: open_library_log(None, Path(data_dir)).close())
        second = timed(lambda: open_library_log(None, Path(data_dir)).close())
        return [empty, first, second]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--legacy", type=int, default=200_000)
    parser.add_argument("--write", type=Path, help="update this BENCHMARKS.md's upgrade block")
    args = parser.parse_args()
    body = []
    url = os.environ.get("ORDO_TEST_DATABASE_URL")
    if url:
        starts = asyncio.run(postgres_starts(url, args.events, args.legacy))
        body.append(["PostgreSQL", f"{args.events:,}", f"{args.legacy:,}", *_seconds(starts)])
    starts = sqlite_starts(args.events, args.legacy)
    body.append(["SQLite", f"{args.events:,}", f"{args.legacy:,}", *_seconds(starts)])
    head = ["store", "events in the log", "legacy rows", "empty (DDL)", "1st start", "2nd start"]
    table = markdown_table(head, body)
    print(table)
    if args.write:
        command = f"scripts/bench_upgrade --events {args.events} --legacy {args.legacy}"
        text = (
            "## Upgrade from the legacy streams: store start-up\n\n"
            f"`{command}` (Python speed {python_speed()}; the machine was shared with other "
            "jobs). 1st start: the copy, one scan of the event table and one insert per "
            "legacy row, in the DDL's transaction (servers starting meanwhile wait on its "
            "advisory lock); 2nd start: one primary-key lookup of `ordo_migrations`; empty: "
            "the DDL on a new database, for comparison.\n\n" + table
        )
        update_benchmarks(args.write, "upgrade", text)


def _seconds(starts: list[float]) -> list[str]:
    return [f"{s:.3f} s" for s in starts]


if __name__ == "__main__":
    main()
