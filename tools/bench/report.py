"""The report: the results and CPU tables, the aims met or not, py-spy's shares, and the block
of BENCHMARKS.md."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from tools import benchmarks_md
from tools.bench.baseline import LOCKED_SQL
from tools.bench.fhir import ratio_lines
from tools.bench.load import PRESCRIBED, Run
from tools.bench.options import Options
from tools.bench.sampler import SPIED

# Issue 11's aims: dispensing at 32 clients, at 1 client, and reading one prescription.
GOAL_RATE, GOAL_P99_MS, GOAL_OF_LOCKED_SQL, GOAL_P99_ONE_CLIENT_MS = 2500.0, 30.0, 0.9, 5.0
GOAL_READ_RATE, GOAL_READ_P99_MS = 5000.0, 15.0
AIMS = (
    "dispensing at 32 clients ≥ 2,500/s, p99 ≤ 30 ms, ≥ 0.9 of the locked SQL baseline",
    "dispensing at 1 client p99 ≤ 5 ms",
    "reading one prescription at 32 clients ≥ 5,000/s, p99 ≤ 15 ms",
)


# --- reports --------------------------------------------------------------------------------------

Rows = tuple[list[str], list[list[str]]]


def _errors(run: Run) -> str:
    total = sum(run.tally.errors.values())
    if not total:
        return "0"
    return f"{total} ({', '.join(f'{k}: {v}' for k, v in run.tally.errors.most_common(3))})"


def _ratio(run: Run, runs: Sequence[Run]) -> str:
    if not run.is_api or run.backend != "postgres":
        return "—"
    base = [r for r in runs if r.target == LOCKED_SQL and r.clients == run.clients]
    return f"{run.rate / base[0].rate:.2f}" if base and base[0].rate else "—"


def _vs_rev(run: Run, runs: Sequence[Run], rev: str | None) -> str:
    """This run's rate over the same server at `--rev` (same backend, workers, clients)."""
    if rev is None or not run.target.startswith("API") or f"@{rev}" in run.target:
        return "—"
    twin = run.target.replace("API", f"API @{rev}", 1)
    base = [
        r
        for r in runs
        if (r.target, r.backend, r.workers, r.clients)
        == (twin, run.backend, run.workers, run.clients)
    ]
    return f"{run.rate / base[0].rate:.2f}" if base and base[0].rate else "—"


def _vs_no_catalogue(run: Run, runs: Sequence[Run]) -> str:
    """A run with the catalogue's rate over the same run without it."""
    if " +catalogue" not in run.target:
        return "—"
    twin = run.target.replace(" +catalogue", "", 1)
    base = [
        r
        for r in runs
        if (r.target, r.backend, r.workers, r.clients)
        == (twin, run.backend, run.workers, run.clients)
    ]
    return f"{run.rate / base[0].rate:.2f}" if base and base[0].rate else "—"


def results_rows(runs: Sequence[Run], rev: str | None = None) -> Rows:
    head = [
        "target",
        "backend",
        "workers",
        "clients",
        "201/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "API/SQL",
        *([f"vs @{rev}"] if rev else []),
        *(["vs no catalogue"] if any(" +catalogue" in r.target for r in runs) else []),
    ]
    rows = [
        [
            r.target,
            r.backend,
            str(r.workers or "—"),
            str(r.clients),
            f"{r.rate:,.0f}",
            f"{r.latency_ms(0.5):.1f}",
            f"{r.latency_ms(0.99):.1f}",
            f"{r.latency_ms(1.0):.1f}",
            _errors(r),
            _ratio(r, runs),
            *([_vs_rev(r, runs, rev)] if rev else []),
            *([_vs_no_catalogue(r, runs)] if any(" +catalogue" in x.target for x in runs) else []),
        ]
        for r in runs
    ]
    return head, rows


def _per_request(cores: float, run: Run) -> str:
    return f"{cores * run.window.seconds / run.ok * 1e6:,.0f}" if run.ok else "—"


def cpu_rows(runs: Sequence[Run]) -> Rows:
    head = [
        "target",
        "backend",
        "workers",
        "clients",
        "server",
        "postgres",
        "load gen",
        "other",
        "machine",
        "server µs/op",
        "postgres µs/op",
        "load gen µs/op",
        "pg sessions active / lock-wait / idle-in-tx",
    ]
    rows = []
    for r in runs:
        c, s = r.observation.cores, r.observation.sessions
        sessions = f"{s['active']:.1f} / {s['lock_wait']:.1f} / {s['idle_in_tx']:.1f}" if s else "—"
        rows.append(
            [
                r.target,
                r.backend,
                str(r.workers or "—"),
                str(r.clients),
                *(f"{c[k]:.2f}" for k in ("server", "postgres", "loadgen", "other", "machine")),
                _per_request(c["server"], r),
                _per_request(c["postgres"], r),
                _per_request(c["loadgen"], r),
                sessions,
            ]
        )
    return head, rows


def rich_table(title: str, rows: Rows) -> Table:
    table = Table(title=title, title_justify="left")
    for name in rows[0]:
        table.add_column(name, justify="left" if name in {"target", "backend"} else "right")
    for row in rows[1]:
        table.add_row(*row)
    return table


