"""scripts/bench_document: the ordonnance as a PDF, rendered on one core (not a test).

  scripts/bench_document [--rounds 5] [--seconds 1] [--renders 1000] [--write BENCHMARKS.md]

Issues three prescriptions through the API on a scratch embedded store (a standard one of 3
lines, a secure one of 2 narcotic lines whose numbers are spelt in words, one of 40 lines over
several pages), then, pinned to one CPU, renders each in --rounds rounds of --seconds: the
PDF alone (`adapters.document.pdf.render` of the masked view), and what GET …/document.pdf
does besides HTTP (`document_for`: read the events, fold, mask, render). Then --renders
renders of the standard one under tracemalloc (peak of Python allocations) with the
process's RSS before and after (growth would be a leak) and its peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import resource
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import pdfplumber
import structlog
from litestar.testing import TestClient
from rich.console import Console
from rich.table import Table

from adapters.auth import sign_token
from adapters.bootstrap import build_app
from adapters.config import Settings
from adapters.document.ordonnance import document_for
from adapters.document.pdf import render
from adapters.service import PrescriptionService
from domain.actors import Actor
from domain.identifiers import Cip13
from domain.views import qr_payload, view_of
from tools import benchmarks_md, cast

console = Console(stderr=True)
SECRET = "bench-document-" + "x" * 32
PRESCRIBER = cast.PRESCRIBER.value
PATIENT = cast.PATIENT.value


def line(label: str, dosage: str, days: int, quantity: int, **extra: Any) -> dict[str, Any]:
    code = Cip13.from_body("3400930" + str(10000 + quantity)[-5:]).value
    return {
        "product": {"system": "CIP13", "code": code, "label": label},
        "quantity": quantity,
        "dosage": dosage,
        "duration_days": days,
        **extra,
    }


PROFILES: dict[str, dict[str, Any]] = {
    "standard, 3 lines": {
        "kind": "standard",
        "lines": [
            line("Doliprane 1000 mg, 8 comprimés", "1 comprimé 3 fois par jour si douleur", 8, 3),
            line("Amoxicilline Arrow 500 mg, 12 gélules", "2 gélules matin et soir", 6, 2),
            line("Oméprazole 20 mg, 28 gélules", "1 gélule le matin", 56, 2),
        ],
    },
    "secure, 2 narcotic lines in words": {
        "kind": "secure",
        "lines": [
            line(
                "Skenan LP 10 mg, 14 gélules",
                "1 gélule matin et soir, à 12 heures d'intervalle",
                28,
                4,
                narcotic=True,
                fraction_days=7,
            ),
            line(
                "Oxynorm 5 mg, 14 gélules",
                "1 gélule toutes les 4 heures si douleur",
                14,
                1,
                narcotic=True,
            ),
        ],
    },
    "standard, 40 lines": {
        "kind": "standard",
        "lines": [
            line(f"Médicament n° {n}, 30 comprimés", "1 comprimé le matin et 1 le soir", 30, n)
            for n in range(1, 41)
        ],
    },
}


def issue_all(client: TestClient[Any]) -> dict[str, str]:
    token = sign_token(SECRET, role="prescriber", subject="bench", rpps=PRESCRIBER)
    numbers = {}
    for name, profile in PROFILES.items():
        body = {"patient": {"ins": PATIENT}, "execution_view_consent": True, **profile}
        response = client.post(
            "/v1/prescriptions", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 201, response.text
        numbers[name] = response.json()["prescription_id"]
    return numbers


def per_second(work: Callable[[], bytes], seconds: float) -> float:
    """Calls per second of `work` over about `seconds`."""
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        work()
        done += 1
    return done / elapsed


def rates(works: list[Callable[[], bytes]], rounds: int, seconds: float) -> list[list[float]]:
    """Each work's rate in `rounds` rounds of `seconds`, the works taking turns within a
    round, so that a burst of load from other jobs falls on all of them alike."""
    for work in works:
        for _ in range(20):  # warm-up: imports, font subsets' caches
            work()
    measured: list[list[float]] = [[] for _ in works]
    for _ in range(rounds):
        for index, work in enumerate(works):
            measured[index].append(per_second(work, seconds))
    return measured


def best_and_median(values: list[float]) -> str:
    return f"{max(values):,.0f}/s ({statistics.median(values):,.0f}/s)"


def rss_mib() -> float:
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    return float("nan")


def memory_of(work: Callable[[], bytes], renders: int) -> tuple[float, float, float]:
    """Peak of Python allocations (MiB) during `renders` renders, and RSS before and after."""
    before = rss_mib()
    tracemalloc.start()
    for _ in range(renders):
        work()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20, before, rss_mib()


def served_pdf(
    loop: asyncio.Runner, service: PrescriptionService, actor: Actor, number: str, today: date
) -> bytes:
    return loop.run(document_for(service, actor, number, today)).pdf


def pages_of(pdf: bytes) -> int:
    with pdfplumber.open(io.BytesIO(pdf)) as opened:
        return len(opened.pages)


def document_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="ordonnance PDF rendering benchmark")
    parser.add_argument("--rounds", type=int, default=5, help="measurements per cell")
    parser.add_argument("--seconds", type=float, default=1.0, help="per measurement")
    parser.add_argument("--renders", type=int, default=1000, help="renders under tracemalloc")
    parser.add_argument("--write", type=Path, metavar="FILE", help="record in FILE's block")
    return parser


def measure(
    client: TestClient[Any], loop: asyncio.Runner, args: argparse.Namespace
) -> tuple[list[list[str]], dict[str, Callable[[], bytes]]]:
    """A row per profile (render alone, and read + mask + render), and each profile's render."""
    rows: list[list[str]] = []
    numbers = issue_all(client)
    service: PrescriptionService = client.app.state.service
    today = service.clock().today
    prescriber = Actor(role="prescriber", subject="bench", rpps=PRESCRIBER)
    renders: dict[str, Callable[[], bytes]] = {}
    for name, number in numbers.items():
        state = loop.run(service.read(prescriber, number))
        view, payload = view_of(state, prescriber, today), qr_payload(state.prescription_id)
        renders[name] = partial(render, view, payload)
        served = partial(served_pdf, loop, service, prescriber, number, today)
        pdf = renders[name]()
        alone, with_read = rates([renders[name], served], args.rounds, args.seconds)
        rows.append(
            [
                name,
                str(pages_of(pdf)),
                f"{len(pdf) / 1024:.0f} KiB",
                best_and_median(alone),
                best_and_median(with_read),
            ]
        )
        console.print(f"{name}: done")
    return rows, renders


