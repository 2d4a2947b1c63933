"""`scripts/bench dispensing`: plan the servers, run each, print the table, write BENCHMARKS.md."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import uvloop

from tools import benchmarks_md, harness
from tools.bench.baseline import bench_baseline
from tools.bench.load import Run, make_cast, median_rounds
from tools.bench.options import Options, parse_options
from tools.bench.progress import BenchError, console, say
from tools.bench.report import block, print_report
from tools.bench.runs import bench_api
from tools.bench.servers import Scratch, ServerSpec, database, machine_facts
from tools.harness import ROOT

# --- main -----------------------------------------------------------------------------------------


def plan(opts: Options, baseline_source: Path | None = None) -> list[ServerSpec]:
    """Each backend with each number of workers (SQLite: 1), kind of line and catalogue (none,
    and `--catalogue`'s); then the same servers at `--rev`, checked out in `baseline_source`."""
    specs: list[ServerSpec] = []
    catalogues = (None, *([opts.catalogue] if opts.catalogue else []))
    for backend in opts.backends:
        workers = (1,) if backend == "sqlite" else opts.workers
        specs += [
            ServerSpec(backend, w, env=opts.env_items, lines=kind, catalogue=catalogue)
            for w in workers
            for kind in opts.lines
            for catalogue in catalogues
        ]
        if baseline_source is not None:
            specs += [
                ServerSpec(backend, w, env=opts.env_items, lines=kind, rev=opts.rev, catalogue=c)
                for w in workers
                for kind in opts.lines
                for c in catalogues
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
            results = [
                await bench_api(opts, cast, spec, scratch)
                for _ in range(opts.rounds)
                for spec in plan(opts, source)
            ]
        runs = median_rounds([run for result in results for run in result.runs])
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
