"""`scripts/bench dispensing` plans the same servers at `--rev` as on this checkout, the
catalogue's included: `--rev` with `--catalogue` measures both revisions with and without it."""

from __future__ import annotations

from pathlib import Path

from tools.bench.cli import plan
from tools.bench.options import parse_options

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
