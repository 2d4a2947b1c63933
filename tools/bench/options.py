"""The options of `scripts/bench dispensing`, parsed."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

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
    healthz: bool = False
    fhir: bool = False
    open_rate: float | None = None
    py_spy: bool = False
    rev: str | None = None
    catalogue: Path | None = None
    rounds: int = 1

    @property
    def env_items(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted(self.env.items()))


def _ints(text: str) -> tuple[int, ...]:
    values = tuple(int(part) for part in text.split(",") if part.strip())
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def positive_floats(text: str) -> tuple[float, ...]:
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


def bench_parser() -> argparse.ArgumentParser:
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
        "--healthz",
        action="store_true",
        help="also GET /healthz in closed loops (the server's floor: the HTTP stack and its "
        "middleware, no store), with each read's rate over it",
    )
    run.add_argument(
        "--fhir",
        action="store_true",
        help="also the FHIR door against /v1, each pair in turn: dispensing (MedicationDispense), "
        "reading (MedicationRequest), prescribing 3 lines (a transaction Bundle); with ratios",
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
        help="sample one server process with py-spy during each closed-loop API run "
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
        "in the same run, e.g. the commit before a change, to measure what the change costs",
    )
    run.add_argument(
        "--catalogue",
        type=Path,
        metavar="DIR",
        help="also run each server with the medicines catalogue of DIR imported (the BDPM "
        "files; the sample ships in adapters/catalogue/sample), to measure what its lookups cost",
    )
    run.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="N",
        help="run every server N times in turn (A B A B …) and report each run's median round "
        "by rate: the ratios of one round move by up to 10 %% on a shared machine",
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
    args = bench_parser().parse_args(argv)
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
        healthz=args.healthz,
        fhir=args.fhir,
        open_rate=args.open_rate,
        py_spy=args.py_spy,
        rev=args.rev,
        catalogue=args.catalogue,
        rounds=max(1, args.rounds),
    )
