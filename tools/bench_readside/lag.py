"""3. The lists' lag under load: from a dispensing's 201 to the dispensation showing in the
prescriber's list, at an open-loop rate of dispensings."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg

from adapters.auth import sign_token
from adapters.config import with_schema
from tools import harness
from tools.bench.load import (
    DISPENSE_BODY,
    Issued,
    RawSession,
    close_all,
    make_cast,
    open_sessions,
    prescription_body,
)
from tools.bench.progress import say
from tools.bench.runs import seed
from tools.bench.servers import ServerSpec, running, server_env
from tools.bench_readside.log import Scratch
from tools.bench_readside.projection import view_totals
from tools.bench_readside.report import GOALS, Row
from tools.cast import SECRET, prescriber

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


PROBES = 10_000_000  # the cast's prescribers from this one on write only the probes


def probe_cast(count: int) -> list[tuple[str, str]]:
    """Prescribers with few prescriptions each: the whole list fits in one page."""
    return [
        (
            rpps,
            sign_token(
                SECRET, role="prescriber", subject=f"probe-{i}", ttl_seconds=7200, rpps=rpps
            ),
        )
        for i in range(count)
        for rpps in [prescriber(PROBES + i).value]
    ]


async def issue_probes(
    port: int, probes: list[tuple[str, str]], each: int
) -> list[tuple[str, str]]:
    """(prescription number, prescriber token) for `each` prescriptions per probe prescriber."""
    cast = make_cast()
    rng = random.Random(7)
    session = RawSession(harness.HOST, port)
    await session.connect()
    out: list[tuple[str, str]] = []
    for _, token in probes:
        for _ in range(each):
            status, body = await session.post(
                "/v1/prescriptions", token, prescription_body(cast, rng, "standard", 0)
            )
            if status != 201:
                raise SystemExit(f"probe issue failed: {status} {body[:300]!r}")
            out.append((msgspec.json.decode(body, type=Issued).prescription_id, token))
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
    cast = make_cast()
    sessions = await open_sessions("raw", port, 96)
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
            status, body = await session.post(path, rng.choice(cast.pharmacists), DISPENSE_BODY)
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
    await close_all(sessions)


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
    spec = ServerSpec(backend="postgres", workers=2, env=extra)
    data = work / f"lag-{uuid.uuid4().hex[:6]}"
    data.mkdir(parents=True)
    env = server_env(spec, data, url)
    helpers: list[subprocess.Popen[bytes]] = []
    run = LagRun(label, rate, args.seconds)
    async with running(spec, env, data / "server.log") as server:
        if kafka:
            for n, command in enumerate(("relay", *["worker"] * args.lag_workers)):
                helpers.append(harness.start_ordo([command], env, data / f"{command}-{n}.log"))
        try:
            cast = make_cast()
            ids = await seed(server.port, cast, 1000, "raw", "standard")
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
