# scripts/bench: load benchmarks of the ordo API (not tests). Results go to BENCHMARKS.md.
#
#   scripts/bench dispensing [--seconds 15] [--clients 1,32] [--backends sqlite,postgres]
#                            [--workers N[,M...]] [--py-spy] [--write BENCHMARKS.md]
#
# For each backend it starts a fresh `ordo serve` (SQLite in a temp dir, PostgreSQL in a
# scratch schema), issues prescriptions through the API, then runs closed-loop clients that
# POST one-pack dispensings on random prescriptions. On PostgreSQL it also sends the event
# store's own append straight to the database with asyncpg (the locked SQL baseline), and with
# --py-spy it samples one server process under load.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TypeVar, cast

import asyncpg
import httptools
import httpx
import msgspec
import psycopg
import uvloop
from psycopg import sql
from rich.console import Console
from rich.table import Table
from rich.text import Text

from adapters.auth import sign_token
from adapters.config import with_schema
from adapters.librarylog import open_library_log
from domain.identifiers import Cip13, Finess, Ins, Rpps
from tools import benchmarks_md, harness
from tools.harness import HOST, Server, free_port

ROOT = Path(__file__).resolve().parent.parent
SECRET = f"bench-{uuid.uuid4().hex}"
API_APP = "ordo-bench-api"  # PGAPPNAME of the server's connections
SQL_APP = "ordo-bench-sql"  # application_name of the baseline's connections
LOCKED_SQL = "SQL ordo_append"  # the baseline's rows, and what API/SQL compares with
PRESCRIBED = 999
MORPHINE = Cip13.from_body("340093332352").value
DISPENSE_BODY = b'{"lines":[{"line_no":1,"quantity":1}]}'
# Issue 11's aims: dispensing at 32 clients, at 1 client, and reading one prescription.
GOAL_RATE, GOAL_P99_MS, GOAL_OF_LOCKED_SQL, GOAL_P99_ONE_CLIENT_MS = 2500.0, 30.0, 0.9, 5.0
GOAL_READ_RATE, GOAL_READ_P99_MS = 5000.0, 15.0
AIMS = (
    "dispensing at 32 clients ≥ 2,500/s, p99 ≤ 30 ms, ≥ 0.9 of the locked SQL baseline",
    "dispensing at 1 client p99 ≤ 5 ms",
    "reading one prescription at 32 clients ≥ 5,000/s, p99 ≤ 15 ms",
)
SAMPLE_EVERY = 0.2  # seconds between pg_stat_activity samples
OPEN_LOOP_CONNECTIONS = 64  # the open loop's connections: as many requests in flight at most
HUNG_AFTER = 30.0  # seconds after a window's end before a client still waiting is given up
console = Console(stderr=True)


def say(message: str, style: str = "") -> None:
    """Progress on stderr; labels like "API [ORDO_DB_POOL_SIZE=8]" are text, not rich markup."""
    console.log(Text(message, style=style), _stack_offset=2)


class BenchError(Exception):
    """The benchmark cannot go on (server did not start, seeding failed, ...)."""


# --- options --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    seconds: float
    warmup: float
    clients: tuple[int, ...]
    backends: tuple[str, ...]
    workers: tuple[int, ...]
    prescriptions: int
    client: str
    env: dict[str, str]
    database_url: str | None
    postgres: str
    baseline: bool
    write: Path | None
    section: str
    keep: bool
    wait_quiet: float
    command: str
    lines: tuple[str, ...] = ("standard", "narcotic")
    reads: bool = False
    open_rate: float | None = None
    py_spy: bool = False
    rev: str | None = None
    catalogue: Path | None = None

    @property
    def env_items(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.env.items()))


def _ints(text: str) -> tuple[int, ...]:
    values = tuple(int(part) for part in text.split(",") if part.strip())
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def _floats(text: str) -> tuple[float, ...]:
    values = tuple(float(part) for part in text.split(",") if part.strip())
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError("a comma-separated list of positive numbers")
    return values


def _line_kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(part.strip() for part in text.split(",")))
    if not kinds or not set(kinds) <= {"standard", "narcotic"}:
        raise argparse.ArgumentTypeError("standard, narcotic or both, comma-separated")
    return kinds


def _backends(text: str) -> tuple[str, ...]:
    values = tuple(part.strip() for part in text.split(",") if part.strip())
    if not values or not set(values) <= {"sqlite", "postgres"}:
        raise argparse.ArgumentTypeError("sqlite, postgres or both, comma-separated")
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/bench", description="ordo load benchmarks")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("dispensing", help="dispensings per second through the API")
    run.add_argument("--seconds", type=float, default=15.0, help="measured seconds per run")
    run.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    run.add_argument("--clients", type=_ints, default=(1, 32), help="closed-loop clients")
    run.add_argument("--backends", type=_backends, default=("sqlite", "postgres"))
    run.add_argument(
        "--workers",
        type=_ints,
        default=(2,),
        help="server processes on PostgreSQL "
        "(default 2; a list runs each); SQLite always runs 1 (the CLI refuses more)",
    )
    run.add_argument("--prescriptions", type=int, default=2000, help="seeded through the API")
    run.add_argument("--client", choices=("raw", "httpx"), default="raw", help="HTTP client")
    run.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra server environment, e.g. ORDO_DB_POOL_SIZE=8",
    )
    run.add_argument(
        "--postgres",
        choices=("private", "services"),
        default="private",
        help="private: a throwaway cluster with scripts/services' settings (default; others' "
        "`scripts/services down` cannot cut a run); services: the one scripts/services runs",
    )
    run.add_argument("--database-url", help="this PostgreSQL server instead (overrides)")
    run.add_argument("--no-baseline", action="store_true", help="skip the asyncpg baseline")
    run.add_argument(
        "--reads",
        action="store_true",
        help="also GET one prescription in closed loops (what a pharmacy asks before dispensing)",
    )
    run.add_argument(
        "--open-rate",
        type=float,
        metavar="PER_SECOND",
        help="also dispense in an open loop at this fixed rate on PostgreSQL (latency from each "
        "request's scheduled send time: no coordinated omission), e.g. 1400",
    )
    run.add_argument(
        "--py-spy",
        action="store_true",
        help="sample one PostgreSQL server process with py-spy during each closed-loop API run "
        "at the most clients (no instrumentation: the server runs at full speed)",
    )
    run.add_argument("--write", type=Path, metavar="FILE", help="write/update BENCHMARKS.md")
    run.add_argument("--section", default="main", help="which block of FILE to (re)write")
    run.add_argument("--keep", action="store_true", help="keep the scratch schemas")
    run.add_argument(
        "--lines",
        type=_line_kinds,
        default=("standard", "narcotic"),
        help="standard (paracetamol), narcotic (a secure morphine line: the patient's narcotic "
        "coverage stream is appended with each dispensing); default both",
    )
    run.add_argument(
        "--rev",
        metavar="REV",
        help="also run the stock API of this git revision (a temporary worktree) as a baseline "
        "in the same run, e.g. the last v1 commit, to measure what the v1.1 rules cost",
    )
    run.add_argument(
        "--catalogue",
        type=Path,
        metavar="DIR",
        help="also run each server with the medicines catalogue of DIR imported (the BDPM "
        "files; the sample ships in adapters/catalogue/sample), to measure what its lookups cost",
    )
    run.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other processes to leave the CPUs idle",
    )
    return parser


