"""The comparison: each call's rate on ordo and on HAPI at each number of clients, their
ratio against issue 28's aim (>= 3x at 32 clients, >= 1x at 1 client), the BENCHMARKS.md
block."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from tools import benchmarks_md
from tools.bench.load import Run
from tools.bench_hapi.calls import CALLS

AIM_BUSY, AIM_ALONE = 3.0, 1.0  # ordo's rate over HAPI's: at 32 clients, at 1 client
BUSY = 32
HEAD = [
    "call",
    "clients",
    "ordo /s",
    "ordo p50 / p99 ms",
    "HAPI /s",
    "HAPI p50 / p99 ms",
    "ordo/HAPI",
    "aim",
    "server cores (ordo / HAPI)",
    "server CPU µs/call (ordo / HAPI)",
    "errors (ordo / HAPI)",
]


def aim_of(clients: int) -> float:
    return AIM_BUSY if clients >= BUSY else AIM_ALONE


def _find(runs: Sequence[Run], door: str, call: str, clients: int) -> Run | None:
    found = [r for r in runs if r.target == f"{door} {call}" and r.clients == clients]
    return found[0] if found else None


def _rate(run: Run | None) -> str:
    return f"{run.rate:,.0f}" if run else "—"


def _latency(run: Run | None) -> str:
    return f"{run.latency_ms(0.5):.1f} / {run.latency_ms(0.99):.1f}" if run else "—"


def _errors(run: Run | None) -> str:
    if run is None:
        return "—"
    total = sum(run.tally.errors.values())
    top = ", ".join(f"{k}: {v}" for k, v in run.tally.errors.most_common(2))
    return f"{total} ({top})" if total else "0"


def _cores(run: Run | None) -> str:
    """The cores the server's processes used on average during the run (of nproc)."""
    cores = run.observation.cores.get("server") if run else None
    return "—" if cores is None else f"{cores:.2f}"


def _cpu(run: Run | None) -> str:
    """The server's CPU per answered call (all its processes), in µs."""
    cores = run.observation.cores.get("server") if run else None
    if run is None or cores is None or not run.ok:
        return "—"
    return f"{cores * run.window.seconds / run.ok * 1e6:,.0f}"


def _verdict(ordo: Run | None, hapi: Run | None, clients: int) -> tuple[str, str]:
    if ordo is None or hapi is None or not hapi.rate:
        return "—", "—"
    ratio = ordo.rate / hapi.rate
    met = "met" if ratio >= aim_of(clients) else "**not met**"
    return f"{ratio:.2f}", f"≥ {aim_of(clients):g}: {met}"


def comparison_rows(runs: Sequence[Run]) -> tuple[list[str], list[list[str]]]:
    """One row per call and number of clients, in the order they ran."""
    clients = sorted({r.clients for r in runs})
    rows = []
    for call in CALLS:
        for count in clients:
            ordo, hapi = _find(runs, "ordo", call, count), _find(runs, "HAPI", call, count)
            if ordo is None and hapi is None:
                continue
            ratio, aim = _verdict(ordo, hapi, count)
            rows.append(
                [
                    call,
                    str(count),
                    _rate(ordo),
                    _latency(ordo),
                    _rate(hapi),
                    _latency(hapi),
                    ratio,
                    aim,
                    f"{_cores(ordo)} / {_cores(hapi)}",
                    f"{_cpu(ordo)} / {_cpu(hapi)}",
                    f"{_errors(ordo)} / {_errors(hapi)}",
                ]
            )
    return HEAD, rows


def block(command: str, facts: Mapping[str, str], runs: Sequence[Run]) -> str:
    """The `hapi` block of BENCHMARKS.md: how it was run, the machine, the table."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## ordo against HAPI FHIR's JPA server (same PostgreSQL, same FHIR calls)",
        "",
        f"`{command}`, {when}. One server at a time on one private PostgreSQL cluster;",
        "closed-loop clients; a prescribe is `POST MedicationRequest` (one line), a read",
        "`GET MedicationRequest/<id>` of a seeded line, a dispense `POST MedicationDispense` of",
        "one pack against a seeded line; rates count only the expected answer (201, 200).",
        "Both servers as shipped (HAPI: the starter's application.yaml, its datasource and",
        "dialect set to PostgreSQL); each call first ran unmeasured at the most clients.",
        "",
        *(f"- {name}: {value}" for name, value in facts.items()),
        "",
        benchmarks_md.markdown_table(*comparison_rows(runs)),
    ]
    return "\n".join(lines)
