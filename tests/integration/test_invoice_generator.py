"""`scripts/invoices` beside a running instance: the file it writes reconciles as it promised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.auth import sign_token
from tests.integration.servers import REPO, ordo_server
from tools.cast import SECRET

pytestmark = pytest.mark.postgres


def test_invoices_generated_while_the_server_runs_reconcile_to_the_expected_counts(
    postgres_url: str, tmp_path: Path
) -> None:
    invoices, expected = tmp_path / "invoices.ndjson", tmp_path / "expected.json"
    with ordo_server(postgres_url, tmp_path) as (base_url, _):
        # The server leads the projection: the generator must wait for it, not for the lock.
        subprocess.run(
            [
                *(sys.executable, "-m", "tools.invoices", "--out", str(invoices)),
                *("--lines", "600", "--generate-log", "700", "--expect", str(expected)),
            ],
            cwd=REPO,
            env={**os.environ, "ORDO_DATABASE_URL": postgres_url, "ORDO_DATA_DIR": str(tmp_path)},
            check=True,
            capture_output=True,
            timeout=120,
        )
        promised = {k: v for k, v in json.loads(expected.read_text()).items() if v}

        insurer = {"Authorization": f"Bearer {sign_token(SECRET, role='insurer', subject='t')}"}
        with httpx.Client(base_url=base_url, headers=insurer, timeout=30) as client:
            submitted = client.post(
                "/v1/reconciliation/batches",
                content=invoices.read_bytes(),
                headers={"content-type": "application/x-ndjson"},
            )
            assert submitted.status_code == 202, submitted.text
            batch = wait_until_done(client, submitted.json()["batch_id"])

    assert {k: v for k, v in batch["counts"].items() if v} == promised
    assert sum(promised.values()) == 600
    assert len(promised) == 9, "the default mix has every outcome"


def wait_until_done(client: httpx.Client, batch_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (batch := client.get(f"/v1/reconciliation/batches/{batch_id}").json())[
        "status"
    ] != "done":
        assert time.monotonic() < deadline, batch
        time.sleep(0.1)
    return dict(batch)