def parse_options(argv: Sequence[str]) -> Options:
    args = _parser().parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    return Options(
        seconds=args.seconds,
        warmup=args.warmup,
        clients=args.clients,
        backends=args.backends,
        workers=args.workers,
        prescriptions=args.prescriptions,
        client=args.client,
        env=env,
        database_url=args.database_url,
        postgres=args.postgres,
        baseline=not args.no_baseline,
        write=args.write,
        section=args.section,
        keep=args.keep,
        wait_quiet=args.wait_quiet,
        command=shlex.join(["scripts/bench", *argv]),
        lines=args.lines,
        reads=args.reads,
        open_rate=args.open_rate,
        py_spy=args.py_spy,
        rev=args.rev,
        catalogue=args.catalogue,
    )


# --- who asks: tokens and request bodies ----------------------------------------------------------


@dataclass(frozen=True)
class Cast:
    """A few prescribers and pharmacies, many patients; tokens are signed once, up front."""

    prescribers: tuple[str, ...]
    pharmacists: tuple[str, ...]
    patients: tuple[str, ...]
    product: str = "3400935955838"  # Doliprane 1000 mg, 8 comprimés: in the shipped catalogue


def make_cast(prescribers: int = 8, pharmacies: int = 16, patients: int = 500) -> Cast:
    ttl = 12 * 3600
    return Cast(
        prescribers=tuple(
            sign_token(
                SECRET,
                role="prescriber",
                subject=f"bench-prescriber-{i}",
                ttl_seconds=ttl,
                rpps=Rpps.from_body(f"10{i:08d}").value,
            )
            for i in range(prescribers)
        ),
        pharmacists=tuple(
            sign_token(
                SECRET,
                role="pharmacist",
                subject=f"bench-pharmacist-{i}",
                ttl_seconds=ttl,
                rpps=Rpps.from_body(f"20{i:08d}").value,
                finess=Finess.from_body(f"750{i:05d}").value,
            )
            for i in range(pharmacies)
        ),
        patients=tuple(Ins.from_body(f"1841276{451000 + i:06d}").value for i in range(patients)),
    )


def prescription_body(cast: Cast, rng: random.Random, lines: str, index: int) -> bytes:
    """A standard paracetamol line, or a secure morphine line for a patient of its own (two
    narcotic prescriptions of one patient would refuse each other: no overlap)."""
    if lines == "narcotic":
        product = {"system": "CIP13", "code": MORPHINE, "label": "Skenan LP 10 mg, 14 gélules"}
        line = {"product": product, "quantity": PRESCRIBED, "dosage": "1 gélule matin et soir"}
        line |= {"duration_days": 28, "narcotic": True}
        patient, kind = Ins.from_body(f"1850175{index:06d}").value, "secure"
    else:
        product = {"system": "CIP13", "code": cast.product, "label": "Paracétamol 1 g, 8 cp"}
        line = {"product": product, "quantity": PRESCRIBED, "dosage": "1 comprimé 3 fois par jour"}
        line |= {"duration_days": 8}
        patient, kind = rng.choice(cast.patients), "standard"
    body = {"patient": {"ins": patient}, "kind": kind, "execution_view_consent": True}
    return msgspec.json.encode(body | {"lines": [line]})


class Issued(msgspec.Struct):
    prescription_id: str


class ProblemCode(msgspec.Struct):
    code: str = "?"