def markdown_table(rows: Rows) -> str:
    return benchmarks_md.markdown_table(*rows)


def _api_runs(runs: Sequence[Run], target: str, clients: int) -> list[Run]:
    return [
        r for r in runs if r.target == target and r.backend == "postgres" and r.clients == clients
    ]


def _aim(text: str, met: bool | None, measured: str) -> str:
    verdict = "not run" if met is None else ("**met**" if met else "**not met**")
    return f"- {text}: {verdict}{', ' + measured if measured else ''}."


def goal_line(runs: Sequence[Run]) -> str:
    """The aims of issue 11 (the write path), judged on this run's PostgreSQL rows."""
    lines = []
    busy, idle = _api_runs(runs, "API", 32), _api_runs(runs, "API", 1)
    baseline = [replace(r, target="API") for r in runs if r.target == LOCKED_SQL]
    locked = _api_runs(baseline, "API", 32)
    if busy:
        best = max(busy, key=lambda r: r.rate)
        ratio = best.rate / locked[0].rate if locked else math.nan
        met = best.rate >= GOAL_RATE and best.latency_ms(0.99) <= GOAL_P99_MS
        met = met and (not locked or ratio >= GOAL_OF_LOCKED_SQL)
        measured = f"{best.rate:,.0f}/s, p99 {best.latency_ms(0.99):.1f} ms, {ratio:.2f} of SQL"
        lines.append(_aim(AIMS[0], met, measured))
    else:
        lines.append(_aim(AIMS[0], None, ""))
    if idle:
        p99 = idle[0].latency_ms(0.99)
        lines.append(_aim(AIMS[1], p99 <= GOAL_P99_ONE_CLIENT_MS, f"p99 {p99:.1f} ms"))
    reads = _api_runs(runs, "API read", 32)
    if reads:
        r = reads[0]
        met = r.rate >= GOAL_READ_RATE and r.latency_ms(0.99) <= GOAL_READ_P99_MS
        lines.append(_aim(AIMS[2], met, f"{r.rate:,.0f}/s, p99 {r.latency_ms(0.99):.1f} ms"))
    for r in runs:
        if "open loop" in r.target:
            lines.append(
                f"- {r.target}: {r.rate:,.0f} 201/s answered in the window, p50 "
                f"{r.latency_ms(0.5):.1f} ms, p99 {r.latency_ms(0.99):.1f} ms from the scheduled "
                "send time."
            )
    return "Aims of issue 11 (PostgreSQL, this run):\n\n" + "\n".join(lines)


def fhir_lines(runs: Sequence[Run]) -> list[str]:
    """The FHIR door against /v1 (`--fhir`), as lines of BENCHMARKS.md (none without it)."""
    ratios = ratio_lines(runs)
    if not ratios:
        return []
    return ["FHIR against /v1 (rates of the same server, clients and store):", "", *ratios, ""]


# Issue 28's read aim: reading one prescription at 32 clients at least half the rate of GET
# /healthz on the same server (its floor: the HTTP stack alone), p99 at most 20 ms.
READ_OF_HEALTHZ, READ_OF_HEALTHZ_CLIENTS, READ_OF_HEALTHZ_P99_MS = 0.5, 32, 20.0


def healthz_lines(runs: Sequence[Run]) -> list[str]:
    """Each read's rate over /healthz's on the same server and clients (`--reads --healthz`)."""
    lines = []
    for run in runs:
        if not run.target.endswith(" read"):
            continue
        floor = run.target.removesuffix(" read") + " healthz"
        twins = [
            r
            for r in runs
            if (r.target, r.backend, r.workers, r.clients)
            == (floor, run.backend, run.workers, run.clients)
        ]
        if not twins or not twins[0].rate:
            continue
        ratio, p99 = run.rate / twins[0].rate, run.latency_ms(0.99)
        met = ratio >= READ_OF_HEALTHZ and p99 <= READ_OF_HEALTHZ_P99_MS
        aim = "met" if met else "**not met**"
        verdict = f" (aim ≥ {READ_OF_HEALTHZ}, p99 ≤ {READ_OF_HEALTHZ_P99_MS:.0f} ms: {aim})"
        lines.append(
            f"- {run.target}, {run.backend} w{run.workers}, {run.clients} clients: read "
            f"{run.rate:,.0f}/s (p99 {p99:.1f} ms), /healthz {twins[0].rate:,.0f}/s, ratio "
            f"{ratio:.2f}{verdict if run.clients == READ_OF_HEALTHZ_CLIENTS else ''}"
        )
    return ["Reading one prescription against GET /healthz:", "", *lines, ""] if lines else []


# --- py-spy: where a server process spends its time, sampled at full speed --------------------

SPY_COMPONENTS = (
    "asyncpg", "litestar", "uvicorn", "msgspec", "structlog", "prometheus", "anyio", "jwt",
    "adapters/store", "adapters/http", "adapters/readmodels", "adapters/", "projections/",
    "domain/", "asyncio",
)  # fmt: skip


