"""scripts/bench_catalogue: the medicines catalogue (BDPM) import and lookups (not a test).

  scripts/bench_catalogue [--files ../shared/data/bdpm] [--runs 3] [--lookups 1000000]
                          [--database-url URL] [--write BENCHMARKS.md]

Imports the full official files with `ordo catalogue import --force` as its own process, on
SQLite (a scratch ORDO_DATA_DIR) and on PostgreSQL (a scratch schema; ORDO_TEST_DATABASE_URL
from `scripts/services env`, or --database-url), --runs times each; reports the wall time and
the importing process's peak RSS. Then loads the snapshot in force into the in-memory index
(what a server does on a new import) and measures lookups per second from it, half of them
for codes the catalogue does not know.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from adapters.catalogue import load_snapshot, open_catalogue_store
from adapters.catalogue.index import CatalogueSnapshot
from adapters.config import Settings, with_schema
from domain.identifiers import Cip13
from tools import benchmarks_md
from tools.harness import ordo_argv

ROOT = Path(__file__).resolve().parent.parent
console = Console(stderr=True)
SCHEMA = "bench_catalogue"
SECRET = f"bench-{uuid.uuid4().hex}"


def timed_import(env: dict[str, str], files: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one `ordo catalogue import --force` process."""
    return timed(env, ["import", str(files), "--force", "--date", "2022-06-02"])


def timed(env: dict[str, str], arguments: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one `ordo catalogue …` process.

    The peak is the child's own VmHWM, polled: wait4's ru_maxrss would not do, as Linux
    carries the forking parent's high-water mark over `exec` into the child's."""
    started = time.perf_counter()
    process = subprocess.Popen(
        ordo_argv("catalogue", *arguments),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peak_kib = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        peak_kib = max(peak_kib, _high_water_kib(status))
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        stderr = process.stderr.read().decode() if process.stderr else ""
        raise SystemExit(f"ordo catalogue failed ({process.returncode}): {stderr}")
    return elapsed, peak_kib / 1024


def _high_water_kib(status: Path) -> int:
    try:
        text = status.read_text()
    except OSError:  # it has just exited
        return 0
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0  # a zombie: its memory is gone


def backend_env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {**os.environ, "ORDO_DATA_DIR": str(data_dir), "ORDO_AUTH_SECRET": SECRET}
    env.pop("ORDO_DATABASE_URL", None)
    if database_url:
        env["ORDO_DATABASE_URL"] = database_url
    return env


def scratch_schema(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{SCHEMA}"')
    return with_schema(url, SCHEMA)


def drop_schema(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')


async def loaded(env: dict[str, str]) -> tuple[CatalogueSnapshot, float]:
    """The snapshot in force read into the in-memory index, and how long that took."""
    store = await open_catalogue_store(Settings.from_env(env))
    try:
        started = time.perf_counter()
        snapshot = await load_snapshot(store)
        return snapshot, time.perf_counter() - started
    finally:
        await store.close()


def lookups_per_second(snapshot: CatalogueSnapshot, count: int) -> float:
    known = [facts.cip13 for facts in snapshot]
    rng = random.Random(17)
    unknown = [Cip13.from_body(f"3400{rng.randrange(10**8):08d}").value for _ in range(1000)]
    codes = [rng.choice(known) if i % 2 else rng.choice(unknown) for i in range(count)]
    facts = snapshot.facts
    started = time.perf_counter()
    found = sum(1 for code in codes if facts(code) is not None)
    elapsed = time.perf_counter() - started
    assert found >= count // 2
    return count / elapsed


def catalogue_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/bench_catalogue",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--files", type=Path, default=ROOT.parent / "shared/data/bdpm")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lookups", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("ORDO_TEST_DATABASE_URL"))
    parser.add_argument("--write", type=Path, metavar="FILE", help="record in FILE's block")
    return parser


HEAD = (
    "store",
    "packs",
    "import, median of {runs} (min–max)",
    "peak RSS of the import",
    "index load (server refresh)",
    "lookups from the index",
)


def measure(name: str, env: dict[str, str], args: argparse.Namespace) -> tuple[list[str], float]:
    """One store's row, and the peak RSS of `ordo catalogue status` on it (importing nothing)."""
    runs = [timed_import(env, args.files) for _ in range(args.runs)]
    at_rest = timed(env, ["status"])[1]
    snapshot, load_seconds = asyncio.run(loaded(env))
    rate = lookups_per_second(snapshot, args.lookups)
    seconds = [s for s, _ in runs]
    row = [
        name,
        f"{len(snapshot):,}",
        f"{statistics.median(seconds):.2f} s ({min(seconds):.2f}–{max(seconds):.2f})",
        f"{max(rss for _, rss in runs):.0f} MiB",
        f"{load_seconds * 1000:.0f} ms",
        f"{rate / 1e6:.1f} M/s",
    ]
    console.print(f"{name}: done")
    return row, at_rest


def measure_all(args: argparse.Namespace) -> tuple[list[list[str]], float]:
    """SQLite's row, and PostgreSQL's when there is one; the largest RSS at rest."""
    rows: list[list[str]] = []
    at_rest = 0.0
    with tempfile.TemporaryDirectory(prefix="ordo-bench-catalogue-") as scratch:
        backends = [("SQLite", backend_env(Path(scratch) / "sqlite", None))]
        if args.database_url:
            url = scratch_schema(args.database_url)
            backends.append(("PostgreSQL", backend_env(Path(scratch) / "pg", url)))
        else:
            console.print("no PostgreSQL (ORDO_TEST_DATABASE_URL or --database-url): SQLite only")
        try:
            for name, env in backends:
                row, rest = measure(name, env, args)
                rows.append(row)
                at_rest = max(at_rest, rest)
        finally:
            if args.database_url:
                drop_schema(args.database_url)
    return rows, at_rest


def main() -> None:
    args = catalogue_parser().parse_args()
    speed_before = benchmarks_md.python_speed()
    rows, at_rest = measure_all(args)
    head = [column.format(runs=args.runs) for column in HEAD]
    table = Table(title="catalogue: import of the full BDPM files, lookups")
    for column in head:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    if args.write:
        speed = f"{speed_before} → {benchmarks_md.python_speed()}"
        command = "scripts/bench_catalogue" + (" --write BENCHMARKS.md" if args.write else "")
        text = (
            f"## Catalogue (issue 17): import and lookups ({date.today().isoformat()})\n\n"
            f"`{command}` (files: the official snapshot of 2 June 2022, 5 files, 12 MB, "
            f"103,539 lines; each import is `ordo catalogue import --force`, its own process; "
            f"peak RSS of `ordo catalogue status`, the same CLI importing nothing: "
            f"{at_rest:.0f} MiB; lookups: {args.lookups:,} from one thread, half unknown "
            f"codes; Python speed "
            f"`sum(range(10**6))` {speed}).\n\n" + benchmarks_md.markdown_table(head, rows)
        )
        benchmarks_md.update_benchmarks(args.write, "catalogue", text)


if __name__ == "__main__":
    main()