# --- HTTP clients ---------------------------------------------------------------------------------


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time, parsed with httptools.

    A closed-loop client needs nothing more, and this costs a fraction of httpx's CPU per
    request: on 2 cores, every cycle the load generator spends is taken from the server.
    """

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(error)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        body, self._body = b"".join(self._body), []
        if waiter is not None and not waiter.done():
            waiter.set_result((self._parser.get_status_code(), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(exc or ConnectionResetError("the server closed the connection"))

    def _fail(self, error: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self._transport is None:
            raise ConnectionResetError("not connected")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class Session(Protocol):
    async def post(self, path: str, token: str, body: bytes) -> tuple[int, bytes]: ...

    async def get(self, path: str, token: str) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class RawSession:
    """POSTs over one HttpConnection; reconnects after the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._conn: HttpConnection | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, self._conn = await loop.create_connection(HttpConnection, self._host, self._port)

    async def post(self, path: str, token: str, body: bytes) -> tuple[int, bytes]:
        if self._conn is None or not self._conn.is_open:
            await self.connect()
        assert self._conn is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return await self._conn.exchange(head.encode() + body)

    async def get(self, path: str, token: str) -> tuple[int, bytes]:
        if self._conn is None or not self._conn.is_open:
            await self.connect()
        assert self._conn is not None
        head = (
            f"GET {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        )
        return await self._conn.exchange(head.encode())

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.close()


class HttpxSession:
    """The same with httpx.AsyncClient (HTTP/1.1 keep-alive), to compare load generators."""

    def __init__(self, host: str, port: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._client = httpx.AsyncClient(
            base_url=f"http://{host}:{port}", limits=limits, timeout=60.0
        )

    async def connect(self) -> None:
        await self._client.get("/healthz")

    async def post(self, path: str, token: str, body: bytes) -> tuple[int, bytes]:
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        response = await self._client.post(path, content=body, headers=headers)
        return response.status_code, response.content

    async def get(self, path: str, token: str) -> tuple[int, bytes]:
        response = await self._client.get(path, headers={"authorization": f"Bearer {token}"})
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._client.aclose()


async def open_sessions(kind: str, port: int, count: int) -> list[Session]:
    sessions: list[Session] = []
    for _ in range(count):
        session = RawSession(HOST, port) if kind == "raw" else HttpxSession(HOST, port)
        await session.connect()
        sessions.append(session)
    return sessions


async def close_all(sessions: Iterable[Session]) -> None:
    for session in sessions:
        await session.aclose()


def error_label(status: int, body: bytes) -> str:
    try:
        return f"{status} {msgspec.json.decode(body, type=ProblemCode).code}"
    except msgspec.DecodeError:
        return str(status)


# --- closed loops ---------------------------------------------------------------------------------

C = TypeVar("C")
Command = Callable[[C], Awaitable[str | None]]  # None when it succeeded, else an error label


@dataclass(frozen=True)
class Window:
    """The measured interval (perf_counter times); clients start `warmup` seconds before it."""

    start: float
    end: float

    @classmethod
    def after(cls, warmup: float, seconds: float) -> Window:
        now = time.perf_counter()
        return cls(now + warmup, now + warmup + seconds)

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def record(self, window: Window, started: float, done: float, error: str | None) -> None:
        if not window.start <= done <= window.end:
            return
        if error is None:
            self.latencies.append(done - started)
        else:
            self.errors[error] += 1


async def closed_loop(client: C, command: Command[C], window: Window, tally: Tally) -> None:
    """One client: the next request leaves as soon as the previous answer is in."""
    while (started := time.perf_counter()) < window.end:
        try:
            error = await command(client)
        except (OSError, asyncpg.PostgresError, httpx.HTTPError) as exc:
            error = type(exc).__name__
            await asyncio.sleep(0.01)
        tally.record(window, started, time.perf_counter(), error)


async def run_loops(clients: Sequence[C], command: Command[C], window: Window) -> Tally:
    """All clients until the window ends; one still waiting for an answer 30 s later counts
    as an error (a hung server must not hang the benchmark)."""
    tally = Tally()
    loops = [asyncio.create_task(closed_loop(c, command, window, tally)) for c in clients]
    done, hung = await asyncio.wait(loops, timeout=window.end - time.perf_counter() + HUNG_AFTER)
    for loop in hung:
        loop.cancel()
    if hung:
        tally.errors[f"no answer {HUNG_AFTER:g} s after the end"] += len(hung)
    for loop in done:
        loop.result()  # re-raise what the loop did not expect
    return tally


async def open_loop(
    sessions: Sequence[C], command: Command[C], window: Window, rate: float
) -> Tally:
    """Requests leave at a fixed rate whatever the answers do (wrk2-style, no coordinated
    omission): each one's latency runs from the moment it was *scheduled* to leave, so a
    stalled server is charged for the requests that queue behind the stall. A request waits
    for a free connection (of `sessions`) as it would for a socket; that wait counts too."""
    tally, idle = Tally(), asyncio.Queue[C]()
    for session in sessions:
        idle.put_nowait(session)

    async def one(scheduled: float) -> None:
        session = await idle.get()
        try:
            error = await command(session)
        except (OSError, httpx.HTTPError) as exc:
            error = type(exc).__name__
        finally:
            idle.put_nowait(session)
        tally.record(window, scheduled, time.perf_counter(), error)

    first, sent, flying = time.perf_counter(), 0, set[asyncio.Task[None]]()
    while (scheduled := first + sent / rate) < window.end:
        await sleep_until(scheduled)
        while first + sent / rate <= time.perf_counter() and first + sent / rate < window.end:
            task = asyncio.create_task(one(first + sent / rate))
            flying.add(task)
            task.add_done_callback(flying.discard)
            sent += 1
    if flying:
        _, hung = await asyncio.wait(flying, timeout=HUNG_AFTER)
        for task in hung:
            task.cancel()
        if hung:
            tally.errors[f"no answer {HUNG_AFTER:g} s after the end"] += len(hung)
    return tally


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.perf_counter()))


# --- observing a run: CPU per process group, PostgreSQL sessions ----------------------------------

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    machine_busy: float  # CPU seconds, all cores, since boot
    procs: dict[int, tuple[int, str, float]]  # pid -> (ppid, comm, CPU seconds)


def _proc_stat(pid_dir: Path) -> tuple[int, str, float] | None:
    try:
        text = (pid_dir / "stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / TICK


def cpu_sample() -> CpuSample:
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[:8])
    procs = {}
    for pid_dir in Path("/proc").iterdir():
        if pid_dir.name.isdigit() and (stat := _proc_stat(pid_dir)) is not None:
            procs[int(pid_dir.name)] = stat
    busy = (user + nice + system + irq + softirq + steal) / TICK
    return CpuSample(busy, procs)


def descendants(procs: dict[int, tuple[int, str, float]], root: int) -> set[int]:
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in procs.items() if ppid == parent]
        found.update(children)
        frontier.extend(children)
    return found


def cores_used(
    before: CpuSample, after: CpuSample, seconds: float, servers: Sequence[int]
) -> dict[str, float]:
    """Cores busy on average during the window, per group of processes."""

    def used(pids: Iterable[int]) -> float:
        total = sum(after.procs[p][2] - before.procs[p][2] for p in pids if p in before.procs)
        return total / seconds

    groups = {
        "server": set().union(*(descendants(after.procs, pid) for pid in servers)),
        "postgres": {pid for pid, (_, comm, _) in after.procs.items() if comm == "postgres"},
        "loadgen": {os.getpid()},
    }
    usage = {name: used(pids) for name, pids in groups.items()}
    usage["machine"] = (after.machine_busy - before.machine_busy) / seconds
    usage["other"] = usage["machine"] - usage["server"] - usage["postgres"] - usage["loadgen"]
    return usage


ACTIVITY_SQL = """
SELECT count(*) FILTER (WHERE state = 'active') AS active,
       count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock_wait,
       count(*) FILTER (WHERE state = 'idle in transaction') AS idle_in_tx,
       count(*) FILTER (WHERE wait_event_type = 'IO') AS io_wait
FROM pg_stat_activity WHERE application_name = $1
"""


async def sample_activity(dsn: str, app: str, window: Window) -> dict[str, float]:
    """Average count of the run's sessions per state: active, waiting on a lock (the table
    lock every append takes), idle in transaction (holding it while the client thinks)."""
    conn = await asyncpg.connect(dsn, server_settings={"application_name": "ordo-bench-observer"})
    samples: list[dict[str, int]] = []
    try:
        await sleep_until(window.start)
        while time.perf_counter() < window.end:
            row = await conn.fetchrow(ACTIVITY_SQL, app)
            assert row is not None
            samples.append(dict(row.items()))
            await asyncio.sleep(SAMPLE_EVERY)
    finally:
        await conn.close()
    keys = ("active", "lock_wait", "idle_in_tx", "io_wait")
    return {k: sum(s[k] for s in samples) / max(1, len(samples)) for k in keys}


def _busy_cores(seconds: float) -> float:
    before = cpu_sample().machine_busy
    time.sleep(seconds)
    return (cpu_sample().machine_busy - before) / seconds


async def quiet_machine(patience: float, threshold: float = 0.3) -> None:
    """Wait up to `patience` seconds for the machine to be idle (others' builds and tests
    share these 2 cores); the "other" column shows what was left during each run."""
    deadline = time.monotonic() + patience
    while patience > 0:
        busy = await asyncio.to_thread(_busy_cores, 3.0)
        if busy < threshold:
            return
        if time.monotonic() > deadline:
            say(f"machine still busy ({busy:.2f} cores), going on", "yellow")
            return
        say(f"machine busy ({busy:.2f} cores used by others), waiting", "yellow")
        await asyncio.sleep(7.0)


