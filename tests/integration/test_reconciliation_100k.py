"""100,000 invoices on a real PostgreSQL, with a known mix of every outcome (`scripts/invoices`
writes the file and the counts each outcome will get): through the API and through
`ordo reconcile`, twice in a row (the second time every invoice that named a real prescription
is a `duplicate_invoice`), and through a server killed with SIGKILL mid-batch, then resumed by
another server process.

The same 100,000 invoice numbers are reconciled by each scenario, so each starts with no
invoice reconciled (`forget_reconciliations`): the prescriptions' log stays.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from adapters.auth import sign_token
from adapters.config import with_schema
from tests.integration.servers import REPO, ordo_server
from tools.cast import SECRET

pytestmark = pytest.mark.postgres

INVOICES = 100_000
PRESCRIPTIONS = 105_000  # one visit per dispensed prescription, a few visits bill twice
UNCLAIMED = ("invalid", "unknown_prescription")  # name no real invoice: never duplicates
INSURER = {"Authorization": f"Bearer {sign_token(SECRET, role='insurer', subject='t')}"}


class Instance:
    """A schema with the log of dispensed prescriptions, the invoice file and its promise."""

    def __init__(self, url: str, schema: str, workdir: Path) -> None:
        self.url = url
        self.schema = schema
        self.workdir = workdir
        self.invoices = workdir / "invoices.ndjson"
        self.expected_file = workdir / "expected.json"

    @property
    def database_url(self) -> str:
        return with_schema(self.url, self.schema)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "ORDO_DATABASE_URL": self.database_url,
            "ORDO_DATA_DIR": str(self.workdir),
            "ORDO_AUTH_SECRET": SECRET,
            **extra,
        }

    @property
    def expected(self) -> dict[str, int]:
        counts: dict[str, int] = json.loads(self.expected_file.read_text())
        return {outcome: n for outcome, n in counts.items() if n}

    def expected_again(self) -> dict[str, int]:
        """A second run of the same file: every invoice that claimed its number is a duplicate."""
        first = self.expected
        again = {outcome: first[outcome] for outcome in UNCLAIMED if outcome in first}
        again["duplicate_invoice"] = INVOICES - sum(again.values())
        return again

    def forget_reconciliations(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            for table in (
                "ordo_reconciled_invoices",
                "ordo_reconciliation_items",
                "ordo_reconciliation_chunks",
                "ordo_reconciliation_batches",
            ):
                (found,) = conn.execute(
                    "SELECT to_regclass(%s)", (f"{self.schema}.{table}",)
                ).fetchall()
                if found[0]:  # the table exists
                    conn.execute(f'TRUNCATE "{self.schema}".{table}')


@pytest.fixture(scope="module")
def instance(
    postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Instance]:
    schema = f"t100k_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    found = Instance(postgres_server_url, schema, tmp_path_factory.mktemp("reconciliation-100k"))
    try:
        subprocess.run(
            [
                *(sys.executable, "-m", "tools.invoices", "--out", str(found.invoices)),
                *("--lines", str(INVOICES), "--generate-log", str(PRESCRIPTIONS)),
                *("--expect", str(found.expected_file)),
            ],
            cwd=REPO,
            env=found.env(),
            check=True,
            capture_output=True,
            timeout=600,
        )
        assert len(found.expected) == 9, "the mix has every outcome"
        assert sum(found.expected.values()) == INVOICES
        yield found
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def pieces(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while piece := handle.read(256 * 1024):
            yield piece


def submit(client: httpx.Client, instance: Instance) -> str:
    answer = client.post(
        "/v1/reconciliation/batches",
        content=pieces(instance.invoices),
        headers={"content-type": "application/x-ndjson"},
    )
    assert answer.status_code == 202, answer.text
    batch_id: str = answer.json()["batch_id"]
    return batch_id


def batch(client: httpx.Client, batch_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/reconciliation/batches/{batch_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def until_done(client: httpx.Client, batch_id: str, seconds: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while (found := batch(client, batch_id))["status"] != "done":
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
    return found


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {outcome: n for outcome, n in counts.items() if n}


def item_lines(client: httpx.Client, batch_id: str) -> list[int]:
    with client.stream("GET", f"/v1/reconciliation/batches/{batch_id}/items") as stream:
        return [json.loads(line)["line"] for line in stream.iter_lines() if line]


# --- through the API and through ordo reconcile, twice ------------------------------------------


def test_through_the_api_twice(instance: Instance) -> None:
    instance.forget_reconciliations()
    with (
        ordo_server(instance.database_url, instance.workdir) as (base_url, _),
        httpx.Client(base_url=base_url, headers=INSURER, timeout=300) as client,
    ):
        first = until_done(client, submit(client, instance))
        again = until_done(client, submit(client, instance))

    assert nonzero(first["counts"]) == instance.expected
    assert nonzero(again["counts"]) == instance.expected_again()
    assert first["amounts_cents"]["matched"] > 0
    assert again["amounts_cents"]["matched"] == 0


def reconcile_with_the_cli(instance: Instance, report: Path) -> dict[str, int]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "adapters.cli",
            "reconcile",
            str(instance.invoices),
            "--out",
            str(report),
        ],
        cwd=REPO,
        env=instance.env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "not paid" in done.stdout and "amount (EUR)" in done.stdout  # the summary
    with report.open() as lines:
        return dict(Counter(json.loads(line)["outcome"] for line in lines))


def test_through_ordo_reconcile_twice(instance: Instance) -> None:
    instance.forget_reconciliations()

    first = reconcile_with_the_cli(instance, instance.workdir / "first.ndjson")
    again = reconcile_with_the_cli(instance, instance.workdir / "again.ndjson")

    assert first == instance.expected
    assert again == instance.expected_again()


# --- a server killed mid-batch ------------------------------------------------------------------


def test_a_server_killed_mid_batch_is_resumed_by_the_next_to_the_same_counts(
    instance: Instance,
) -> None:
    instance.forget_reconciliations()
    short_lease = {"ORDO_RECONCILIATION_LEASE_SECONDS": "3"}
    with ordo_server(instance.database_url, instance.workdir, extra_env=short_lease) as (
        base_url,
        process,
    ):
        client = httpx.Client(base_url=base_url, headers=INSURER, timeout=300)
        batch_id = submit(client, instance)
        deadline = time.monotonic() + 120
        while (progress := batch(client, batch_id))["lines_done"] == 0:
            assert time.monotonic() < deadline, progress
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL
        client.close()
    assert 0 < progress["lines_done"] < INVOICES, "killed mid-batch"

    with (
        ordo_server(instance.database_url, instance.workdir, extra_env=short_lease) as (
            base_url,
            _,
        ),
        httpx.Client(base_url=base_url, headers=INSURER, timeout=300) as client,
    ):
        resumed = until_done(client, batch_id)  # reading it resumes it once the lease ran out
        lines = item_lines(client, batch_id)

    assert nonzero(resumed["counts"]) == instance.expected
    assert resumed["error"] is None
    assert lines == sorted(set(lines)) and len(lines) == INVOICES  # each line once
