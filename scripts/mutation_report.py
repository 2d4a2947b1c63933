"""The mutation score of the rules, from `mutmut results --all true`, and what survives unexplained.

A mutant is one small change to the code (`<` for `<=`, a constant, a string, a dropped
argument). Killed (a test failed) and timed out (the change made the code loop) both count as
caught. A survivor may be listed in the equivalents file, one per line as
`mutant.name  # why no test can tell it from the original`; it then leaves the score.
Everything else that survives, or that no test reaches, is printed and counts against it.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

CAUGHT = {"killed", "timeout"}
NOT_RUN = {"not checked", "skipped"}


def read_results(path: Path) -> dict[str, str]:
    """mutant name -> status ("killed", "survived", "no tests", "timeout", …)."""
    results: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, status = line.strip().partition(": ")
        if sep:
            results[name] = status.strip()
    return results


def read_equivalents(path: Path) -> dict[str, str]:
    """mutant name -> the reason it cannot be told from the original."""
    equivalents: dict[str, str] = {}
    if not path.exists():
        return equivalents
    for line in path.read_text().splitlines():
        name, _, reason = line.partition("#")
        if name.strip():
            equivalents[name.strip()] = reason.strip()
    return equivalents


def function_of(mutant: str) -> str:
    return mutant.rpartition("__mutmut_")[0]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="scripts/mutation_report.py")
    parser.add_argument("results", type=Path)
    parser.add_argument("equivalents", type=Path)
    parser.add_argument("--fail-under", type=float, default=90.0)
    parser.add_argument("--only", action="append", default=[], help="mutant name patterns")
    args = parser.parse_args(argv)

    results = read_results(args.results)
    if args.only:
        results = {
            name: status
            for name, status in results.items()
            if any(fnmatch.fnmatch(name, pattern) for pattern in args.only)
        }
    equivalents = read_equivalents(args.equivalents)
    counted = {n: s for n, s in results.items() if n not in equivalents and s not in NOT_RUN}
    caught = sum(status in CAUGHT for status in counted.values())
    score = 100 * caught / len(counted) if counted else 100.0
    escaped = sorted(n for n, s in counted.items() if s not in CAUGHT)

    console = Console(width=120)
    console.print(_summary(results, equivalents, counted, caught, score))
    console.print(_escaped(escaped, counted))
    stale = sorted(set(equivalents) - set(read_results(args.results)))
    if stale:
        console.print(f"[yellow]{len(stale)} listed equivalents no longer exist: {stale[:5]}")
    verdict = "passes" if score >= args.fail_under else "FAILS"
    console.print(f"mutation score {score:.1f} % {verdict} (at least {args.fail_under:g} %)")
    return 0 if score >= args.fail_under else 1


def _summary(
    results: dict[str, str],
    equivalents: dict[str, str],
    counted: dict[str, str],
    caught: int,
    score: float,
) -> Table:
    table = Table(title="Mutants of the rules", title_justify="left")
    table.add_column("status")
    table.add_column("mutants", justify="right")
    for status, count in sorted(Counter(results.values()).items()):
        table.add_row(status, str(count))
    table.add_section()
    table.add_row("listed as equivalent", str(sum(n in equivalents for n in results)))
    table.add_row("counted", str(len(counted)))
    table.add_row("caught (killed or timed out)", str(caught))
    table.add_row("score", f"{score:.1f} %", style="bold")
    return table


def _escaped(escaped: list[str], counted: dict[str, str]) -> Table:
    table = Table(title="Mutants no test catches, by function", title_justify="left")
    table.add_column("function")
    table.add_column("mutants", justify="right")
    table.add_column("names (`uv run mutmut show NAME` shows the change)")
    by_function: dict[str, list[str]] = {}
    for name in escaped:
        by_function.setdefault(function_of(name), []).append(name)
    for function, names in sorted(by_function.items(), key=lambda item: -len(item[1])):
        statuses = Counter(counted[n] for n in names)
        suffixes = ", ".join(n.rpartition("__mutmut_")[2] for n in names)
        table.add_row(function, f"{len(names)} ({dict(statuses)})", suffixes)
    return table


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
