# scripts/bench_access_log: what the access log costs reads (issue 12; not a test).
#
#   scripts/bench_access_log [--backends sqlite,postgres] [--clients 32] [--seconds 10]
#                            [--rounds 2] [--write BENCHMARKS.md]
#
# For each backend, `ordo serve` (one process, as shipped) with the access log on, and the
# same with ORDO_ACCESS_LOG=false, in alternating rounds within one run (off, on, off, on…) so
# that the shared machine's drift hits both alike. Each server gets 200 prescriptions issued
# through the API, then N closed-loop clients (pharmacies) GET /v1/prescriptions/{id} on random
# ones: reads/s and latency percentiles. With the log on, the entries found in its table after
# the server stopped are counted against the reads it answered (all must be there).
# PostgreSQL: ORDO_TEST_DATABASE_URL (`scripts/services env`), a scratch schema per server.


from __future__ import annotations

import argparse
import asyncio
import os
import random
import shlex
import statistics
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from rich.console import Console
from rich.table import Table

from adapters.access.store import TABLE
from adapters.auth import sign_token
from adapters.config import schema_of, with_schema
from tools import benchmarks_md, cast, harness
from tools.bench.load import HttpConnection, Window, run_loops, sleep_until
from tools.harness import HOST

ROOT = Path(__file__).resolve().parent.parent
console = Console(stderr=True)
SECRET = f"bench-{uuid.uuid4().hex}"
PRESCRIPTIONS = 200
WARMUP = 2.0
AIM = 0.15  # the log may cost at most 15 % of reads/s


@dataclass(frozen=True)
class Run:
    backend: str
    logged: bool
    round: int
    reads_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    answered: int  # every 200 the server gave, warm-up included
    cpu_ms_per_read: float  # the server process's CPU (all its threads) over the window
    entries: int | None  # rows in the access log table after the server stopped


class Reader:
    """One pharmacy's keep-alive connection, GETting prescriptions."""

    def __init__(self, port: int, token: str, ids: Sequence[str], seed: int) -> None:
        self._port, self._token, self._ids = port, token, ids
        self._rng = random.Random(seed)
        self._conn: object | None = None
        self.answered = 0

    async def read(self) -> str | None:
        if self._conn is None or not self._conn.is_open:  # type: ignore[attr-defined]
            loop = asyncio.get_running_loop()
            _, self._conn = await loop.create_connection(HttpConnection, HOST, self._port)
        number = self._rng.choice(self._ids)
        request = (
            f"GET /v1/prescriptions/{number} HTTP/1.1\r\nHost: {HOST}:{self._port}\r\n"
            f"Authorization: Bearer {self._token}\r\n\r\n"
        ).encode()
        status, _ = await self._conn.exchange(request)  # type: ignore[attr-defined]
        if status == 200:
            self.answered += 1
            return None
        return str(status)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # type: ignore[attr-defined]


def tokens(count: int) -> list[str]:
    return [
        sign_token(
            SECRET,
            role="pharmacist",
            subject=f"pharmacy-{n}",
            ttl_seconds=3600,
            rpps=cast.pharmacist(n).value,
            finess=cast.pharmacy(n).value,
        )
        for n in range(count)
    ]


def issue_prescriptions(port: int) -> list[str]:
    prescriber = sign_token(SECRET, role="prescriber", subject="dr", rpps=cast.PRESCRIBER.value)
    ids = []
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=30) as client:
        for n in range(PRESCRIPTIONS):
            body = {
                "patient": {"ins": cast.patient(n).value},
                "execution_view_consent": True,
                "lines": [
                    {
                        "product": {
                            "system": "CIP13",
                            "code": cast.PARACETAMOL.value,
                            "label": "Para",
                        },
                        "quantity": 3,
                        "dosage": "1 comprimé 3 fois par jour",
                        "duration_days": 8,
                    }
                ],
            }
            response = client.post(
                "/v1/prescriptions", json=body, headers={"Authorization": f"Bearer {prescriber}"}
            )
            response.raise_for_status()
            ids.append(response.json()["prescription_id"])
    return ids


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all threads (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_entries(backend: str, data_dir: Path, database_url: str | None) -> int:
    if database_url is None:
        import sqlite3  # noqa: PLC0415

        with sqlite3.connect(data_dir / "access-log.sqlite3") as conn:
            return int(conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0])
    schema = schema_of(database_url)
    with psycopg.connect(database_url.partition("?")[0]) as conn:
        row = conn.execute(f'SELECT count(*) FROM "{schema}".{TABLE}').fetchone()
        assert row is not None and backend == "postgres"
        return int(row[0])


def scratch_database(backend: str) -> str | None:
    if backend == "sqlite":
        return None
    url = os.environ.get("ORDO_TEST_DATABASE_URL")
    if not url:
        sys.exit('PostgreSQL: set ORDO_TEST_DATABASE_URL (eval "$(scripts/services env)")')
    schema = f"bench_access_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return with_schema(url, schema)