def write(path: Path, args: argparse.Namespace, speed: str, table: str, memory: str) -> None:
    text = (
        f"## Document (issue 16): the ordonnance as a PDF ({date.today().isoformat()})\n\n"
        f"`scripts/bench_document --write BENCHMARKS.md` (one process pinned to one CPU; "
        f"{args.rounds} rounds of {args.seconds:g} s per cell, the two columns taking turns; "
        f"the machine shared with other jobs, so the best round says what one core does and "
        f"the median what it did under their load; Python speed "
        f"`sum(range(10**6))` {speed}). *Render only*: the PDF from the masked view "
        f"(reportlab, fonts subset and embedded, page compression on). *Read + mask + "
        f"render*: what `GET …/document.pdf` does besides HTTP, on the embedded store.\n\n"
        + table
        + f"\n\nMemory: {memory}."
    )
    benchmarks_md.update_benchmarks(path, "document", text)


def main() -> None:
    args = document_parser().parse_args()
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})  # one core: rendering is single-threaded CPU work
    speed_before = benchmarks_md.python_speed()
    with tempfile.TemporaryDirectory(prefix="ordo-bench-document-") as scratch:
        settings = Settings.from_env({"ORDO_DATA_DIR": scratch, "ORDO_AUTH_SECRET": SECRET})
        app = build_app(settings)
        # The table is the output: no request log line per call.
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        # The embedded store runs its calls in worker threads: any event loop may await them.
        with TestClient(app) as client, asyncio.Runner() as loop:
            rows, renders = measure(client, loop, args)
            first = next(iter(PROFILES))
            peak, before, after = memory_of(renders[first], args.renders)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    head = [
        "prescription",
        "pages",
        "PDF size",
        f"render only, best of {args.rounds} (median)",
        f"read + mask + render, best of {args.rounds} (median)",
    ]
    table = Table(title=f"ordonnance PDFs per second on one core (CPU {cpu})")
    for column in head:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    memory = (
        f"{args.renders:,} renders of the {first} prescription: peak of Python allocations "
        f"(tracemalloc) {peak:.1f} MiB; RSS {before:.0f} MiB before, {after:.0f} MiB after; "
        f"peak RSS of the whole benchmark process {peak_rss:.0f} MiB"
    )
    Console().print(memory)
    if args.write:
        speed = f"{speed_before} → {benchmarks_md.python_speed()}"
        write(args.write, args, speed, benchmarks_md.markdown_table(head, rows), memory)


if __name__ == "__main__":
    main()
