"""scripts/bench_reconciliation: Assurance Maladie reconciliation on PostgreSQL (not a test).

  scripts/bench_reconciliation [--prescriptions 1000000] [--invoices 1000000]
                               [--via cli,api,sql] [--reuse] [--workdir DIR]
                               [--baseline COMMIT] [--write BENCHMARKS.md [--section NAME]]

Builds (or, with --reuse, finds) a log of N prescriptions in the scratch schema
bench_rec_<N> and an invoice file with the default outcome mix (scripts/invoices), then
reconciles the file with `ordo reconcile` and through the API (`ordo serve`, POST the file
streamed, poll the batch until done), each time with no invoice reconciled before. Prints
invoices/s and the peak RSS of the process that did the work, and checks the counts per
outcome against what the generator expects. *sql* computes the same outcomes with set-based
SQL alone (tools/bench_reconciliation_sql.py), the reference ordo's rate is compared with. With
--baseline COMMIT, the same runs again with
that commit's code (extracted under the workdir, same interpreter and data), so the rows
compare within one run. PostgreSQL: ORDO_TEST_DATABASE_URL (see `scripts/services env`) or
--database-url.
ruff: noqa: S608 - SQL names our own scratch schema; values are bound parameters
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

from adapters.auth import sign_token
from adapters.config import with_schema
from tools import bench_reconciliation_sql, benchmarks_md, harness

ROOT = Path(__file__).resolve().parent.parent
console = Console(stderr=True)
SECRET = f"bench-{uuid.uuid4().hex}"
GOAL_RATE, GOAL_RSS_MIB, GOAL_OF_SQL = 50_000, 300, 0.5
WORKDIR = Path(tempfile.gettempdir()) / "ordo-bench-reconciliation"


@dataclass
class Run:
    via: str
    invoices: int
    staging_s: float
    reconcile_s: float
    total_s: float
    peak_rss_mib: float
    counts: dict[str, int]

    @property
    def rate(self) -> float:
        return self.invoices / self.reconcile_s if self.reconcile_s else 0.0

    @property
    def overall_rate(self) -> float:
        return self.invoices / self.total_s if self.total_s else 0.0


def prepare(args: argparse.Namespace, url: str) -> tuple[str, Path, dict[str, int]]:
    """The scratch schema with its log and views, and the invoice file with its expectations."""
    schema = f"bench_rec_{args.prescriptions}"
    invoices = args.workdir / f"invoices-{args.prescriptions}-{args.invoices}.ndjson"
    expected = invoices.with_suffix(".json")
    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.ordo_view_prescriptions",)
        ).fetchone()
        counted = (
            conn.execute(f'SELECT count(*) FROM "{schema}".ordo_view_prescriptions').fetchone()
            if have and have[0]
            else None
        )
        count = int(counted[0]) if counted else 0
        ready = args.reuse and count >= args.prescriptions
        if ready and invoices.exists() and expected.exists():
            console.log(f"reusing {schema} ({count:,} prescriptions) and {invoices}")
            return schema, invoices, json.loads(expected.read_text())
        if not ready:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{schema}"')
    args.workdir.mkdir(parents=True, exist_ok=True)
    command = [
        str(ROOT / "scripts" / "invoices"),
        "--out",
        str(invoices),
        "--lines",
        str(args.invoices),
        "--expect",
        str(expected),
    ]
    if not ready:
        command += ["--generate-log", str(args.prescriptions)]
    console.log(f"generating: {' '.join(command[1:])}")
    env = {**os.environ, "ORDO_DATABASE_URL": with_schema(url, schema)}
    env["ORDO_DATA_DIR"] = str(args.workdir / "data")
    subprocess.run(command, env=env, check=True, cwd=ROOT)
    return schema, invoices, json.loads(expected.read_text())


def forget_reconciliations(url: str, schema: str) -> None:
    """Every run starts with no invoice number reconciled and no batch."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in (
            "ordo_reconciled_invoices",
            "ordo_reconciliation_items",
            "ordo_reconciliation_chunks",
            "ordo_reconciliation_batches",
            "ordo_reconciliation_commits",
        ):
            found = conn.execute("SELECT to_regclass(%s)", (f"{schema}.{table}",)).fetchone()
            if found and found[0]:
                conn.execute(f'TRUNCATE "{schema}".{table}')


