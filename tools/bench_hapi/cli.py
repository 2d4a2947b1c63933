"""`scripts/bench_hapi`: build HAPI, start a private PostgreSQL, then each server in turn:
seed prescriptions through its FHIR door, run each call with each number of clients."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shlex
import subprocess
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import uvloop

from adapters.config import with_schema
from tools import benchmarks_md, harness
from tools.bench.load import Cast, Run, Session, Window, close_all, make_cast
from tools.bench.load import run_loops as closed_loops
from tools.bench.options import _ints
from tools.bench.progress import BenchError, console, say
from tools.bench.sampler import observe
from tools.bench.servers import Scratch, ServerSpec, machine_facts, private_postgres, server_env
from tools.bench_hapi import hapi
from tools.bench_hapi.calls import CALLS, Door, command_for, created_id, prescriptions
from tools.bench_hapi.report import block, comparison_rows
from tools.bench_hapi.sessions import open_sessions

ORDO, HAPI = Door("ordo", "/fhir/R4"), Door("HAPI", "/fhir")
SEEDING_SESSIONS = 16


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="scripts/bench_hapi", description=__doc__)
    cli.add_argument(
        "--source",
        default=hapi.STARTER,
        help="hapi-fhir-jpaserver-starter: a git URL or directory (cloned at --tag), or a "
        "checkout without git history (used as it is)",
    )
    cli.add_argument("--tag", default=hapi.TAG, help="the starter's tag to build")
    cli.add_argument("--war", type=Path, help="a built ROOT.war instead of building one")
    cli.add_argument("--heap", default="2g", help="HAPI's -Xmx")
    cli.add_argument("--workers", type=int, default=2, help="ordo serve --workers")
    cli.add_argument("--clients", type=_ints, default=(1, 32), help="closed-loop clients")
    cli.add_argument("--seconds", type=float, default=15.0, help="measured seconds per run")
    cli.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first")
    cli.add_argument("--prescriptions", type=int, default=500, help="seeded on each server")
    cli.add_argument(
        "--prime",
        type=float,
        default=20.0,
        help="unmeasured seconds of each call at the most clients, before the runs (the JIT)",
    )
    cli.add_argument("--servers", default="ordo,hapi", help="which, in this order")
    cli.add_argument("--write", type=Path, metavar="FILE", help="write/update BENCHMARKS.md")
    cli.add_argument("--section", default="hapi", help="which block of FILE to (re)write")
    return cli


@dataclass(frozen=True)
class Target:
    door: Door
    port: int
    pid: int
    workers: int | None


async def seed(target: Target, cast: Cast, count: int) -> list[str]:
    """`count` one-line prescriptions through the server's FHIR door; their ids."""
    sent, ids, failures = prescriptions(cast, count), list[str](), Counter[str]()
    rng, todo = random.Random(count), iter(range(count))
    path = f"{target.door.base}/MedicationRequest"

    async def issue(session: Session) -> None:
        for _ in todo:
            status, answer = await session.post(path, *rng.choice(sent))
            if status == 201:
                ids.append(created_id(answer))
            else:
                failures[f"{status} {answer[:300]!r}"] += 1

    sessions = await open_sessions(target.port, SEEDING_SESSIONS)
    async with asyncio.timeout(max(120.0, count / 2)):
        await asyncio.gather(*(issue(session) for session in sessions))
    await close_all(sessions)
    if failures:
        raise BenchError(f"seeding {target.door.name} failed: {dict(failures)}")
    return ids


async def prime(target: Target, opts: argparse.Namespace, cast: Cast, ids: Sequence[str]) -> None:
    """Each call at the most clients, unmeasured: HAPI's JVM compiles its hot paths."""
    clients = max(opts.clients)
    for call in CALLS:
        sessions = await open_sessions(target.port, clients)
        command = command_for(call, target.door, ids, cast, clients)
        tally = await closed_loops(sessions, command, Window.after(0.0, opts.prime))
        await close_all(sessions)
        say(f"{target.door.name} {call}: primed, errors {dict(tally.errors)}")


