"""A command's start-up objects are out of the garbage collector's reach before its work."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.cli import main


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_a_command_freezes_what_it_imported_before_its_work_begins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDO_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ORDO_DATABASE_URL", raising=False)
    assert gc.get_freeze_count() == 0

    assert main(["projections", "status"]) == 0

    # The modules the command imported are among them (some 100,000 objects at least).
    assert gc.get_freeze_count() > 100_000
