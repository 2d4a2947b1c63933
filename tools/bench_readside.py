# scripts/bench_readside: read-side and Kafka benchmarks on PostgreSQL (not tests).
#
#   scripts/bench_readside [--only project,rebuild,lag,kafka] [--events 200000]
#                          [--rebuild-events 1000000] [--rates 1000] [--seconds 20]
#                          [--write BENCHMARKS.md]
#
# project: N events (a busy day: issued, transmitted, dispensed in one or two visits, ~3.5
#   events per prescription) appended to a scratch schema, then the projection runner (as
#   `ordo project` runs it) applies them from 0 to head: events/s; baseline: asyncpg COPY of
#   the rows it wrote into tables like the views'. The same on SQLite (embedded default).
# rebuild: `ordo projections rebuild` over a log of --rebuild-events events.
# lag: `ordo serve --workers 2` (projection in process), an open-loop rate of one-pack
#   dispensings; for a few per second, the time from the 201 to the dispensation showing in
#   GET /v1/prescribers/me/prescriptions (polled every 10 ms).
# kafka: the relay from the N-event log to acknowledged (baseline: kafka-python producer
#   sending the same messages), `ordo worker` ×1 and ×2 from that topic (fresh group each)
#   until the views hold everything, and the lag above with serve + relay + 1 worker.
# PostgreSQL: ORDO_TEST_DATABASE_URL; Kafka: ORDO_TEST_KAFKA_BOOTSTRAP (`scripts/services env`).


from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import psycopg
from kafka import KafkaAdminClient
from rich.console import Console
from rich.table import Table

from adapters.auth import sign_token
from adapters.config import Settings, with_schema
from adapters.eventstore import open_log
from adapters.kafka.messages import to_message
from adapters.kafka.relay import Relay, ensure_topics, producer
from adapters.readmodels import open_read_models
from adapters.readmodels.postgres import asyncpg_target
from domain.identifiers import Rpps
from projections.runner import ProjectionRunner
from tools import bench, benchmarks_md, busy_day, harness

ROOT = Path(__file__).resolve().parent.parent
console = Console(stderr=True)
TABLES = ("ordo_view_prescriptions", "ordo_view_inbox", "ordo_view_dispensings")
GOALS = {"project": 20_000, "rebuild_s": 60, "lag_p99_s": 1.0, "relay": 10_000}


def say(message: str) -> None:
    console.log(message, markup=False, _stack_offset=2)


# --- a busy day's log (tools.busy_day) -----------------------------------------------------------


@dataclass
class Built:
    prescriptions: int
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def appending(self) -> Row:
        """The table's row for appending this log."""
        return Row(
            "append the log (EventLog.append, 3,500 events each)",
            "postgres",
            f"{self.events:,} events",
            self.seconds,
            f"{self.rate:,.0f} events/s",
        )


def build_log(database_url: str | None, data_dir: Path, events: int) -> Built:
    """Append about `events` events (whole prescriptions, 1,000 per append); `seconds` is the
    time spent in EventLog.append, not in deciding the events."""
    log = open_log(database_url, data_dir, 2)
    now = busy_day.moment()
    prescriptions = round(events / 3.5)
    started = time.perf_counter()

    def progress(_: int, appended: int) -> None:
        say(f"  appended {appended:,} events ({appended / (time.perf_counter() - started):,.0f}/s)")

    try:
        appended, seconds = busy_day.append_prescriptions(
            log, prescriptions, lambda n: busy_day.sent_and_dispensed(n, now), progress
        )
    finally:
        log.close()
    return Built(prescriptions, appended, seconds)


# --- scratch schemas and topics ------------------------------------------------------------------


@dataclass
class Scratch:
    url: str
    schemas: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    bootstrap: str | None = None

    def schema(self, label: str) -> str:
        name = f"bench_rs_{label}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        self.schemas.append(name)
        return name

    def drop_schema(self, name: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        if name in self.schemas:
            self.schemas.remove(name)

    def topic(self, label: str) -> str:
        name = f"ordo.bench-readside.{label}.{uuid.uuid4().hex[:6]}"
        self.topics += [name, f"{name}.dead-letter"]
        return name

    def cleanup(self) -> None:
        for name in list(self.schemas):
            with contextlib.suppress(Exception):
                self.drop_schema(name)
        if self.topics and self.bootstrap:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="bench-admin")
            try:
                existing = set(admin.list_topics())
                mine = [t for t in self.topics if t in existing]
                if mine:
                    admin.delete_topics(mine)
            except Exception as error:  # report, do not fail the run
                say(f"could not delete topics {self.topics}: {error}")
            finally:
                admin.close()


