"""The API runs: seed prescriptions through the API, then dispense (and read) in closed loops,
and dispense in an open loop, each observed."""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from adapters.config import with_schema
from tools import harness
from tools.bench import fhir
from tools.bench.load import (
    DISPENSE_BODY,
    Cast,
    Command,
    Issued,
    Run,
    Session,
    Window,
    close_all,
    error_label,
    open_loop,
    open_sessions,
    prescription_body,
    run_loops,
)
from tools.bench.options import Options
from tools.bench.progress import BenchError, say
from tools.bench.sampler import SPIED, observe, py_spy, quiet_machine
from tools.bench.servers import API_APP, Scratch, ServerSpec, running, server_env
from tools.harness import ROOT, Server

OPEN_LOOP_CONNECTIONS = 64  # the open loop's connections: as many requests in flight at most
# With --fhir, after each /v1 read: FHIR's, then prescribing through each door, each FHIR run
# right after its /v1 twin (the log grows during a run: the pair sees the same store).
FHIR_LATER = ("fhir read", "prescribing 3 lines", "fhir prescribing 3 lines")


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


def healthz_command(tokens: Sequence[str], seed_: int) -> Command[Session]:
    """`GET /healthz`, with a token as a read has: the same HTTP stack and middleware, no store."""
    rng = random.Random(seed_)

    async def healthz(session: Session) -> str | None:
        status, body = await session.get("/healthz", rng.choice(tokens))
        return None if status == 200 else error_label(status, body)

    return healthz


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
    command = command_for(what, target.ids, cast, clients)
    spying = None
    if opts.py_spy and rate is None and clients == max(opts.clients):
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


def command_for(what: str, ids: Sequence[str], cast: Cast, seed_: int) -> Command[Session]:
    """What each client of a run sends, by the run's name."""
    match what:
        case "dispensing":
            return dispense_command(ids, cast.pharmacists, seed_)
        case "read":
            return read_command(ids, cast.pharmacists, seed_)
        case "healthz":
            return healthz_command(cast.pharmacists, seed_)
        case "prescribing 3 lines" | "fhir prescribing 3 lines":
            return fhir.prescribing_command(cast, what.startswith("fhir"), seed_)
        case "fhir dispensing":
            return fhir.dispensing_command(ids, cast, seed_)
        case "fhir read":
            return fhir.read_command(ids, cast, seed_)
    raise BenchError(f"no such run: {what}")


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
            import_catalogue(spec, env, Path(tmp) / "import.log")
        async with running(spec, env, Path(tmp) / "server.log") as srv:
            say(f"{spec.label} {spec.backend} w{spec.workers} on :{srv.port}: seeding")
            ids = await seed(srv.port, cast, opts.prescriptions, opts.client, spec.lines)
            dsn = scratch.url if url and scratch else None
            yield ApiTarget(spec, srv, ids, dsn), schema


def import_catalogue(spec: ServerSpec, env: dict[str, str], log: Path) -> None:
    """`ordo catalogue import DIR` into the server's store, before it starts, by the server's
    own code (another revision's imports as it would); DIR is read from this checkout."""
    assert spec.catalogue is not None
    directory = spec.catalogue if spec.catalogue.is_absolute() else ROOT / spec.catalogue
    argv = harness.ordo_argv("catalogue", "import", str(directory))
    with log.open("ab") as out:
        done = subprocess.run(
            argv, cwd=spec.source or ROOT, env=env, stdout=out, stderr=out, check=False
        )
    if done.returncode != 0:
        raise BenchError(f"catalogue import failed:\n{log.read_text()[-2000:]}")


async def bench_api(
    opts: Options, cast: Cast, spec: ServerSpec, scratch: Scratch | None
) -> ApiResult:
    fhir_too = opts.fhir and spec.lines == "standard"  # FHIR's runs send the paracetamol pack
    async with api_server(spec, opts, cast, scratch) as (target, schema):
        runs = []
        for clients in opts.clients:
            for what in ("dispensing", "fhir dispensing") if fhir_too else ("dispensing",):
                await quiet_machine(opts.wait_quiet)
                runs.append(await api_run(target, opts, cast, clients, what=what))
        later = (
            (("read",) if opts.reads or fhir_too else ())
            + (("healthz",) if opts.healthz else ())
            + (FHIR_LATER if fhir_too else ())
        )
        for clients in opts.clients:
            for what in later:
                await quiet_machine(opts.wait_quiet)
                runs.append(await api_run(target, opts, cast, clients, what=what))
        if opts.open_rate and spec.backend == "postgres":
            await quiet_machine(opts.wait_quiet)
            runs.append(
                await api_run(target, opts, cast, OPEN_LOOP_CONNECTIONS, rate=opts.open_rate)
            )
    return ApiResult(runs, schema)