async def measure(
    target: Target, opts: argparse.Namespace, cast: Cast, ids: Sequence[str]
) -> list[Run]:
    runs = []
    for clients in opts.clients:
        for call in CALLS:
            sessions = await open_sessions(target.port, clients)
            window = Window.after(opts.warmup, opts.seconds)
            observer = asyncio.create_task(observe(window, [target.pid], None))
            command = command_for(call, target.door, ids, cast, clients)
            tally = await closed_loops(sessions, command, window)
            run = Run(
                f"{target.door.name} {call}",
                "postgres",
                target.workers,
                clients,
                window,
                tally,
                await observer,
            )
            await close_all(sessions)
            say(
                f"{run.target} c{clients}: {run.rate:,.0f}/s, p99 {run.latency_ms(0.99):.1f} ms, "
                f"server {run.observation.cores['server']:.2f} cores, errors {dict(tally.errors)}"
            )
            runs.append(run)
    return runs


@contextlib.asynccontextmanager
async def serving(
    name: str, opts: argparse.Namespace, war: Path | None, url: str, tmp: Path
) -> AsyncIterator[Target]:
    """ordo (`ordo serve` on a scratch schema) or HAPI (on a database of its own)."""
    if name == "hapi":
        assert war is not None
        with hapi.running_hapi(war, url, tmp / "hapi.log", opts.heap) as (port, pid):
            yield Target(HAPI, port, pid, None)
        return
    schema = Scratch(url).create()
    spec = ServerSpec("postgres", opts.workers)
    env = server_env(spec, tmp / "data", with_schema(url, schema))
    async with harness.running(env, tmp / "ordo.log", workers=opts.workers) as server:
        yield Target(ORDO, server.port, server.pid, opts.workers)


async def bench(opts: argparse.Namespace, war: Path | None, url: str) -> list[Run]:
    cast, runs = make_cast(), []
    for name in opts.servers.split(","):
        with tempfile.TemporaryDirectory(prefix="ordo-bench-hapi-") as tmp:
            async with serving(name, opts, war, url, Path(tmp)) as target:
                say(f"{target.door.name} on :{target.port}: seeding {opts.prescriptions}")
                ids = await seed(target, cast, opts.prescriptions)
                if opts.prime:
                    await prime(target, opts, cast, ids)
                runs += await measure(target, opts, cast, ids)
    return runs


def report(runs: Sequence[Run], opts: argparse.Namespace, facts: dict[str, str]) -> None:
    print(benchmarks_md.markdown_table(*comparison_rows(runs)))
    if opts.write:
        command = "scripts/bench_hapi " + shlex.join(opts.argv)
        benchmarks_md.update_benchmarks(opts.write, opts.section, block(command, facts, runs))
        say(f"wrote the `{opts.section}` block of {opts.write}")


def java_version() -> str:
    done = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    return (done.stderr.splitlines() or ["?"])[0]


def main(argv: Sequence[str]) -> int:
    opts = parser().parse_args(argv)
    opts.argv = list(argv)
    try:
        war = None
        if "hapi" in opts.servers.split(","):
            war = opts.war or hapi.build(hapi.checkout(opts.source, opts.tag, hapi.WORK / "src"))
        with private_postgres() as url:
            facts = machine_facts(url) | {
                "HAPI": f"hapi-fhir-jpaserver-starter {opts.tag}, {java_version()}, "
                f"-Xmx{opts.heap}",
                "ordo serve": f"--workers {opts.workers}",
            }
            runs = uvloop.run(bench(opts, war, url))
            report(runs, opts, facts)
        return 0
    except (BenchError, harness.ServerNotReadyError) as error:
        console.print(f"[red]bench_hapi: {error}[/red]")
        return 1
