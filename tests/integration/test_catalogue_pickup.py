"""A running `ordo serve` uses a new catalogue within 10 s of `ordo catalogue import` ending,
without a restart, on the embedded default and on PostgreSQL."""

from __future__ import annotations

import time

import httpx
import pytest

from adapters.catalogue import SAMPLE_DIR
from adapters.config import Settings
from tests.integration.servers import ordo_server
from tests.integration.test_catalogue_import import FULL, SKENAN, run_import
from tools.cast import People

PICKUP_SECONDS = 10.0
ANASTROZOLE = "3400949497294"  # the full files' first pack, not in the sample


def seconds_until_known(base_url: str, people: People, cip13: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < PICKUP_SECONDS + 5:
        response = httpx.get(f"{base_url}/v1/products/{cip13}", headers=people.as_pharmacist())
        if response.status_code == 200:
            return time.monotonic() - started
        assert response.status_code == 404, response.text
        time.sleep(0.1)
    return float("inf")


def test_a_running_server_uses_a_new_import_within_10_seconds(
    settings: Settings, people: People
) -> None:
    if not FULL.is_dir():
        pytest.skip(f"the official snapshot is not at {FULL}")
    with ordo_server(settings.database_url or "", settings.data_dir) as (base_url, _):
        unknown = httpx.get(f"{base_url}/v1/products/{SKENAN}", headers=people.as_pharmacist())
        assert unknown.status_code == 404

        done = run_import(settings, SAMPLE_DIR, "--date", "2022-06-02")
        assert done.returncode == 0, done.stderr
        assert seconds_until_known(base_url, people, SKENAN) < PICKUP_SECONDS
        missing = httpx.get(f"{base_url}/v1/products/{ANASTROZOLE}", headers=people.as_pharmacist())
        assert missing.status_code == 404

        done = run_import(settings, FULL, "--date", "2022-06-02")
        assert done.returncode == 0, done.stderr
        assert seconds_until_known(base_url, people, ANASTROZOLE) < PICKUP_SECONDS
