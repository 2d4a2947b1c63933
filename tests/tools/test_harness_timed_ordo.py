"""`harness.timed_ordo`: how long an `ordo` command takes, or why it failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import harness
from tools.cast import SECRET


def environment(tmp_path: Path) -> dict[str, str]:
    return {
        **harness.without_ordo_settings(),
        "ORDO_DATA_DIR": str(tmp_path),
        "ORDO_AUTH_SECRET": SECRET,
    }


def test_a_command_that_completes_gives_its_seconds(tmp_path: Path) -> None:
    assert harness.timed_ordo(environment(tmp_path), "projections", "status") > 0


def test_a_command_that_fails_stops_the_benchmark_with_its_output(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"(?s)ordo no-such-command failed:.*invalid choice"):
        harness.timed_ordo(environment(tmp_path), "no-such-command")