def drop_database(database_url: str | None) -> None:
    if database_url is None:
        return
    schema = schema_of(database_url)
    with psycopg.connect(database_url.partition("?")[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


async def measure(backend: str, logged: bool, round_: int, opts: argparse.Namespace) -> Run:
    database_url = scratch_database(backend)
    with tempfile.TemporaryDirectory(prefix="ordo-bench-access-") as tmp:
        data_dir = Path(tmp)
        env = {
            "ORDO_DATA_DIR": str(data_dir),
            "ORDO_AUTH_SECRET": SECRET,
            "ORDO_ACCESS_LOG": "true" if logged else "false",
            "ORDO_DATABASE_URL": database_url or "",
        }
        # SIGTERM at the end: graceful, the access log writes what it holds.
        serving = harness.running(
            {**os.environ, **env}, data_dir / "server.log", stdout_to_log=True
        )
        async with serving as server:
            port, pid = server.port, server.pid
            ids = await asyncio.to_thread(issue_prescriptions, port)
            readers = [
                Reader(port, token, ids, seed) for seed, token in enumerate(tokens(opts.clients))
            ]
            window = Window.after(WARMUP, opts.seconds)
            loops = asyncio.create_task(run_loops(readers, Reader.read, window))
            await sleep_until(window.start)
            cpu_before = cpu_seconds(pid)
            await sleep_until(window.end)
            cpu = cpu_seconds(pid) - cpu_before
            tally = await loops
            for reader in readers:
                reader.close()
        answered = sum(reader.answered for reader in readers)
        entries = count_entries(backend, data_dir, database_url) if logged else None
    drop_database(database_url)
    latencies = sorted(tally.latencies)
    return Run(
        backend=backend,
        logged=logged,
        round=round_,
        reads_per_s=len(latencies) / window.seconds,
        p50_ms=1000 * latencies[len(latencies) // 2],
        p99_ms=1000 * latencies[int(len(latencies) * 0.99)],
        errors=sum(tally.errors.values()),
        answered=answered,
        cpu_ms_per_read=1000 * cpu / max(1, len(latencies)),
        entries=entries,
    )


def report(runs: list[Run], opts: argparse.Namespace, command: str) -> str:
    table = Table(title=f"GET /v1/prescriptions/{{id}}, {opts.clients} clients, one process")
    head = ["backend", "access log", "round", "reads/s", "p50 ms", "p99 ms", "CPU ms/read"]
    head += ["errors", "entries/reads"]
    body = []
    for run in runs:
        stored = "—" if run.entries is None else f"{run.entries:,}/{run.answered:,}"
        body.append(
            [
                run.backend,
                "on" if run.logged else "off",
                str(run.round),
                f"{run.reads_per_s:,.0f}",
                f"{run.p50_ms:.1f}",
                f"{run.p99_ms:.1f}",
                f"{run.cpu_ms_per_read:.2f}",
                str(run.errors),
                stored,
            ]
        )
    summary_head = ["backend", "reads/s off", "reads/s on", "cost", "p99 off", "p99 on", "aim"]
    summary = []
    for backend in opts.backends.split(","):
        off = [r for r in runs if r.backend == backend and not r.logged]
        on = [r for r in runs if r.backend == backend and r.logged]
        rate_off = statistics.median(r.reads_per_s for r in off)
        rate_on = statistics.median(r.reads_per_s for r in on)
        cost = 1 - rate_on / rate_off
        summary.append(
            [
                backend,
                f"{rate_off:,.0f}",
                f"{rate_on:,.0f}",
                f"{cost:+.1%}",
                f"{statistics.median(r.p99_ms for r in off):.1f} ms",
                f"{statistics.median(r.p99_ms for r in on):.1f} ms",
                "met" if cost < AIM else "not met",
            ]
        )
    for name in head:
        table.add_column(name, justify="right")
    for row in body:
        table.add_row(*row)
    Console().print(table)
    totals = Table(title="medians over rounds; cost = 1 - on/off")
    for name in summary_head:
        totals.add_column(name, justify="right")
    for row in summary:
        totals.add_row(*row)
    Console().print(totals)
    return (
        f"### `access-log`: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
        f"`{command}` (machine shared with other jobs; Python speed "
        f"{benchmarks_md.python_speed()} for `sum(range(10**6))`)\n\n"
        + benchmarks_md.markdown_table(summary_head, summary)
        + "\n\n"
        + benchmarks_md.markdown_table(head, body)
        + "\n"
    )


async def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench_access_log")
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write", type=Path)
    opts = parser.parse_args(argv)
    runs = []
    for backend in opts.backends.split(","):
        for round_ in range(1, opts.rounds + 1):
            for logged in (False, True):
                console.log(f"{backend}, access log {'on' if logged else 'off'}, round {round_}")
                runs.append(await measure(backend, logged, round_, opts))
    text = report(runs, opts, shlex.join(["scripts/bench_access_log", *argv]))
    if opts.write:
        benchmarks_md.update_benchmarks(opts.write, "access-log", text)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