@dataclass(frozen=True)
class Observation:
    cores: dict[str, float]
    sessions: dict[str, float]


async def observe(
    window: Window,
    servers: Sequence[int],
    activity: tuple[str, str] | None,
) -> Observation:
    sampler = asyncio.create_task(sample_activity(*activity, window)) if activity else None
    await sleep_until(window.start)
    before = await asyncio.to_thread(cpu_sample)
    await sleep_until(window.end)
    after = await asyncio.to_thread(cpu_sample)
    cores = cores_used(before, after, window.seconds, servers)
    return Observation(cores, await _sessions(sampler))


async def _sessions(sampler: asyncio.Task[dict[str, float]] | None) -> dict[str, float]:
    """The sampler's averages; a failed sampler only costs that column."""
    try:
        return await sampler if sampler else {}
    except Exception as error:  # a diagnostic column: never worth the run
        say(f"pg_stat_activity sampler failed: {error!r}", "yellow")
        return {}


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    target: str  # "API", "API read", "SQL ordo_append", ...
    backend: str
    workers: int | None
    clients: int
    window: Window
    tally: Tally
    observation: Observation

    @property
    def ok(self) -> int:
        return len(self.tally.latencies)

    @property
    def rate(self) -> float:
        return self.ok / self.window.seconds

    @property
    def is_api(self) -> bool:
        return self.target.startswith("API")

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(self.tally.latencies)
        if not ordered:
            return math.nan
        return 1000 * ordered[min(len(ordered) - 1, max(0, math.ceil(quantile * len(ordered)) - 1))]


# --- servers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """Which API to run: the stock `ordo serve --workers N`, as shipped, of this checkout or of
    another revision's (`source`), with the run's extra environment."""

    backend: str
    workers: int
    env: tuple[tuple[str, str], ...] = ()
    lines: str = "standard"  # what the seeded prescriptions prescribe (prescription_body)
    rev: str | None = None  # the stock server of this git revision, checked out in `source`
    source: Path | None = None
    catalogue: Path | None = None  # the BDPM files imported before the server starts

    @property
    def label(self) -> str:
        tuned = [f"{name}={value}" for name, value in self.env]
        what = "API" + (f" @{self.rev}" if self.rev else "")
        what += " narcotic" if self.lines == "narcotic" else ""
        what += " +catalogue" if self.catalogue else ""
        return what + (f" [{', '.join(tuned)}]" if tuned else "")


def server_env(spec: ServerSpec, data_dir: Path, database_url: str | None) -> dict[str, str]:
    """Our environment minus every ORDO_* setting (no Kafka, no failpoint), plus the run's."""
    env = harness.without_ordo_settings()
    env |= {"ORDO_AUTH_SECRET": SECRET, "ORDO_DATA_DIR": str(data_dir), "PGAPPNAME": API_APP}
    if database_url:
        env["ORDO_DATABASE_URL"] = database_url
    return env | dict(spec.env)


def running(
    spec: ServerSpec, env: dict[str, str], log: Path
) -> AbstractAsyncContextManager[Server]:
    """The spec's server, ready; `python -m` in another checkout runs that checkout's code."""
    return harness.running(env, log, workers=spec.workers, cwd=spec.source or ROOT)


# --- PostgreSQL: where, scratch schemas, facts ----------------------------------------------------


@contextlib.contextmanager
def database(opts: Options) -> Iterator[tuple[str | None, str]]:
    """The PostgreSQL server to use and where it comes from."""
    if "postgres" not in opts.backends:
        yield None, "not used"
    elif opts.database_url:
        yield opts.database_url, "given with --database-url"
    elif opts.postgres == "services":
        yield services_url(), "the one scripts/services runs"
    else:
        with private_postgres() as url:
            yield url, "private throwaway cluster, scripts/services' settings"


PG_SETTINGS = {  # as scripts/services writes them (fsync on: never ORDO_PG_FAST here)
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "max_wal_size": "2GB",
    "fsync": "on",
    "synchronous_commit": "on",
}


def as_postgres(argv: list[str]) -> list[str]:
    """initdb and postgres refuse root: run them as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: p.parts[-3])
    if not found:
        raise BenchError("no PostgreSQL binaries: `scripts/services up postgres` installs them")
    return found[-1].parent


@contextlib.contextmanager
def private_postgres() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="ordo-bench-pg-") as tmp:
        root, port, bin_dir = Path(tmp), free_port(), pg_bin()
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        settings = PG_SETTINGS | {"port": str(port), "unix_socket_directories": tmp}
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        data, ctl = str(root / "data"), str(bin_dir / "pg_ctl")
        _pg(bin_dir / "initdb", "-D", data, "-U", "ordo", "--auth=trust", "--no-sync")
        _pg(ctl, "-D", data, "-l", str(root / "postgres.log"), "-w", "-o", options, "start")
        try:
            yield f"postgresql://ordo@{HOST}:{port}/postgres"
        finally:
            _pg(ctl, "-D", data, "-m", "fast", "-w", "stop")


def _pg(*argv: str | Path) -> None:
    command = as_postgres([str(arg) for arg in argv])
    done = subprocess.run(command, cwd="/", capture_output=True, text=True, check=False)
    if done.returncode:
        raise BenchError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def services_url() -> str:
    url = os.environ.get("ORDO_TEST_DATABASE_URL")
    if url:
        return url
    services = str(ROOT / "scripts" / "services")
    subprocess.run([services, "up", "postgres"], check=True, stdout=sys.stderr)
    printed = subprocess.run([services, "env"], check=True, capture_output=True, text=True).stdout
    found = re.search(r"ORDO_TEST_DATABASE_URL=['\"]?([^'\"\s]+)", printed)
    if found is None:
        raise BenchError("no PostgreSQL: pass --database-url or run scripts/services up")
    return found.group(1)


@dataclass
class Scratch:
    """Scratch schemas made for this run, dropped at the end (unless --keep)."""

    url: str
    schemas: list[str] = field(default_factory=list)

    def create(self) -> str:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        self.schemas.append(name)
        return name

    def started_at(self) -> str:
        """When the PostgreSQL server started: a change means someone restarted it mid-run."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_postmaster_start_time()::text").fetchone()
        return str(row[0] if row else "?")

    def drop_all(self) -> None:
        try:
            self._drop_all()
        except psycopg.OperationalError as error:
            say(f"could not drop {self.schemas}: {error}", "yellow")

    def _drop_all(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            for name in self.schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )


def postgres_facts(url: str) -> dict[str, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        settings = conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
            "('fsync', 'synchronous_commit', 'wal_sync_method', 'shared_buffers', "
            "'max_connections', 'commit_delay') ORDER BY name"
        ).fetchall()
    facts = {"PostgreSQL": str(version[0] if version else "?").split()[0]}
    return facts | {str(name): str(value) for name, value in settings}


# --- machine facts --------------------------------------------------------------------------------


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def fdatasync_us(count: int = 200) -> float:
    """Latency of an 8 kB write + fdatasync in the temp dir (a commit's floor with fsync on)."""
    block = os.urandom(8192)
    with tempfile.NamedTemporaryFile() as scratch:
        started = time.perf_counter()
        for _ in range(count):
            os.pwrite(scratch.fileno(), block, 0)
            os.fdatasync(scratch.fileno())
        return (time.perf_counter() - started) / count * 1e6


def git_version() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    changed = len(git("status", "--porcelain").splitlines())
    return f"commit {git('rev-parse', '--short', 'HEAD')} + {changed} uncommitted file(s)"


def machine_facts(database_url: str | None) -> dict[str, str]:
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    facts = {
        "nproc": nproc.strip(),
        "CPU": cpu_model(),
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "fdatasync 8 kB (/tmp)": f"{fdatasync_us():.0f} µs",
        "Python sum(range(10**6))": benchmarks_md.python_speed(),
        "ordo": git_version(),
    }
    return facts | (postgres_facts(database_url) if database_url else {})


# --- the API runs ---------------------------------------------------------------------------------


async def seed(port: int, cast: Cast, count: int, kind: str, lines: str) -> list[str]:
    """Issue `count` prescriptions through the API (16 at a time); their numbers."""
    rng = random.Random(count)
    todo = iter(range(count))
    ids: list[str] = []
    failures: Counter[str] = Counter()

    async def issue(session: Session) -> None:
        for index in todo:
            body = prescription_body(cast, rng, lines, index)
            status, answer = await session.post(
                "/v1/prescriptions", rng.choice(cast.prescribers), body
            )
            if status == 201:
                ids.append(msgspec.json.decode(answer, type=Issued).prescription_id)
            else:
                failures[error_label(status, answer)] += 1

    sessions = await open_sessions(kind, port, 16)
    async with asyncio.timeout(max(60.0, count / 10)):
        await asyncio.gather(*(issue(session) for session in sessions))
    await close_all(sessions)
    if failures:
        raise BenchError(f"seeding failed: {dict(failures)}")
    return ids


def dispense_command(ids: Sequence[str], tokens: Sequence[str], seed_: int) -> Command[Session]:
    rng = random.Random(seed_)
    paths = [f"/v1/prescriptions/{number}/dispensations" for number in ids]

    async def dispense(session: Session) -> str | None:
        status, body = await session.post(rng.choice(paths), rng.choice(tokens), DISPENSE_BODY)
        return None if status == 201 else error_label(status, body)

    return dispense


def read_command(ids: Sequence[str], tokens: Sequence[str], seed_: int) -> Command[Session]:
    """A pharmacy reading one prescription ("already dispensed elsewhere?")."""
    rng = random.Random(seed_)
    paths = [f"/v1/prescriptions/{number}" for number in ids]

    async def read(session: Session) -> str | None:
        status, body = await session.get(rng.choice(paths), rng.choice(tokens))
        return None if status == 200 else error_label(status, body)

    return read


@dataclass(frozen=True)
class ApiTarget:
    spec: ServerSpec
    server: Server
    ids: list[str]
    dsn: str | None  # the PostgreSQL server, to watch the sessions


async def api_run(
    target: ApiTarget,
    opts: Options,
    cast: Cast,
    clients: int,
    *,
    what: str = "dispensing",
    rate: float | None = None,
) -> Run:
    """Closed loops of `clients`, or with `rate` an open loop over `clients` connections."""
    sessions = await open_sessions(opts.client, target.server.port, clients)
    window = Window.after(opts.warmup, opts.seconds)
    activity = (target.dsn, API_APP) if target.dsn else None
    observer = asyncio.create_task(observe(window, [target.server.pid], activity))
    make = read_command if what == "read" else dispense_command
    command = make(target.ids, cast.pharmacists, clients)
    spying = None
    if opts.py_spy and rate is None and target.dsn and clients == max(opts.clients):
        spying = asyncio.create_task(py_spy([target.server.pid], window))
    if rate is None:
        tally = await run_loops(sessions, command, window)
    else:
        tally = await open_loop(sessions, command, window, rate)
    observation = await observer
    await close_all(sessions)
    spec = target.spec
    label = spec.label if what == "dispensing" else f"{spec.label} {what}"
    if rate is not None:
        label += f" open loop {rate:,.0f}/s"
    run = Run(label, spec.backend, spec.workers, clients, window, tally, observation)
    if spying is not None:
        SPIED.append((run, await spying))
    say(
        f"{run.target} {spec.backend} w{spec.workers} c{clients}: {run.rate:.0f}/s, "
        f"p99 {run.latency_ms(0.99):.1f} ms, errors {dict(tally.errors)}"
    )
    return run


@dataclass(frozen=True)
class ApiResult:
    runs: list[Run]
    schema: str | None


