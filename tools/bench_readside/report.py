"""The table of the read-side measures, and its block of BENCHMARKS.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from tools.bench.report import facts_line

GOALS = {"project": 20_000, "rebuild_s": 60, "lag_p99_s": 1.0, "relay": 10_000}


# --- results -------------------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    backend: str
    amount: str
    seconds: float | None
    result: str
    baseline: str = "—"
    ratio: str = "—"
    goal: str = "—"
    note: str = ""


# --- report --------------------------------------------------------------------------------------

HEADERS = ("measure", "backend", "amount", "s", "result", "baseline", "ratio", "goal", "note")


def cells(row: Row) -> list[str]:
    seconds = f"{row.seconds:.1f}" if row.seconds is not None else "—"
    return [
        row.measure,
        row.backend,
        row.amount,
        seconds,
        row.result,
        row.baseline,
        row.ratio,
        row.goal,
        row.note,
    ]


def print_table(rows: list[Row]) -> None:
    table = Table(title="ordo read side and Kafka")
    for header in HEADERS:
        table.add_column(header)
    for row in rows:
        table.add_row(*cells(row))
    Console(width=220).print(table)


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells(row)) + " |" for row in rows]
    return "\n".join(lines)


METHOD = """\
Logs are a busy day (`tools.busy_day`, every event decided by `domain.decisions`: each
prescription issued, transmitted to a pharmacy, dispensed in one or two visits: 3.5 events per
prescription, 50 prescribers), appended 1,000 prescriptions per `LibraryLog.append` to a fresh
scratch schema (*append the log* times those calls alone).
*Projection*: the runner `ordo project` uses (`ProjectionRunner`, batch 2,000, asyncpg), in
this process, from position 0 to head; baseline: one asyncpg COPY of the rows it wrote into
empty tables `LIKE … INCLUDING ALL` (same indexes), as events/s. SQLite: the embedded default in
a temp dir, same runner. *Rebuild*: `ordo projections rebuild` as a subprocess, whole process
time (start-up included). *List lag*: `ordo serve --workers 2` (projection in process; with
Kafka: serve + `ordo relay` + `--lag-workers` `ordo worker`s, fresh topic of 6 partitions), 1,000
prescriptions seeded through the API plus 8 probe prescribers × 10; an open-loop schedule at
the target rate over up to 96 keep-alive connections (when all are busy the send waits: the
achieved rate is what the server sustained) POSTs one-pack dispensings; every 50th goes to a
probe prescription, and from its 201 the probe prescriber's list (`limit=100`, the whole list)
is polled every 10 ms with httpx until the dispensation id is in it. *Relay*: `Relay` in
process with the shipped producer (acks=all, idempotent) from the projection log to
acknowledged; baseline: the same producer sending the same messages to a scratch topic.
*Workers*: N `ordo worker` subprocesses on the relayed topic, fresh consumer group, views
truncated first, until `count(*), sum(version)` of the prescriptions view equals
(prescriptions, events); ratio against the in-process runner."""


def block(command: str, facts: dict[str, str], rows: list[Row], section: str = "readside") -> str:
    return "\n".join(
        [
            f"### `{section}`: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"Command: `{command}`",
            "",
            f"Machine: {facts_line(facts)}.",
            "",
            METHOD,
            "",
            markdown(rows),
        ]
    )
