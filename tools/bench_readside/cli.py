"""`scripts/bench_readside`: run the measures asked for, print the table, write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tools import benchmarks_md
from tools.bench.options import positive_floats
from tools.bench.progress import say
from tools.bench.servers import machine_facts
from tools.bench_readside.lag import lag_rows, lag_run
from tools.bench_readside.log import Scratch
from tools.bench_readside.projection import measure_projection, measure_rebuild
from tools.bench_readside.relay import measure_relay, measure_workers
from tools.bench_readside.report import Row, block, print_table

DESCRIPTION = "read-side and Kafka benchmarks on PostgreSQL (not tests)"


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
    if "kafka" in only or "kafka-lag" in only:
        workers = f"{args.lag_workers} worker{'s' if args.lag_workers > 1 else ''}"
        lag_runs.append(
            await lag_run(
                args,
                scratch,
                work,
                label=f"serve + relay + {workers}",
                rate=args.rates[-1],
                kafka=True,
            )
        )
    return rows + lag_rows(lag_runs)


def readside_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/bench_readside", description=DESCRIPTION)
    parser.add_argument(
        "--only",
        default="project,rebuild,lag,kafka",
        help="of project, rebuild, lag (in-process projection), kafka (relay, workers and the "
        "lag through Kafka), kafka-lag (the lag through Kafka alone)",
    )
    parser.add_argument(
        "--lag-workers", type=int, default=1, help="Kafka workers beside the relay in the lag run"
    )
    parser.add_argument("--section", default="readside", help="the block of --write to rewrite")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rebuild-events", type=int, default=1_000_000)
    parser.add_argument("--rates", type=positive_floats, default=(1000.0,))
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database-url", default=os.environ.get("ORDO_TEST_DATABASE_URL"))
    parser.add_argument("--kafka", default=os.environ.get("ORDO_TEST_KAFKA_BOOTSTRAP"))
    parser.add_argument("--write", type=Path, metavar="FILE")
    return parser


def main(argv: list[str]) -> int:
    parser = readside_parser()
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error('no PostgreSQL: eval "$(scripts/services env)" or --database-url')
    if "kafka" in args.only and not args.kafka:  # kafka-lag too
        parser.error("no Kafka: ORDO_TEST_KAFKA_BOOTSTRAP or --kafka")
    if args.write:  # something below may change the working directory
        args.write = args.write.resolve()
    command = "scripts/bench_readside " + shlex.join(argv)
    facts = machine_facts(args.database_url)
    scratch = Scratch(args.database_url, bootstrap=args.kafka)
    try:
        with workdir() as work:
            rows = asyncio.run(run(args, scratch, work))
    finally:
        scratch.cleanup()
    print_table(rows)
    if args.write:
        benchmarks_md.update_benchmarks(
            args.write, args.section, block(command, facts, rows, args.section)
        )
        say(f"wrote the {args.section} block of {args.write}")
    return 0