@contextlib.asynccontextmanager
async def api_server(
    spec: ServerSpec, opts: Options, cast: Cast, scratch: Scratch | None
) -> AsyncIterator[tuple[ApiTarget, str | None]]:
    """A fresh server on a fresh store, seeded through the API."""
    schema = scratch.create() if spec.backend == "postgres" and scratch else None
    url = with_schema(scratch.url, schema) if scratch and schema else None
    with tempfile.TemporaryDirectory(prefix="ordo-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        env = server_env(spec, data_dir, url)
        if spec.catalogue is not None:
            import_catalogue(spec.catalogue, env, Path(tmp) / "import.log")
        async with running(spec, env, Path(tmp) / "server.log") as srv:
            say(f"{spec.label} {spec.backend} w{spec.workers} on :{srv.port}: seeding")
            ids = await seed(srv.port, cast, opts.prescriptions, opts.client, spec.lines)
            dsn = scratch.url if url and scratch else None
            yield ApiTarget(spec, srv, ids, dsn), schema


def import_catalogue(directory: Path, env: dict[str, str], log: Path) -> None:
    """`ordo catalogue import DIR` into the server's store, before it starts."""
    argv = harness.ordo_argv("catalogue", "import", str(directory))
    with log.open("ab") as out:
        done = subprocess.run(argv, cwd=ROOT, env=env, stdout=out, stderr=out, check=False)
    if done.returncode != 0:
        raise BenchError(f"catalogue import failed:\n{log.read_text()[-2000:]}")


async def bench_api(
    opts: Options, cast: Cast, spec: ServerSpec, scratch: Scratch | None
) -> ApiResult:
    async with api_server(spec, opts, cast, scratch) as (target, schema):
        runs = []
        for clients in opts.clients:
            await quiet_machine(opts.wait_quiet)
            runs.append(await api_run(target, opts, cast, clients))
        if opts.reads:
            for clients in opts.clients:
                await quiet_machine(opts.wait_quiet)
                runs.append(await api_run(target, opts, cast, clients, what="read"))
        if opts.open_rate and spec.backend == "postgres":
            await quiet_machine(opts.wait_quiet)
            runs.append(
                await api_run(target, opts, cast, OPEN_LOOP_CONNECTIONS, rate=opts.open_rate)
            )
    return ApiResult(runs, schema)


# --- the locked SQL baseline: the event store's append, straight to PostgreSQL --------------------


@dataclass(frozen=True)
class Baseline:
    """What a dispensing sends (checked with log_statement=all): the SELECT of the stream, then
    one prepared call of the app's `ordo_append` function (LOCK TABLE ... IN EXCLUSIVE MODE;
    NOTIFY; INSERT ... RETURNING notification_id, in its own transaction), on a copy of the
    API run's seed in its own schema."""

    dsn: str
    schema: str
    ids: list[str]
    topic: str
    state: bytes

    @property
    def select(self) -> str:
        return (
            f'SELECT * FROM "{self.schema}"."ordo_events" WHERE originator_id = $1 '
            "ORDER BY originator_version ASC"
        )

    @property
    def append(self) -> str:
        call = f'"{self.schema}".ordo_append($1, $2, $3, $4)'
        return f"SELECT n AS notification_id FROM {call} AS n"


def sql_command(base: Baseline, seed_: int) -> Command[asyncpg.Connection]:
    rng = random.Random(seed_)

    async def dispense(conn: asyncpg.Connection) -> str | None:
        number = rng.choice(base.ids)
        for _ in range(100):  # a lost race on the version: load again and retry, as the app does
            rows = await conn.fetch(base.select, number)
            version = rows[-1]["originator_version"] + 1
            try:
                await conn.fetch(base.append, [number], [version], [base.topic], [base.state])
            except asyncpg.UniqueViolationError:
                continue
            return None
        return "lost 100 races"

    return dispense


async def sql_run(base: Baseline, opts: Options, clients: int) -> Run:
    settings = {"application_name": SQL_APP}
    conns = [await asyncpg.connect(base.dsn, server_settings=settings) for _ in range(clients)]
    command = sql_command(base, clients)
    window = Window.after(opts.warmup, opts.seconds)
    observer = asyncio.create_task(observe(window, (), (base.dsn, SQL_APP)))
    tally = await run_loops(conns, command, window)
    observation = await observer
    for conn in conns:
        await conn.close()
    run = Run(LOCKED_SQL, "postgres", None, clients, window, tally, observation)
    say(f"{LOCKED_SQL} c{clients}: {run.rate:.0f}/s, p99 {run.latency_ms(0.99):.1f} ms")
    return run


def prepare_baseline(scratch: Scratch, source: str) -> Baseline:
    """A scratch schema made by the app's own open_library_log, holding the API run's seed."""
    schema = scratch.create()
    open_library_log(with_schema(scratch.url, schema), Path(tempfile.gettempdir()), 1).close()
    src, dst = sql.Identifier(source, "ordo_events"), sql.Identifier(schema, "ordo_events")
    with psycopg.connect(scratch.url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (originator_id, originator_version, topic, state) SELECT "
                "originator_id, originator_version, topic, state FROM {} "
                "WHERE originator_version = 1 ORDER BY notification_id"
            ).format(dst, src)
        )
        conn.execute(sql.SQL("ANALYZE {}").format(dst))
        ids = [r[0] for r in conn.execute(sql.SQL("SELECT originator_id FROM {}").format(dst))]
        sample = conn.execute(
            sql.SQL(
                "SELECT topic, state FROM {} WHERE topic LIKE 'DispensationRecorded%' LIMIT 1"
            ).format(src)
        ).fetchone()
    topic, state = sample or ("DispensationRecorded.v1", b"{}" * 200)
    return Baseline(scratch.url, schema, ids, topic, bytes(state))


async def bench_baseline(opts: Options, scratch: Scratch, source: str) -> list[Run]:
    base = prepare_baseline(scratch, source)
    say(f"SQL baseline on {len(base.ids)} prescriptions")
    runs = []
    for clients in opts.clients:
        await quiet_machine(opts.wait_quiet)
        runs.append(await sql_run(base, opts, clients))
    return runs


# --- reports --------------------------------------------------------------------------------------

Rows = tuple[list[str], list[list[str]]]


def _errors(run: Run) -> str:
    total = sum(run.tally.errors.values())
    if not total:
        return "0"
    return f"{total} ({', '.join(f'{k}: {v}' for k, v in run.tally.errors.most_common(3))})"


def _ratio(run: Run, runs: Sequence[Run]) -> str:
    if not run.is_api or run.backend != "postgres":
        return "—"
    base = [r for r in runs if r.target == LOCKED_SQL and r.clients == run.clients]
    return f"{run.rate / base[0].rate:.2f}" if base and base[0].rate else "—"


def _vs_rev(run: Run, runs: Sequence[Run], rev: str | None) -> str:
    """This run's rate over the same server at `--rev` (same backend, workers, clients)."""
    if rev is None or not run.target.startswith("API") or f"@{rev}" in run.target:
        return "—"
    twin = run.target.replace("API", f"API @{rev}", 1)
    base = [
        r
        for r in runs
        if (r.target, r.backend, r.workers, r.clients)
        == (twin, run.backend, run.workers, run.clients)
    ]
    return f"{run.rate / base[0].rate:.2f}" if base and base[0].rate else "—"


def _vs_no_catalogue(run: Run, runs: Sequence[Run]) -> str:
    """A run with the catalogue's rate over the same run without it."""
    if " +catalogue" not in run.target:
        return "—"
    twin = run.target.replace(" +catalogue", "", 1)
    base = [
        r
        for r in runs
        if (r.target, r.backend, r.workers, r.clients)
        == (twin, run.backend, run.workers, run.clients)
    ]
    return f"{run.rate / base[0].rate:.2f}" if base and base[0].rate else "—"