def settings_for(database_url: str | None, data_dir: Path, **extra: str) -> Settings:
    env = {"ORDO_DATA_DIR": str(data_dir), "ORDO_AUTH_SECRET": bench.SECRET, **extra}
    if database_url:
        env["ORDO_DATABASE_URL"] = database_url
    return Settings.from_env(env)


def ordo_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return harness.without_ordo_settings() | {
        "ORDO_DATABASE_URL": database_url,
        "ORDO_DATA_DIR": str(data_dir),
        "ORDO_AUTH_SECRET": bench.SECRET,
        **extra,
    }


# --- results -------------------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    backend: str
    amount: str
    seconds: float | None
    result: str
    baseline: str = "—"
    ratio: str = "—"
    goal: str = "—"
    note: str = ""


# --- 1. projection throughput --------------------------------------------------------------------


async def project_all(settings: Settings, data_dir: Path) -> tuple[int, float]:
    log = open_log(settings.database_url, data_dir, 2)
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
    started = time.perf_counter()
    done = subprocess.run(
        harness.ordo_argv("projections", "rebuild"),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"ordo projections rebuild failed:\n{done.stderr[-3000:]}")
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


# --- 3. list lag under load ----------------------------------------------------------------------


class Dispensed(msgspec.Struct):
    dispensation_id: str


@dataclass
class LagRun:
    label: str
    target: float
    seconds: float
    ok: int = 0
    errors: int = 0
    lags: list[float] = field(default_factory=list)
    lost: int = 0
    late: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.lags)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def probe_cast(count: int) -> list[tuple[str, str]]:
    """Prescribers with few prescriptions each: the whole list fits in one page."""
    return [
        (
            rpps,
            sign_token(
                bench.SECRET, role="prescriber", subject=f"probe-{i}", ttl_seconds=7200, rpps=rpps
            ),
        )
        for i in range(count)
        for rpps in [Rpps.from_body(f"11{i:08d}").value]
    ]


async def issue_probes(
    port: int, probes: list[tuple[str, str]], each: int
) -> list[tuple[str, str]]:
    """(prescription number, prescriber token) for `each` prescriptions per probe prescriber."""
    cast = bench.make_cast()
    rng = random.Random(7)
    session = bench.RawSession(harness.HOST, port)
    await session.connect()
    out: list[tuple[str, str]] = []
    for _, token in probes:
        for _ in range(each):
            status, body = await session.post(
                "/v1/prescriptions", token, bench.prescription_body(cast, rng, "standard", 0)
            )
            if status != 201:
                raise SystemExit(f"probe issue failed: {status} {body[:300]!r}")
            out.append((msgspec.json.decode(body, type=bench.Issued).prescription_id, token))
    await session.aclose()
    return out


async def watch(
    client: httpx.AsyncClient, token: str, dispensation: bytes, answered: float, run: LagRun
) -> None:
    """Poll the prescriber's list every 10 ms until the dispensation shows (10 s at most)."""
    headers = {"authorization": f"Bearer {token}"}
    while time.perf_counter() - answered < 10.0:
        response = await client.get("/v1/prescribers/me/prescriptions?limit=100", headers=headers)
        if dispensation in response.content:
            run.lags.append(time.perf_counter() - answered)
            return
        await asyncio.sleep(0.01)
    run.lost += 1


async def drive(port: int, ids: list[str], probes: list[tuple[str, str]], run: LagRun) -> None:
    """Open loop: request k starts at t0 + k/rate on the next free connection (up to 96);
    every 50th (≈ rate/50 per second) goes to a probe prescription and is watched."""
    cast = bench.make_cast()
    sessions = await bench.open_sessions("raw", port, 96)
    free: asyncio.Queue[Any] = asyncio.Queue()
    for session in sessions:
        free.put_nowait(session)
    rng = random.Random(1)
    watchers: set[asyncio.Task[None]] = set()
    client = httpx.AsyncClient(base_url=f"http://{harness.HOST}:{port}", timeout=10)

    async def one(session: Any, probe: tuple[str, str] | None, scheduled: float) -> None:
        number = probe[0] if probe else rng.choice(ids)
        path = f"/v1/prescriptions/{number}/dispensations"
        try:
            status, body = await session.post(
                path, rng.choice(cast.pharmacists), bench.DISPENSE_BODY
            )
        finally:
            free.put_nowait(session)
        answered = time.perf_counter()
        if status != 201:
            run.errors += 1
            return
        if answered - started <= run.seconds:
            run.ok += 1
        if probe is not None:
            dispensation = msgspec.json.decode(body, type=Dispensed).dispensation_id.encode()
            task = asyncio.create_task(watch(client, probe[1], dispensation, answered, run))
            watchers.add(task)
            task.add_done_callback(watchers.discard)

    started = time.perf_counter()
    tasks = []
    k = 0
    while True:
        scheduled = started + k / run.target
        if scheduled - started >= run.seconds:
            break
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        session = await free.get()
        run.late.append(time.perf_counter() - scheduled)
        probe = rng.choice(probes) if k % 50 == 25 else None
        tasks.append(asyncio.create_task(one(session, probe, scheduled)))
        k += 1
    await asyncio.gather(*tasks)
    if watchers:
        await asyncio.gather(*watchers)
    await client.aclose()
    await bench.close_all(sessions)


