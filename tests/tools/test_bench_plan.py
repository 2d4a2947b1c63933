"""`scripts/bench dispensing` plans the same servers at `--rev` as on this checkout, the
catalogue's included: `--rev` with `--catalogue` measures both revisions with and without it;
with `--rounds` each run is reported by its median round."""

from __future__ import annotations

from pathlib import Path

from tests.tools.test_bench_healthz import run
from tools.bench.cli import plan
from tools.bench.load import Run, median_rounds
from tools.bench.options import parse_options
from tools.bench.report import rounds_note

SAMPLE = Path("adapters/catalogue/sample")
TREE = Path("rev-tree")  # where the revision is checked out
ARGV = ("dispensing", "--backends", "sqlite", "--lines", "standard", "--no-baseline")


def test_the_revision_runs_with_the_catalogue_too() -> None:
    opts = parse_options([*ARGV, "--catalogue", str(SAMPLE), "--rev", "8f8cf49"])

    specs = plan(opts, TREE)

    assert [spec.label for spec in specs] == [
        "API",
        "API +catalogue",
        "API @8f8cf49",
        "API @8f8cf49 +catalogue",
    ]
    assert [spec.source for spec in specs] == [None, None, TREE, TREE]
    assert [spec.catalogue for spec in specs] == [None, SAMPLE, None, SAMPLE]


def run_at(target: str, rate: int) -> Run:
    """A run of one second at 32 clients that answered `rate` requests."""
    return run(target, "sqlite", 32, rate)


def test_each_run_is_reported_by_its_median_round() -> None:
    rounds = [
        run_at("API", 500),
        run_at("API @8f8cf49", 610),
        run_at("API", 700),
        run_at("API @8f8cf49", 590),
        run_at("API", 600),
        run_at("API @8f8cf49", 400),
    ]

    reported = median_rounds(rounds)

    assert [(each.target, each.rate) for each in reported] == [("API", 600), ("API @8f8cf49", 590)]


def test_two_rounds_report_the_slower() -> None:
    reported = median_rounds([run_at("API", 400), run_at("API", 300)])

    assert [each.rate for each in reported] == [300]


def test_rounds_are_asked_for_and_said() -> None:
    opts = parse_options([*ARGV, "--rounds", "3"])

    assert opts.rounds == 3
    assert "3 times in turn" in rounds_note(opts.rounds)
    assert rounds_note(1) == ""
