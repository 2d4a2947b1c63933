"""`ordo reconcile FILE.ndjson`: the same batches from the command line, with a report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.cli import main
from adapters.config import Settings
from domain.identifiers import PrescriptionNumber
from tests.api.test_prescriptions_api import dispense, issue
from tests.api.test_reconciliation_api import BATCHES, finished, invoice, items, ndjson
from tools.cast import SECRET, People


@pytest.fixture
def invoices(settings: Settings, people: People, tmp_path: Path) -> Path:
    """Two dispensed prescriptions, then the server stops: the CLI works on its own."""
    with TestClient(build_app(settings)) as client:
        one = issue(client, people, 3)["prescription_id"]
        other = issue(client, people, 3)["prescription_id"]
        assert dispense(client, people, one, (1, 2)).status_code == 201
        assert dispense(client, people, other, (1, 1)).status_code == 201
    path = tmp_path / "invoices.ndjson"
    path.write_bytes(
        ndjson(
            invoice(people, one, (1, 2), number="F-1"),
            invoice(people, other, (1, 2), number="F-2"),
            invoice(people, one, (1, 1), number="F-3", product=people.generic),
            "not json",
            invoice(people, PrescriptionNumber.generate().value, number="F-4"),
            invoice(people, one, (1, 1), number="F-1"),
        )
    )
    return path


@pytest.fixture
def environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDO_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ORDO_AUTH_SECRET", SECRET)
    if settings.database_url:
        monkeypatch.setenv("ORDO_DATABASE_URL", settings.database_url)
    else:
        monkeypatch.delenv("ORDO_DATABASE_URL", raising=False)


EXPECTED = [
    (1, "F-1", "matched"),
    (2, "F-2", "quantity_mismatch"),
    (3, "F-3", "product_mismatch"),
    (4, None, "invalid"),
    (5, "F-4", "unknown_prescription"),
    (6, "F-1", "duplicate_invoice"),
]


@pytest.mark.usefixtures("environment")
def test_ordo_reconcile_writes_the_items_as_ndjson_and_prints_a_summary(
    invoices: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.ndjson"

    assert main(["reconcile", str(invoices), "--out", str(report)]) == 0

    found = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(i["line"], i["invoice_number"], i["outcome"]) for i in found] == EXPECTED
    assert all(i["detail"] for i in found)
    printed = capsys.readouterr().out
    assert "reconciling" in printed and "lines/s" in printed
    for outcome in ("matched", "duplicate_invoice", "invalid", "no_dispensation"):
        assert outcome in printed
    assert "6 invoices" in printed


@pytest.mark.usefixtures("environment")
def test_ordo_reconcile_writes_a_csv_report(invoices: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.csv"

    assert main(["reconcile", str(invoices), "--out", str(report)]) == 0

    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    assert [(int(r["line"]), r["invoice_number"] or None, r["outcome"]) for r in rows] == EXPECTED
    assert rows[1]["detail"].startswith("line 1: billed 2 of CIP13")


@pytest.mark.usefixtures("environment")
def test_the_cli_and_the_api_share_the_invoice_numbers_already_reconciled(
    invoices: Path, tmp_path: Path, settings: Settings, people: People
) -> None:
    assert main(["reconcile", str(invoices), "--format", "csv", "--out", "-"]) == 0

    with TestClient(build_app(settings)) as client:
        response = client.post(
            BATCHES,
            content=invoices.read_bytes(),
            headers={**people.as_insurer(), "content-type": "application/x-ndjson"},
        )
        batch_id = response.json()["batch_id"]
        finished(client, people, batch_id)
        outcomes = [i["outcome"] for i in items(client, people, batch_id)]

    assert outcomes == ["duplicate_invoice"] * 3 + [
        "invalid",
        "unknown_prescription",
        "duplicate_invoice",
    ]


def test_a_missing_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconcile", str(tmp_path / "nope.ndjson")]) == 2
    assert "no such file" in capsys.readouterr().err