async def lag_run(
    args: argparse.Namespace, scratch: Scratch, work: Path, *, label: str, rate: float, kafka: bool
) -> LagRun:
    schema = scratch.schema("lag")
    url = with_schema(args.database_url, schema)
    extra: tuple[tuple[str, str], ...] = ()
    topic = ""
    if kafka:
        topic = scratch.topic("lag")
        extra = (
            ("ORDO_KAFKA_BOOTSTRAP", args.kafka),
            ("ORDO_KAFKA_TOPIC", topic),
            ("ORDO_KAFKA_GROUP", f"bench-{uuid.uuid4().hex[:6]}"),
        )
    spec = bench.ServerSpec(backend="postgres", workers=2, env=extra)
    data = work / f"lag-{uuid.uuid4().hex[:6]}"
    data.mkdir(parents=True)
    env = bench.server_env(spec, data, url)
    helpers: list[subprocess.Popen[bytes]] = []
    run = LagRun(label, rate, args.seconds)
    async with bench.running(spec, env, data / "server.log") as server:
        if kafka:
            for command in ("relay", "worker"):
                helpers.append(harness.start_ordo([command], env, data / f"{command}.log"))
        try:
            cast = bench.make_cast()
            ids = await bench.seed(server.port, cast, 1000, "raw", "standard")
            probes = await issue_probes(server.port, probe_cast(8), 10)
            if kafka:  # the probes' issue is in the views before the clock starts
                await wait_views(args.database_url, schema, 1080)
            say(f"lag [{label}]: {rate:,.0f}/s open loop for {args.seconds:.0f} s")
            await drive(server.port, ids, probes, run)
        finally:
            for helper in helpers:
                await asyncio.to_thread(harness.stop, helper)
    say(
        f"  {run.rate:,.0f} 201/s, {run.errors} errors, {len(run.lags)} sampled: "
        f"p50 {run.pct(0.5) * 1000:.0f} ms, p99 {run.pct(0.99) * 1000:.0f} ms, lost {run.lost}"
    )
    scratch.drop_schema(schema)
    return run


async def wait_views(url: str, schema: str, count: int, patience: float = 120) -> None:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.Error):
            if (await asyncio.to_thread(view_totals, url, schema))[0] >= count:
                return
        await asyncio.sleep(0.2)
    raise SystemExit(f"views of {schema} did not reach {count} prescriptions")


def lag_rows(runs: list[LagRun]) -> list[Row]:
    rows = []
    for run in runs:
        met = run.pct(0.99) <= GOALS["lag_p99_s"] and run.rate >= 1000 and not run.lost
        late = sorted(run.late)
        p99_late = late[int(0.99 * (len(late) - 1))] if late else 0.0
        rows.append(
            Row(
                f"list lag: 201 → visible in prescriber's list ({run.label})",
                "postgres",
                f"target {run.target:,.0f}/s, achieved {run.rate:,.0f} 201/s",
                run.seconds,
                f"p50 {run.pct(0.5) * 1000:,.0f} ms, p99 {run.pct(0.99) * 1000:,.0f} ms",
                goal=f"p99 ≤ 1 s at 1,000/s: {'met' if met else 'not met'}",
                note=f"{len(run.lags)} sampled, {run.lost} never seen in 10 s, "
                f"{run.errors} non-201; send p99 late {p99_late * 1000:,.0f} ms",
            )
        )
    return rows


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
        await relay.create()
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


# --- report --------------------------------------------------------------------------------------

HEADERS = ("measure", "backend", "amount", "s", "result", "baseline", "ratio", "goal", "note")


def cells(row: Row) -> list[str]:
    seconds = f"{row.seconds:.1f}" if row.seconds is not None else "—"
    return [
        row.measure,
        row.backend,
        row.amount,
        seconds,
        row.result,
        row.baseline,
        row.ratio,
        row.goal,
        row.note,
    ]


def print_table(rows: list[Row]) -> None:
    table = Table(title="ordo read side and Kafka")
    for header in HEADERS:
        table.add_column(header)
    for row in rows:
        table.add_row(*cells(row))
    Console(width=220).print(table)


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells(row)) + " |" for row in rows]
    return "\n".join(lines)


