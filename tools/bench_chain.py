"""What the hash chain costs on PostgreSQL (`adapters.chain`): `ordo verify`'s recomputation of
it against reading the same rows, chaining an existing log once at upgrade, and the whole
`ordo verify` (the chain, then every read model against a rebuild) against `ordo projections
rebuild` on a busy day's log.

1. A log of --events events (each state --state-bytes long) is written as a release without the
   chain left it; the store's start chains it (`ordo_chain_log`, in the DDL's transaction). The
   baseline reads the log's pages as `ordo verify` does, without hashing; then the chain is
   checked over the same pages.
2. A busy day's log of about --busy-events events (`tools.busy_day`: prescriptions sent, read,
   dispensed) is appended, `ordo projections rebuild` folds the read models from it (the
   baseline: what comparing with a rebuild has to do at least), then `ordo verify` runs whole.

Needs ORDO_TEST_DATABASE_URL; works in schemas of its own, dropped afterwards.

    scripts/bench_chain --events 1000000 --busy-events 1000000 --write BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from adapters.chain import CHAIN_MIGRATION
from adapters.config import with_schema
from adapters.store.postgres import PostgresEventStore
from adapters.verify import PostgresLogRows, verify_chain
from tools import harness
from tools.bench.servers import Scratch, machine_facts
from tools.bench_readside.log import build_log, ordo_env
from tools.benchmarks_md import markdown_table, update_benchmarks

SECTION = "chain"
AIM = 100_000  # events/s, issue 26's aim for `ordo verify` on PostgreSQL


@dataclass(frozen=True)
class Step:
    """One measured step: how many events it went through, in how long."""

    name: str
    events: int
    seconds: float
    baseline: Step | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def cells(self) -> list[str]:
        ratio = f"{self.rate / self.baseline.rate:.2f}" if self.baseline else "—"
        return [self.name, f"{self.events:,}", f"{self.seconds:.1f}", f"{self.rate:,.0f}", ratio]


async def unchained_log(url: str, schema: str, events: int, size: int) -> None:
    """The store's tables, then `events` rows written as a release without the chain did."""
    store = PostgresEventStore(with_schema(url, schema), pool_size=2)
    await store.start()
    await store.close()
    table = f'"{schema}".ordo_events'
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"ALTER TABLE {table} DROP COLUMN hash")
        await conn.execute(
            f'DELETE FROM "{schema}".ordo_migrations WHERE name = $1', CHAIN_MIGRATION
        )
        await conn.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "SELECT 'P' || (n / 4), n % 4 + 1, 'DispensationRecorded.v2', "
            "convert_to(rpad('{\"n\":' || n || '}', $2, ' '), 'UTF8') "
            "FROM generate_series(0, $1 - 1) AS n",
            events,
            size,
        )
    finally:
        await conn.close()


async def chain_steps(url: str, schema: str, events: int, size: int) -> list[Step]:
    """Chaining at start, reading the pages alone, checking the chain over them."""
    await unchained_log(url, schema, events, size)
    store = PostgresEventStore(with_schema(url, schema), pool_size=2)
    began = time.perf_counter()
    await store.start()  # chains the log once
    chaining = Step("chain an unchained log at start (upgrade)", events, _since(began))
    try:
        rows = PostgresLogRows(store.pool, schema)
        began = time.perf_counter()
        read = sum([len(batch) async for batch in rows.batches()])
        reading = Step("read the log's pages, no hashing (baseline)", read, _since(began))
        began = time.perf_counter()
        broken, check = await verify_chain(rows)
        if broken is not None:
            raise SystemExit(f"the chain does not hold: {broken}")
        checking = Step(
            "check the chain (`ordo verify`'s first part)", check.checked, _since(began), reading
        )
    finally:
        await store.close()
    return [reading, checking, chaining]


def verify_steps(url: str, schema: str, events: int) -> list[Step]:
    """`ordo projections rebuild` then `ordo verify`, both whole processes, on a busy day."""
    scoped = with_schema(url, schema)
    with tempfile.TemporaryDirectory(prefix="ordo-bench-chain-") as work:
        built = build_log(scoped, Path(work), events)
        env = ordo_env(scoped, Path(work))
        rebuild = Step(
            "`ordo projections rebuild` (baseline)",
            built.events,
            harness.timed_ordo(env, "projections", "rebuild"),
        )
        verify = harness.timed_ordo(env, "verify")
        whole = Step("`ordo verify`, whole", built.events, verify, rebuild)
    return [rebuild, whole]


def _since(began: float) -> float:
    return time.perf_counter() - began


def report(args: argparse.Namespace, url: str, steps: list[Step]) -> str:
    table = markdown_table(
        ["step", "events", "s", "events/s", "vs baseline"], [step.cells() for step in steps]
    )
    facts = "; ".join(f"{key}: {value}" for key, value in machine_facts(url).items())
    command = (
        f"scripts/bench_chain --events {args.events} --state-bytes {args.state_bytes} "
        f"--busy-events {args.busy_events}"
    )
    aims = "\n".join(
        f"- {step.name}: {step.rate:,.0f} events/s, "
        + ("**met**" if step.rate >= AIM else "**not met**")
        + f" (aim ≥ {AIM:,}/s)"
        for step in steps
        if "ordo verify" in step.name
    )
    return (
        f"### `{SECTION}`: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
        f"Command: `{command}`\n\nMachine: {facts}.\n\n{table}\n\n"
        f"Issue 26's aim, `ordo verify` ≥ {AIM:,} events/s on PostgreSQL:\n\n{aims}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="synthetic log")
    parser.add_argument("--state-bytes", type=int, default=400, help="each synthetic state")
    parser.add_argument("--busy-events", type=int, default=1_000_000, help="busy day's log")
    parser.add_argument("--write", type=Path, help=f"update this BENCHMARKS.md's {SECTION} block")
    args = parser.parse_args()
    url = os.environ["ORDO_TEST_DATABASE_URL"]
    scratch = Scratch(url)  # schemas of its own, dropped at the end
    try:
        steps = asyncio.run(chain_steps(url, scratch.create(), args.events, args.state_bytes))
        if args.busy_events:
            steps += verify_steps(url, scratch.create(), args.busy_events)
    finally:
        scratch.drop_all()
    text = report(args, url, steps)
    print(text)
    if args.write:
        update_benchmarks(args.write, SECTION, text)


if __name__ == "__main__":
    main()