def batch_times(url: str, schema: str) -> tuple[float, float, dict[str, int]]:
    """The last batch's staging time (created → started), reconciling time (started →
    finished) and counts, as stored."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM started_at - created_at), "
            "extract(epoch FROM finished_at - started_at), counts "
            f'FROM "{schema}".ordo_reconciliation_batches ORDER BY created_at DESC LIMIT 1'
        ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1]), dict(row[2])


def environment(url: str, schema: str, workdir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ORDO_DATABASE_URL": with_schema(url, schema),
        "ORDO_DATA_DIR": str(workdir / "data"),
        "ORDO_AUTH_SECRET": SECRET,
    }


def baseline_tree(commit: str, workdir: Path) -> Path:
    """That commit's code, extracted once under the workdir (never a second git worktree)."""
    full = subprocess.run(
        ["git", "rev-parse", commit], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    tree = workdir / f"baseline-{full[:12]}"
    if not (tree / "adapters").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", full], cwd=ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def via_cli(
    url: str, schema: str, invoices: Path, workdir: Path, count: int, *, code: Path = ROOT
) -> Run:
    forget_reconciliations(url, schema)
    started = time.perf_counter()
    process = subprocess.Popen(
        harness.ordo_argv("reconcile", str(invoices)),
        cwd=code,
        env=environment(url, schema, workdir),
        stdout=subprocess.PIPE,
        text=True,
    )
    peak = PeakRss(process.pid)
    output, _ = process.communicate()
    total = time.perf_counter() - started
    peak.stop()
    if process.returncode:
        raise SystemExit(f"ordo reconcile failed:\n{output}")
    staging, seconds, counts = batch_times(url, schema)
    return Run("cli", count, staging, seconds, total, peak.mib, counts)


def via_api(
    url: str, schema: str, invoices: Path, workdir: Path, count: int, *, code: Path = ROOT
) -> Run:
    forget_reconciliations(url, schema)
    env = environment(url, schema, workdir)
    with harness.serving(env, workdir / "server.log", cwd=code, grace=30.0) as server:
        base = server.base_url
        peak = PeakRss(server.pid)
        token = sign_token(SECRET, role="insurer", subject="bench", ttl_seconds=3600)
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/x-ndjson"}
        started = time.perf_counter()
        with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
            answer = client.post("/v1/reconciliation/batches", content=_file_pieces(invoices))
            uploaded = time.perf_counter()
            if answer.status_code != 202:
                raise SystemExit(f"upload refused: {answer.status_code} {answer.text}")
            batch_id = answer.json()["batch_id"]
            while True:
                batch = client.get(f"/v1/reconciliation/batches/{batch_id}").json()
                if batch["status"] == "done":
                    break
                time.sleep(0.2)
            total = time.perf_counter() - started
            items = 0
            with client.stream("GET", f"/v1/reconciliation/batches/{batch_id}/items") as stream:
                for line in stream.iter_lines():
                    items += bool(line)
            assert items == count, (items, count)
        peak.stop()
        _, seconds, counts = batch_times(url, schema)
        return Run("api", count, uploaded - started, seconds, total, peak.mib, counts)


def via_sql(url: str, schema: str, invoices: Path, count: int) -> Run:
    """The set-based SQL reference: staging = parse and COPY, reconcile = the SQL alone."""
    forget_reconciliations(url, schema)
    with psycopg.connect(url) as conn:
        bench_reconciliation_sql.extract_states(conn, schema)
        conn.commit()
        staging = bench_reconciliation_sql.stage(conn, schema, invoices)
        conn.commit()
        seconds, counts = bench_reconciliation_sql.reconcile(conn, schema)
    return Run("sql", count, staging, seconds, staging + seconds, 0.0, counts)


def of_sql(runs: list[Run]) -> str:
    """Each run of ordo's current code as a share of the SQL reference's rate."""
    sql = next((run for run in runs if run.via == "sql"), None)
    ordo = [run for run in runs if run.via in ("cli", "api")]
    if sql is None or not ordo:
        return ""
    return "ordo / SQL (reconcile, end to end): " + "; ".join(
        f"{run.via} {run.rate / sql.rate:.2f}, {run.overall_rate / sql.overall_rate:.2f}"
        for run in ordo
    )