def _frame_file(frame: str) -> str:
    return frame.rpartition("(")[2]


def _component(frame: str) -> str:
    where = _frame_file(frame)
    return next((name.rstrip("/") for name in SPY_COMPONENTS if name in where), "other")


def spy_rows(stacks: Counter[str]) -> tuple[Rows, Rows]:
    """Own samples by component (the leaf frame's), and our functions' inclusive share."""
    total = sum(stacks.values()) or 1
    own: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = stack.split(";")
        own[_component(frames[-1])] += count
        names = {f.split(" (")[0] for f in frames if "/work/" in f or "adapters/" in f}
        for name in {n for n in names if any(d in n for d in ("Service", "Store", "Committer"))}:
            ours[name] += count
    by_component = (
        ["component (leaf frame)", "share of samples"],
        [[name, f"{count / total:.1%}"] for name, count in own.most_common()],
    )
    by_function = (
        ["use case or store function (inclusive)", "share of samples"],
        [[name, f"{count / total:.1%}"] for name, count in ours.most_common(12)],
    )
    return by_component, by_function


def spy_markdown() -> list[str]:
    lines = []
    for run, stacks in SPIED:
        if not stacks:
            continue
        components, functions = spy_rows(stacks)
        lines += [
            f"py-spy, one server process during `{run.target}` at {run.clients} clients "
            f'({sum(stacks.values()):,} samples at 200/s; "other" in the leaf column is '
            "mostly the event loop's own C code: uvloop, sockets):",
            "",
            markdown_table(components),
            "",
            markdown_table(functions),
            "",
        ]
    return lines


# --- BENCHMARKS.md --------------------------------------------------------------------------------

METHOD = (
    "Each backend gets a fresh `ordo serve` (SQLite in a temp dir; PostgreSQL in a scratch "
    "schema), {prescriptions:,} prescriptions issued through the API (one line of {prescribed} "
    "packs, 8 prescribers, 500 patients; *narcotic* rows: a secure morphine line, 28 days, one "
    "patient per prescription, so each dispensing also appends to the patient's narcotic "
    "coverage stream; *@REV* rows: the stock server of that git revision, same seed and load; "
    "*+catalogue* rows: the same server with the medicines catalogue imported before it starts, "
    "so every prescribing and dispensing looks its packs up), "
    "then {clients} closed-loop clients ({client} HTTP/1.1 "
    "keep-alive client, one connection each) POST a one-pack dispensing on a random prescription "
    "with one of 16 pharmacists' tokens, for {warmup:g} s unmeasured then {seconds:g} s measured. "
    "Anything but 201 is an error. The *SQL ordo_append* rows send a dispensing's statements "
    "straight to PostgreSQL with asyncpg, one connection per client, on a copy of the seed: "
    "SELECT the stream (prepared), then the append as the app does it (checked with "
    "log_statement=all): one prepared `SELECT … FROM ordo_append($1…$4)`, whose PL/pgSQL takes "
    "the EXCLUSIVE table lock, NOTIFYs and INSERTs in its own transaction (API/SQL compares with "
    "it). CPU columns are "
    "cores busy on average (of {nproc}): server processes, PostgreSQL processes, this load "
    "generator (for SQL rows: the asyncpg client), other processes, whole machine; µs/op is CPU "
    "per 201; pg sessions are averages of pg_stat_activity samples every 0.2 s."
)


def facts_line(facts: dict[str, str]) -> str:
    return "; ".join(f"{name}: {value}" for name, value in facts.items())


def rounds_note(rounds: int) -> str:
    if rounds == 1:
        return ""
    return (
        f" Every server ran {rounds} times in turn (all of them, then all again); each row is"
        " the median of its rounds by rate, with that round's latencies and CPU."
    )


def block(opts: Options, facts: dict[str, str], runs: Sequence[Run]) -> str:
    method = METHOD.format(
        prescriptions=opts.prescriptions,
        prescribed=PRESCRIBED,
        clients=" and ".join(map(str, opts.clients)),
        client=opts.client,
        warmup=opts.warmup,
        seconds=opts.seconds,
        nproc=facts["nproc"],
    )
    parts = [
        f"### `{opts.section}`: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{opts.command}`",
        "",
        f"Machine: {facts_line(facts)}.",
        "",
        method + rounds_note(opts.rounds),
        "",
        markdown_table(results_rows(runs, opts.rev)),
        "",
        goal_line(runs),
        "",
        *fhir_lines(runs),
        *healthz_lines(runs),
        "Where the CPU goes during each run:",
        "",
        markdown_table(cpu_rows(runs)),
    ]
    parts += ["", *spy_markdown()]
    return "\n".join(parts).rstrip() + "\n"


def print_report(runs: Sequence[Run], rev: str | None = None) -> None:
    out = Console(width=max(160, Console().width))
    out.print(rich_table("Dispensing", results_rows(runs, rev)))
    out.print(goal_line(runs))
    out.print("\n".join(fhir_lines(runs)))
    out.print("\n".join(healthz_lines(runs)))
    out.print(rich_table("Where the CPU goes (cores busy; CPU µs per 201)", cpu_rows(runs)))
