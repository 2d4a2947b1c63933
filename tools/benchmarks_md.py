"""BENCHMARKS.md: each benchmark script rewrites only its own block, between markers."""

from __future__ import annotations

import timeit
from pathlib import Path

HEADER = """# Benchmarks

Blocks between `<!-- bench:NAME:begin/end -->` markers are rewritten by the scripts that
measured them (`scripts/bench … --write BENCHMARKS.md --section NAME`, `scripts/bench_readside
--write BENCHMARKS.md`, `scripts/bench_reconciliation --write BENCHMARKS.md`); the text around
them is kept.
"""


def update_benchmarks(path: Path, section: str, text: str) -> None:
    """Replace (or append) the block `section`; the file is read right before it is written."""
    begin, end = f"<!-- bench:{section}:begin -->", f"<!-- bench:{section}:end -->"
    current = path.read_text() if path.exists() else HEADER
    new = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in current and end in current:
        before, rest = current.split(begin, 1)
        current = before + new + rest.split(end, 1)[1]
    else:
        current = current.rstrip() + "\n\n" + new + "\n"
    path.write_text(current)


def markdown_table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines)


def python_speed() -> str:
    """One core's speed as Python sees it, so that runs on different days can be compared:
    these shared machines vary by 2x or more from one session to the next."""
    best = min(timeit.repeat("sum(range(1_000_000))", number=10, repeat=5)) / 10
    return f"{best * 1000:.1f} ms"
