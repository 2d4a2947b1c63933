"""4. Kafka: the relay from the log to acknowledged (against a bare producer), and `ordo worker`
×1 and ×2 from that topic until the views hold everything."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import msgspec
import psycopg

from adapters.config import with_schema
from adapters.kafka.messages import to_message
from adapters.kafka.relay import Relay, create_positions_table, ensure_topics, producer
from adapters.postgres import asyncpg_target
from tools import harness
from tools.bench.progress import say
from tools.bench_readside.log import TABLES, Scratch, ordo_env, settings_for
from tools.bench_readside.projection import view_totals
from tools.bench_readside.report import GOALS, Row

# --- 4. Kafka ------------------------------------------------------------------------------------


async def measure_relay(args: argparse.Namespace, scratch: Scratch, schema: str) -> list[Row]:
    url = with_schema(args.database_url, schema)
    topic = scratch.topic("relay")
    settings = settings_for(url, Path(tempfile.gettempdir()), ORDO_KAFKA_BOOTSTRAP=args.kafka)
    assert settings.kafka is not None
    kafka = msgspec.structs.replace(settings.kafka, topic=topic)
    ensure_topics(kafka)
    dsn, _ = asyncpg_target(url)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    send = producer(kafka)
    try:
        relay = Relay(pool, schema, send, topic, kafka.relay_batch_size)
        await create_positions_table(pool, schema)
        head = await relay.source.head()
        started = time.perf_counter()
        published = 0
        while covered := await relay.publish_next():
            published += covered
        seconds = time.perf_counter() - started
        assert await relay.position() == head
        # Baseline: the same messages, sent by the same producer settings to a scratch topic.
        raw_topic = scratch.topic("raw")
        ensure_topics(msgspec.structs.replace(kafka, topic=raw_topic))
        messages = []
        position = 0
        while batch := await relay.source.read(position, 10_000):
            messages += [to_message(event, at) for at, event in batch if event is not None]
            position = batch[-1][0]
    finally:
        await pool.close()
    raw_started = time.perf_counter()
    for key, value, headers in messages:
        send.send(raw_topic, key=key, value=value, headers=headers)
    send.flush(timeout=300)
    raw_s = time.perf_counter() - raw_started
    send.close()
    rate, raw_rate = published / seconds, len(messages) / raw_s
    say(f"relay: {published:,} events in {seconds:.1f} s ({rate:,.0f}/s); raw {raw_rate:,.0f}/s")
    args.relay_topic = topic
    return [
        Row(
            f"relay: log → acknowledged (batch {kafka.relay_batch_size:,})",
            "postgres → kafka",
            f"{published:,} events",
            seconds,
            f"{rate:,.0f} events/s",
            f"kafka-python producer, same {len(messages):,} messages: {raw_rate:,.0f}/s",
            f"{rate / raw_rate:.2f}",
            f"≥ {GOALS['relay']:,}/s: {'met' if rate >= GOALS['relay'] else 'not met'}",
        )
    ]


def truncate_views(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in TABLES:
            conn.execute(f'TRUNCATE "{schema}".{table}')


async def measure_workers(
    args: argparse.Namespace, schema: str, count: int, projected_rate: float
) -> Row:
    url = with_schema(args.database_url, schema)
    built = args.kafka_built
    truncate_views(args.database_url, schema)
    env = ordo_env(
        url,
        Path(tempfile.gettempdir()),
        ORDO_KAFKA_BOOTSTRAP=args.kafka,
        ORDO_KAFKA_TOPIC=args.relay_topic,
        ORDO_KAFKA_GROUP=f"bench-readside-{uuid.uuid4().hex[:6]}",
    )
    started = time.perf_counter()
    first = None
    workers = [harness.start_ordo(["worker"], env, Path(os.devnull)) for _ in range(count)]
    try:
        deadline = started + 600
        while time.perf_counter() < deadline:
            rows, versions = view_totals(args.database_url, schema)
            if rows and first is None:
                first = time.perf_counter()
            if (rows, versions) == (built.prescriptions, built.events):
                break
            await asyncio.sleep(0.1)
        else:
            raise SystemExit(f"{count} worker(s) did not finish in 600 s")
        done = time.perf_counter()
    finally:
        for worker in workers:
            await asyncio.to_thread(harness.stop, worker)
    total, steady = done - started, done - (first or started)
    rate = built.events / total
    say(f"workers ×{count}: {total:.1f} s from spawn ({rate:,.0f}/s), {steady:.1f} s from 1st row")
    return Row(
        f"`ordo worker` ×{count}: topic → views complete (fresh group)",
        "kafka → postgres",
        f"{built.events:,} events",
        total,
        f"{rate:,.0f} events/s from spawn; {built.events / steady:,.0f}/s from first row",
        f"in-process ProjectionRunner: {projected_rate:,.0f}/s",
        f"{rate / projected_rate:.2f}" if projected_rate else "—",
    )
