"""`ordo serve`'s app (`app_from_env`) freezes what its start-up built out of the garbage
collector's full collections, once its lifespans have started; an app built for a test does
not (its objects stay collectable)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from adapters.bootstrap import app_from_env, build_app
from tests.conftest import settings_for
from tools.cast import SECRET


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_the_served_app_freezes_its_start_up_objects(
    unfrozen: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ORDO_AUTH_SECRET", SECRET)
    app = app_from_env()

    assert gc.get_freeze_count() == 0
    with TestClient(app) as client:
        frozen = gc.get_freeze_count()
        assert client.get("/healthz").status_code == 200

    assert frozen > 0


def test_an_app_built_for_a_test_freezes_nothing(unfrozen: None, tmp_path: Path) -> None:
    with TestClient(build_app(settings_for(tmp_path))) as client:
        assert client.get("/healthz").status_code == 200

        assert gc.get_freeze_count() == 0