def results_rows(runs: Sequence[Run], rev: str | None = None) -> Rows:
    head = [
        "target",
        "backend",
        "workers",
        "clients",
        "201/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "API/SQL",
        *([f"vs @{rev}"] if rev else []),
        *(["vs no catalogue"] if any(" +catalogue" in r.target for r in runs) else []),
    ]
    rows = [
        [
            r.target,
            r.backend,
            str(r.workers or "—"),
            str(r.clients),
            f"{r.rate:,.0f}",
            f"{r.latency_ms(0.5):.1f}",
            f"{r.latency_ms(0.99):.1f}",
            f"{r.latency_ms(1.0):.1f}",
            _errors(r),
            _ratio(r, runs),
            *([_vs_rev(r, runs, rev)] if rev else []),
            *([_vs_no_catalogue(r, runs)] if any(" +catalogue" in x.target for x in runs) else []),
        ]
        for r in runs
    ]
    return head, rows


def _per_request(cores: float, run: Run) -> str:
    return f"{cores * run.window.seconds / run.ok * 1e6:,.0f}" if run.ok else "—"


def cpu_rows(runs: Sequence[Run]) -> Rows:
    head = [
        "target",
        "backend",
        "workers",
        "clients",
        "server",
        "postgres",
        "load gen",
        "other",
        "machine",
        "server µs/op",
        "postgres µs/op",
        "load gen µs/op",
        "pg sessions active / lock-wait / idle-in-tx",
    ]
    rows = []
    for r in runs:
        c, s = r.observation.cores, r.observation.sessions
        sessions = f"{s['active']:.1f} / {s['lock_wait']:.1f} / {s['idle_in_tx']:.1f}" if s else "—"
        rows.append(
            [
                r.target,
                r.backend,
                str(r.workers or "—"),
                str(r.clients),
                *(f"{c[k]:.2f}" for k in ("server", "postgres", "loadgen", "other", "machine")),
                _per_request(c["server"], r),
                _per_request(c["postgres"], r),
                _per_request(c["loadgen"], r),
                sessions,
            ]
        )
    return head, rows


def rich_table(title: str, rows: Rows) -> Table:
    table = Table(title=title, title_justify="left")
    for name in rows[0]:
        table.add_column(name, justify="left" if name in {"target", "backend"} else "right")
    for row in rows[1]:
        table.add_row(*row)
    return table


def markdown_table(rows: Rows) -> str:
    return benchmarks_md.markdown_table(*rows)


def _api_runs(runs: Sequence[Run], target: str, clients: int) -> list[Run]:
    return [
        r for r in runs if r.target == target and r.backend == "postgres" and r.clients == clients
    ]


def _aim(text: str, met: bool | None, measured: str) -> str:
    verdict = "not run" if met is None else ("**met**" if met else "**not met**")
    return f"- {text}: {verdict}{', ' + measured if measured else ''}."


def goal_line(runs: Sequence[Run]) -> str:
    """The aims of issue 11 (the write path), judged on this run's PostgreSQL rows."""
    lines = []
    busy, idle = _api_runs(runs, "API", 32), _api_runs(runs, "API", 1)
    baseline = [replace(r, target="API") for r in runs if r.target == LOCKED_SQL]
    locked = _api_runs(baseline, "API", 32)
    if busy:
        best = max(busy, key=lambda r: r.rate)
        ratio = best.rate / locked[0].rate if locked else math.nan
        met = best.rate >= GOAL_RATE and best.latency_ms(0.99) <= GOAL_P99_MS
        met = met and (not locked or ratio >= GOAL_OF_LOCKED_SQL)
        measured = f"{best.rate:,.0f}/s, p99 {best.latency_ms(0.99):.1f} ms, {ratio:.2f} of SQL"
        lines.append(_aim(AIMS[0], met, measured))
    else:
        lines.append(_aim(AIMS[0], None, ""))
    if idle:
        p99 = idle[0].latency_ms(0.99)
        lines.append(_aim(AIMS[1], p99 <= GOAL_P99_ONE_CLIENT_MS, f"p99 {p99:.1f} ms"))
    reads = _api_runs(runs, "API read", 32)
    if reads:
        r = reads[0]
        met = r.rate >= GOAL_READ_RATE and r.latency_ms(0.99) <= GOAL_READ_P99_MS
        lines.append(_aim(AIMS[2], met, f"{r.rate:,.0f}/s, p99 {r.latency_ms(0.99):.1f} ms"))
    for r in runs:
        if "open loop" in r.target:
            lines.append(
                f"- {r.target}: {r.rate:,.0f} 201/s answered in the window, p50 "
                f"{r.latency_ms(0.5):.1f} ms, p99 {r.latency_ms(0.99):.1f} ms from the scheduled "
                "send time."
            )
    return "Aims of issue 11 (PostgreSQL, this run):\n\n" + "\n".join(lines)


# --- py-spy: where a server process spends its time, sampled at full speed --------------------

SPY_COMPONENTS = (
    "asyncpg", "litestar", "uvicorn", "msgspec", "structlog", "prometheus", "anyio", "jwt",
    "adapters/store", "adapters/http", "adapters/readmodels", "adapters/", "projections/",
    "domain/", "asyncio",
)  # fmt: skip
SPIED: list[tuple[Run, Counter[str]]] = []  # (run, samples by stack) per sampled run


async def py_spy(server_pids: Sequence[int], window: Window) -> Counter[str]:
    """py-spy samples one worker process (a child of `ordo serve`) for the measured window."""
    await sleep_until(window.start)
    procs = cpu_sample().procs  # the busiest descendant is a worker (not a resource tracker)
    workers = set().union(*(descendants(procs, p) for p in server_pids)) - {*server_pids}
    pid = max(workers, key=lambda p: procs[p][2]) if workers else server_pids[0]
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        argv = [spy, "record", "--pid", str(pid), "--duration", str(max(1, int(window.seconds)))]
        argv += ["--rate", "200", "--format", "raw", "--nonblocking", "--output", out.name]
        done = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, err = await done.communicate()
        if done.returncode != 0:
            say(f"py-spy failed: {err.decode()[-300:]}", "red")
            return Counter()
        sampled = Path(out.name).read_text()  # noqa: ASYNC240 (py-spy has exited: a local file)
        say(f"py-spy sampled process {pid}: {len(sampled):,} bytes")
        stacks: Counter[str] = Counter()
        for line in sampled.splitlines():
            stack, _, count = line.rpartition(" ")
            stacks[stack] += int(count)
        return stacks


def _frame_file(frame: str) -> str:
    return frame.rpartition("(")[2]


def _component(frame: str) -> str:
    where = _frame_file(frame)
    return next((name.rstrip("/") for name in SPY_COMPONENTS if name in where), "other")


def spy_rows(stacks: Counter[str]) -> tuple[Rows, Rows]:
    """Own samples by component (the leaf frame's), and our functions' inclusive share."""
    total = sum(stacks.values()) or 1
    own: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = stack.split(";")
        own[_component(frames[-1])] += count
        names = {f.split(" (")[0] for f in frames if "/work/" in f or "adapters/" in f}
        for name in {n for n in names if any(d in n for d in ("Service", "Store", "Committer"))}:
            ours[name] += count
    by_component = (
        ["component (leaf frame)", "share of samples"],
        [[name, f"{count / total:.1%}"] for name, count in own.most_common()],
    )
    by_function = (
        ["use case or store function (inclusive)", "share of samples"],
        [[name, f"{count / total:.1%}"] for name, count in ours.most_common(12)],
    )
    return by_component, by_function