def _file_pieces(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while piece := handle.read(256 * 1024):
            yield piece


class PeakRss:
    """The peak resident set (VmHWM) of a process, sampled until it ends or stop()."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.kib = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stopping.is_set():
            try:
                status = Path(f"/proc/{self.pid}/status").read_text()
            except OSError:
                return
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.kib = max(self.kib, int(line.split()[1]))
            self._stopping.wait(0.1)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    @property
    def mib(self) -> float:
        return self.kib / 1024


COLUMNS = (
    "via",
    "invoices",
    "staging s",
    "reconcile s",
    "reconcile invoices/s",
    "end to end s",
    "end to end invoices/s",
    "peak RSS MiB",
    "counts as expected",
)


def title(prescriptions: int) -> str:
    return (
        f"reconciliation on PostgreSQL: log of {prescriptions:,} prescriptions "
        f"(goal ≥ {GOAL_RATE:,} invoices/s, < {GOAL_RSS_MIB} MiB)"
    )


def cells(run: Run, expected: dict[str, int]) -> list[str]:
    return [
        run.via,
        f"{run.invoices:,}",
        f"{run.staging_s:.1f}" if run.staging_s else "-",
        f"{run.reconcile_s:.1f}",
        f"{run.rate:,.0f}",
        f"{run.total_s:.1f}",
        f"{run.overall_rate:,.0f}",
        f"{run.peak_rss_mib:.0f}" if run.peak_rss_mib else "-",
        "yes" if _nonzero(run.counts) == _nonzero(expected) else f"no: {run.counts}",
    ]


def report(runs: list[Run], expected: dict[str, int], prescriptions: int) -> Table:
    table = Table(title=title(prescriptions))
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "via" else "right")
    for run in runs:
        table.add_row(*cells(run, expected))
    return table


METHOD = """\
The log holds N prescriptions issued and dispensed (some in two pharmacies, some with a
substitute) in a scratch schema; the invoice file comes from `scripts/invoices` with its
default share of each outcome, and its expected counts are checked against the batch's.
*cli*: `ordo reconcile FILE` (staging the file, then reconciling it chunk by chunk). *api*:
`ordo serve`, the file POSTed streamed (staging = the upload), the batch polled until done.
*reconcile s* is the batch's own time from its first chunk to done; *end to end* includes
staging. Peak RSS is VmHWM of the process that did the work, sampled every 100 ms. *sql*: the
same outcomes by set-based SQL alone (`tools/bench_reconciliation_sql.py`: its staging parses
and COPYs the file, its reconcile is one transaction of INSERT … SELECT writing the items,
without details, and the claims)."""


def block(
    command: str,
    runs: list[Run],
    expected: dict[str, int],
    prescriptions: int,
    speed: str,
    *,
    section: str = "reconciliation",
) -> str:
    current = [run for run in runs if "baseline" not in run.via and run.via != "sql"] or runs
    best = max(current, key=lambda run: run.rate)
    worst_rss = max(run.peak_rss_mib for run in current)
    met = best.rate >= GOAL_RATE and worst_rss < GOAL_RSS_MIB
    return "\n".join(
        [
            f"### `{section}`: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"Command: `{command}`",
            "",
            f"Machine: {os.cpu_count()} cores; Python sum(range(10**6)) before → after the "
            f"runs: {speed} (a slower figure after means the host throttled the CPU).",
            "",
            METHOD,
            "",
            f"{title(prescriptions)}:",
            "",
            benchmarks_md.markdown_table(list(COLUMNS), [cells(run, expected) for run in runs]),
            "",
            f"Goal: **{'met' if met else 'not met'}**: best {best.rate:,.0f} invoices/s, "
            f"peak RSS at most {worst_rss:.0f} MiB. {of_sql(runs)}",
        ]
    )


def _nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {outcome: n for outcome, n in counts.items() if n}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/bench_reconciliation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--prescriptions", type=int, default=1_000_000)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--via", default="cli,api", help="cli, api or both (comma-separated)")
    parser.add_argument("--reuse", action="store_true", help="keep an existing log and file")
    parser.add_argument("--workdir", type=Path, default=WORKDIR)
    parser.add_argument("--database-url", default=os.environ.get("ORDO_TEST_DATABASE_URL"))
    parser.add_argument("--write", type=Path, metavar="FILE", help="record in FILE's block")
    parser.add_argument("--section", default="reconciliation", help="the block's name")
    parser.add_argument("--baseline", metavar="COMMIT", help="also run that commit's code")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error('no PostgreSQL: eval "$(scripts/services env)" or --database-url')
    schema, invoices, expected = prepare(args, args.database_url)
    runs = []
    before = benchmarks_md.python_speed()
    codes = [("", ROOT)]
    if args.baseline:
        codes.insert(
            0, (f" (baseline {args.baseline})", baseline_tree(args.baseline, args.workdir))
        )
    for label, code in codes:
        for via in [v.strip() for v in args.via.split(",") if v.strip()]:
            console.log(f"reconciling {args.invoices:,} invoices through the {via}{label}")
            if via == "sql":
                if label:
                    continue  # the reference does not depend on ordo's code
                run = via_sql(args.database_url, schema, invoices, args.invoices)
            else:
                run = (via_cli if via == "cli" else via_api)(
                    args.database_url, schema, invoices, args.workdir, args.invoices, code=code
                )
            run.via += label
            console.log(f"{via}{label}: {run.rate:,.0f} invoices/s, {run.peak_rss_mib:.0f} MiB")
            runs.append(run)
    Console(width=160).print(report(runs, expected, args.prescriptions))
    console.print(of_sql(runs))
    if args.write and runs:
        command = shlex.join(["scripts/bench_reconciliation", *argv])
        speed = f"{before} → {benchmarks_md.python_speed()}"
        text = block(command, runs, expected, args.prescriptions, speed, section=args.section)
        benchmarks_md.update_benchmarks(args.write, args.section, text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
