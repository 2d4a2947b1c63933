"""scripts/services from a checkout the `postgres` user cannot traverse (a clone under /root, a
`mktemp -d` folder), as root: PostgreSQL must still start, with its data where it can write."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.integration.servers import REPO


def services(checkout: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(checkout / "scripts" / "services"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_postgres_starts_from_a_checkout_closed_to_other_users(tmp_path: Path) -> None:
    checkout = tmp_path / "closed" / "ordo"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "services", checkout / "scripts" / "services")
    (tmp_path / "closed").chmod(0o700)  # as `mktemp -d` makes it, or /root

    started = services(checkout, "up", "postgres")
    try:
        assert started.returncode == 0, started.stderr
        env = services(checkout, "env").stdout
        url = env.split("ORDO_TEST_DATABASE_URL=", 1)[1].split()[0]
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
        data = (checkout / ".services" / "postgres").resolve() / "data"
        assert not data.is_relative_to(tmp_path)  # where the postgres user can reach it
        assert data.stat().st_uid != 0
    finally:
        stopped = services(checkout, "down", "--purge", "postgres")
    assert stopped.returncode == 0, stopped.stderr
    assert not data.exists()