def spy_markdown() -> list[str]:
    lines = []
    for run, stacks in SPIED:
        if not stacks:
            continue
        components, functions = spy_rows(stacks)
        lines += [
            f"py-spy, one server process during `{run.target}` at {run.clients} clients "
            f'({sum(stacks.values()):,} samples at 200/s; "other" in the leaf column is '
            "mostly the event loop's own C code: uvloop, sockets):",
            "",
            markdown_table(components),
            "",
            markdown_table(functions),
            "",
        ]
    return lines


# --- BENCHMARKS.md --------------------------------------------------------------------------------

METHOD = (
    "Each backend gets a fresh `ordo serve` (SQLite in a temp dir; PostgreSQL in a scratch "
    "schema), {prescriptions:,} prescriptions issued through the API (one line of {prescribed} "
    "packs, 8 prescribers, 500 patients; *narcotic* rows: a secure morphine line, 28 days, one "
    "patient per prescription, so each dispensing also appends to the patient's narcotic "
    "coverage stream; *@REV* rows: the stock server of that git revision, same seed and load; "
    "*+catalogue* rows: the same server with the medicines catalogue imported before it starts, "
    "so every prescribing and dispensing looks its packs up), "
    "then {clients} closed-loop clients ({client} HTTP/1.1 "
    "keep-alive client, one connection each) POST a one-pack dispensing on a random prescription "
    "with one of 16 pharmacists' tokens, for {warmup:g} s unmeasured then {seconds:g} s measured. "
    "Anything but 201 is an error. The *SQL ordo_append* rows send a dispensing's statements "
    "straight to PostgreSQL with asyncpg, one connection per client, on a copy of the seed: "
    "SELECT the stream (prepared), then the append as the app does it (checked with "
    "log_statement=all): one prepared `SELECT … FROM ordo_append($1…$4)`, whose PL/pgSQL takes "
    "the EXCLUSIVE table lock, NOTIFYs and INSERTs in its own transaction (API/SQL compares with "
    "it). CPU columns are "
    "cores busy on average (of {nproc}): server processes, PostgreSQL processes, this load "
    "generator (for SQL rows: the asyncpg client), other processes, whole machine; µs/op is CPU "
    "per 201; pg sessions are averages of pg_stat_activity samples every 0.2 s."
)


def facts_line(facts: dict[str, str]) -> str:
    return "; ".join(f"{name}: {value}" for name, value in facts.items())


def block(opts: Options, facts: dict[str, str], runs: Sequence[Run]) -> str:
    method = METHOD.format(
        prescriptions=opts.prescriptions,
        prescribed=PRESCRIBED,
        clients=" and ".join(map(str, opts.clients)),
        client=opts.client,
        warmup=opts.warmup,
        seconds=opts.seconds,
        nproc=facts["nproc"],
    )
    parts = [
        f"### `{opts.section}`: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{opts.command}`",
        "",
        f"Machine: {facts_line(facts)}.",
        "",
        method,
        "",
        markdown_table(results_rows(runs, opts.rev)),
        "",
        goal_line(runs),
        "",
        "Where the CPU goes during each run:",
        "",
        markdown_table(cpu_rows(runs)),
    ]
    parts += ["", *spy_markdown()]
    return "\n".join(parts).rstrip() + "\n"


def print_report(runs: Sequence[Run], rev: str | None = None) -> None:
    out = Console(width=max(160, Console().width))
    out.print(rich_table("Dispensing", results_rows(runs, rev)))
    out.print(goal_line(runs))
    out.print(rich_table("Where the CPU goes (cores busy; CPU µs per 201)", cpu_rows(runs)))


# --- main -----------------------------------------------------------------------------------------


def plan(opts: Options, baseline_source: Path | None = None) -> list[ServerSpec]:
    """Each backend with each number of workers (SQLite: 1) and kind of line; then the same
    servers at `--rev`, checked out in `baseline_source`."""
    specs: list[ServerSpec] = []
    for backend in opts.backends:
        workers = (1,) if backend == "sqlite" else opts.workers
        specs += [
            ServerSpec(backend, w, env=opts.env_items, lines=kind, catalogue=catalogue)
            for w in workers
            for kind in opts.lines
            for catalogue in (None, *([opts.catalogue] if opts.catalogue else []))
        ]
        if baseline_source is not None:
            specs += [
                ServerSpec(backend, w, env=opts.env_items, lines=kind, rev=opts.rev)
                for w in workers
                for kind in opts.lines
            ]
            specs = [replace(spec, source=baseline_source) if spec.rev else spec for spec in specs]
    return specs


@contextlib.contextmanager
def checkout(rev: str | None) -> Iterator[Path | None]:
    """A temporary worktree of `rev` (its code runs on this checkout's virtualenv)."""
    if rev is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="ordo-bench-rev-") as tmp:
        where = Path(tmp) / "tree"
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", str(where), rev], check=True, capture_output=True)
        try:
            yield where
        finally:
            subprocess.run([*git, "remove", "--force", str(where)], check=False)


async def bench(opts: Options, url: str | None, where: str) -> int:
    scratch = Scratch(url) if url else None
    facts, cast = machine_facts(url) | {"PostgreSQL server": where}, make_cast()
    started = scratch.started_at() if scratch else None
    runs: list[Run] = []
    try:
        with checkout(opts.rev) as source:
            results = [await bench_api(opts, cast, spec, scratch) for spec in plan(opts, source)]
        runs = [run for result in results for run in result.runs]
        seeded = next((r.schema for r in results if r.schema), None)
        if scratch and seeded and opts.baseline:
            runs += await bench_baseline(opts, scratch, seeded)
    finally:
        if scratch and not opts.keep:
            scratch.drop_all()
    if scratch and scratch.started_at() != started:
        facts["WARNING"] = "PostgreSQL was restarted during the run: numbers are unreliable"
        say(facts["WARNING"], "red")
    print_report(runs, opts.rev)
    if opts.write:
        benchmarks_md.update_benchmarks(opts.write, opts.section, block(opts, facts, runs))
        say(f"wrote the `{opts.section}` block of {opts.write}")
    return 0


def main(argv: Sequence[str]) -> int:
    opts = parse_options(argv)
    try:
        with database(opts) as (url, where):
            return uvloop.run(bench(opts, url, where))
    except (BenchError, harness.ServerNotReadyError) as error:
        console.print(f"[red]bench: {error}[/red]")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