METHOD = """\
Logs are a busy day (`tools.busy_day`, every event decided by `domain.decisions`: each
prescription issued, transmitted to a pharmacy, dispensed in one or two visits: 3.5 events per
prescription, 50 prescribers), appended 1,000 prescriptions per `EventLog.append` to a fresh
scratch schema (*append the log* times those calls alone).
*Projection*: the runner `ordo project` uses (`ProjectionRunner`, batch 2,000, asyncpg), in
this process, from position 0 to head; baseline: one asyncpg COPY of the rows it wrote into
empty tables `LIKE … INCLUDING ALL` (same indexes), as events/s. SQLite: the embedded default in
a temp dir, same runner. *Rebuild*: `ordo projections rebuild` as a subprocess, whole process
time (start-up included). *List lag*: `ordo serve --workers 2` (projection in process; with
Kafka: serve + `ordo relay` + one `ordo worker`, fresh topic of 6 partitions), 1,000
prescriptions seeded through the API plus 8 probe prescribers × 10; an open-loop schedule at
the target rate over up to 96 keep-alive connections (when all are busy the send waits: the
achieved rate is what the server sustained) POSTs one-pack dispensings; every 50th goes to a
probe prescription, and from its 201 the probe prescriber's list (`limit=100`, the whole list)
is polled every 10 ms with httpx until the dispensation id is in it. *Relay*: `Relay` in
process with the shipped producer (acks=all, idempotent) from the projection log to
acknowledged; baseline: the same producer sending the same messages to a scratch topic.
*Workers*: N `ordo worker` subprocesses on the relayed topic, fresh consumer group, views
truncated first, until `count(*), sum(version)` of the prescriptions view equals
(prescriptions, events); ratio against the in-process runner."""


def block(command: str, facts: dict[str, str], rows: list[Row]) -> str:
    return "\n".join(
        [
            f"### `readside`: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"Command: `{command}`",
            "",
            f"Machine: {bench.facts_line(facts)}.",
            "",
            METHOD,
            "",
            markdown(rows),
        ]
    )


@contextlib.contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ordo-bench-readside-") as name:
        yield Path(name)


async def run(args: argparse.Namespace, scratch: Scratch, work: Path) -> list[Row]:
    rows: list[Row] = []
    only = set(args.only.split(","))
    projected = 0.0
    if "project" in only or "kafka" in only:
        rows += await measure_projection(args, scratch, work)
        projected = float(rows[0].result.split()[0].replace(",", ""))
    if "rebuild" in only:
        rows += await asyncio.to_thread(measure_rebuild, args, scratch, work)
    if "kafka" in only:
        rows += await measure_relay(args, scratch, args.kafka_schema)
        for count in (1, 2):
            rows.append(await measure_workers(args, args.kafka_schema, count, projected))
    scratch.drop_schema(args.kafka_schema) if hasattr(args, "kafka_schema") else None
    lag_runs = []
    if "lag" in only:
        for rate in args.rates:
            lag_runs.append(
                await lag_run(
                    args, scratch, work, label="in-process projection", rate=rate, kafka=False
                )
            )
    if "kafka" in only:
        lag_runs.append(
            await lag_run(
                args,
                scratch,
                work,
                label="serve + relay + 1 worker",
                rate=args.rates[-1],
                kafka=True,
            )
        )
    return rows + lag_rows(lag_runs)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench_readside", description=__doc__)
    parser.add_argument("--only", default="project,rebuild,lag,kafka")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rebuild-events", type=int, default=1_000_000)
    parser.add_argument("--rates", type=bench._floats, default=(1000.0,))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database-url", default=os.environ.get("ORDO_TEST_DATABASE_URL"))
    parser.add_argument("--kafka", default=os.environ.get("ORDO_TEST_KAFKA_BOOTSTRAP"))
    parser.add_argument("--write", type=Path, metavar="FILE")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error('no PostgreSQL: eval "$(scripts/services env)" or --database-url')
    if "kafka" in args.only and not args.kafka:
        parser.error("no Kafka: ORDO_TEST_KAFKA_BOOTSTRAP or --kafka")
    if args.write:  # something below may change the working directory
        args.write = args.write.resolve()
    command = "scripts/bench_readside " + shlex.join(argv)
    facts = bench.machine_facts(args.database_url)
    scratch = Scratch(args.database_url, bootstrap=args.kafka)
    try:
        with workdir() as work:
            rows = asyncio.run(run(args, scratch, work))
    finally:
        scratch.cleanup()
    print_table(rows)
    if args.write:
        benchmarks_md.update_benchmarks(args.write, "readside", block(command, facts, rows))
        say(f"wrote the readside block of {args.write}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main(sys.argv[1:]))
