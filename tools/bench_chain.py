"""What the hash chain costs on PostgreSQL (`adapters.chain`): chaining an existing log once at
upgrade, and `ordo verify`'s recomputation of it.

A log of --events events (each state --state-bytes long) is written as a release without the
chain left it; the store's start chains it (`ordo_chain_log`, in the DDL's transaction), then the
chain is read back and checked as `ordo verify` does. Needs ORDO_TEST_DATABASE_URL; works in a
schema of its own, dropped afterwards.

    uv run python -m tools.bench_chain --events 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import asyncpg

from adapters.chain import CHAIN_MIGRATION
from adapters.config import with_schema
from adapters.store.postgres import PostgresEventStore
from adapters.verify import PostgresLogRows, verify_chain


async def unchained_log(conn: asyncpg.Connection, schema: str, events: int, size: int) -> None:
    """The store's tables, then `events` rows written as a release without the chain did."""
    table = f'"{schema}".ordo_events'
    await conn.execute(f"ALTER TABLE {table} DROP COLUMN hash")
    await conn.execute(f'DELETE FROM "{schema}".ordo_migrations WHERE name = $1', CHAIN_MIGRATION)
    await conn.execute(
        f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
        "SELECT 'P' || (n / 4), n % 4 + 1, 'DispensationRecorded.v2', "
        "convert_to(rpad('{\"n\":' || n || '}', $2, ' '), 'UTF8') "
        "FROM generate_series(0, $1 - 1) AS n",
        events,
        size,
    )


async def measure(url: str, events: int, size: int) -> tuple[float, float, int]:
    """Seconds to chain the log at start, seconds to verify it, events verified."""
    schema = f"bench_chain_{uuid.uuid4().hex[:8]}"
    scratch = with_schema(url, schema)
    conn = await asyncpg.connect(url)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        store = PostgresEventStore(scratch, pool_size=2)
        await store.start()
        await store.close()
        await unchained_log(conn, schema, events, size)
        store = PostgresEventStore(scratch, pool_size=2)
        began = time.perf_counter()
        await store.start()  # chains the log once
        chaining = time.perf_counter() - began
        began = time.perf_counter()
        broken, check = await verify_chain(PostgresLogRows(store.pool, schema))
        verifying = time.perf_counter() - began
        await store.close()
        assert broken is None, broken
        return chaining, verifying, check.checked
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--state-bytes", type=int, default=400, help="each event's stored state")
    args = parser.parse_args()
    url = os.environ["ORDO_TEST_DATABASE_URL"]
    chaining, verifying, checked = asyncio.run(measure(url, args.events, args.state_bytes))
    print(f"chained {args.events:,} events at start in {chaining:.1f} s")
    print(f"verified {checked:,} events in {verifying:.1f} s ({checked / verifying:,.0f} events/s)")


if __name__ == "__main__":
    main()
