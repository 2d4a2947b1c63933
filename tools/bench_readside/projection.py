"""1. Projection throughput (the runner from 0 to head, against an asyncpg COPY of the same
rows), and 2. `ordo projections rebuild` over a large log."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import asyncpg
import psycopg

from adapters.config import Settings, with_schema
from adapters.librarylog import open_library_log
from adapters.postgres import asyncpg_target
from adapters.readmodels import open_read_models
from projections.runner import ProjectionRunner
from tools import harness
from tools.bench.progress import say
from tools.bench_readside.log import TABLES, Scratch, build_log, ordo_env, settings_for
from tools.bench_readside.report import GOALS, Row

# --- 1. projection throughput --------------------------------------------------------------------


async def project_all(settings: Settings, data_dir: Path) -> tuple[int, float]:
    log = open_library_log(settings.database_url, data_dir, 2)
    read_models = await open_read_models(settings, log)
    try:
        runner = ProjectionRunner(read_models.source, read_models.store)  # as `ordo project`
        async with read_models.store.leadership():
            started = time.perf_counter()
            covered = await runner.catch_up()
            return covered, time.perf_counter() - started
    finally:
        await read_models.close()
        log.close()


async def copy_baseline(url: str, schema: str) -> tuple[int, float]:
    """COPY the rows the projection wrote into empty tables like the views (indexes too)."""
    dsn, _ = asyncpg_target(with_schema(url, schema))
    conn = await asyncpg.connect(dsn)
    try:
        rows: dict[str, list[Any]] = {}
        for table in TABLES:
            rows[table] = await conn.fetch(f'SELECT * FROM "{schema}".{table}')
            await conn.execute(
                f'CREATE TABLE "{schema}".{table}_copy (LIKE "{schema}".{table} INCLUDING ALL)'
            )
        total = sum(len(r) for r in rows.values())
        started = time.perf_counter()
        async with conn.transaction():
            for table, records in rows.items():
                await conn.copy_records_to_table(
                    f"{table}_copy", schema_name=schema, records=[tuple(r) for r in records]
                )
        return total, time.perf_counter() - started
    finally:
        await conn.close()


async def measure_projection(args: argparse.Namespace, scratch: Scratch, work: Path) -> list[Row]:
    rows: list[Row] = []
    schema = scratch.schema("project")
    url = with_schema(args.database_url, schema)
    say(f"project: appending ~{args.events:,} events to {schema}")
    built = build_log(url, work / "pg", args.events)
    say(f"  {built.events:,} events in {built.seconds:.0f} s ({built.rate:,.0f}/s)")
    covered, seconds = await project_all(settings_for(url, work / "pg"), work / "pg")
    rate = covered / seconds
    say(f"  projected {covered:,} events in {seconds:.1f} s: {rate:,.0f}/s")
    copied, copy_s = await copy_baseline(args.database_url, schema)
    base = built.events / copy_s
    say(f"  COPY of the same {copied:,} rows: {copy_s:.2f} s ({base:,.0f} events/s equiv.)")
    rows.append(
        Row(
            "projection 0 → head (ProjectionRunner, batch 2000)",
            "postgres",
            f"{covered:,} events",
            seconds,
            f"{rate:,.0f} events/s",
            f"COPY {copied:,} view rows: {copy_s:.2f} s = {base:,.0f} events/s",
            f"{rate / base:.2f}",
            f"≥ {GOALS['project']:,}/s: {'met' if rate >= GOALS['project'] else 'not met'}",
        )
    )
    rows.append(built.appending())
    args.kafka_schema = schema  # the Kafka runs reuse this log
    args.kafka_built = built

    sqlite_dir = work / "sqlite"
    say(f"project (SQLite): appending ~{args.events:,} events")
    built_s = build_log(None, sqlite_dir, args.events)
    covered, seconds = await project_all(settings_for(None, sqlite_dir), sqlite_dir)
    rate_s = covered / seconds
    say(f"  SQLite projected {covered:,} events in {seconds:.1f} s: {rate_s:,.0f}/s")
    rows.append(
        Row(
            "projection 0 → head (ProjectionRunner, batch 2000)",
            "sqlite",
            f"{covered:,} events",
            seconds,
            f"{rate_s:,.0f} events/s",
            note=f"append {built_s.rate:,.0f} events/s",
        )
    )
    return rows


# --- 2. rebuild ----------------------------------------------------------------------------------


def measure_rebuild(args: argparse.Namespace, scratch: Scratch, work: Path) -> list[Row]:
    schema = scratch.schema("rebuild")
    url = with_schema(args.database_url, schema)
    say(f"rebuild: appending ~{args.rebuild_events:,} events to {schema}")
    built = build_log(url, work / "rb", args.rebuild_events)
    say(f"  {built.events:,} events in {built.seconds:.0f} s ({built.rate:,.0f}/s)")
    env = ordo_env(url, work / "rb")
    seconds = harness.timed_ordo(env, "projections", "rebuild")
    count, versions = view_totals(args.database_url, schema)
    ok = (count, versions) == (built.prescriptions, built.events)
    say(f"  rebuilt in {seconds:.1f} s ({built.events / seconds:,.0f} events/s), complete: {ok}")
    scale = 1_000_000 / built.events
    goal = f"< {GOALS['rebuild_s']} s per 1M: " + (
        "met" if seconds * scale < GOALS["rebuild_s"] else "not met"
    )
    note = "" if built.events >= 990_000 else f"≈ {seconds * scale:.0f} s per 1M (linear)"
    scratch.drop_schema(schema)
    return [
        Row(
            "`ordo projections rebuild` (whole process)",
            "postgres",
            f"{built.events:,} events",
            seconds,
            f"{built.events / seconds:,.0f} events/s",
            goal=goal,
            note="; ".join(
                filter(None, [note, "views complete" if ok else f"INCOMPLETE {count, versions}"])
            ),
        ),
        built.appending(),
    ]


def view_totals(url: str, schema: str) -> tuple[int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            f'SELECT count(*), coalesce(sum(version), 0) FROM "{schema}".ordo_view_prescriptions'
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
