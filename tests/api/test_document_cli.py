"""`ordo document ID --out FILE.pdf` for operators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app, build_log
from adapters.cli import main
from adapters.config import Settings
from adapters.document.pdf import MASKED_EXECUTION
from tests.api.test_document_api import CONSENT, qr_codes_on_first_page, text_of
from tests.api.test_prescriptions_api import dispense, issue
from tests.conftest import Client
from tools.cast import SECRET, People


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The embedded store the command-line tools open from the environment."""
    monkeypatch.setenv("ORDO_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("ORDO_AUTH_SECRET", SECRET)
    for name in ("ORDO_DATABASE_URL", "ORDO_AUTH_PUBLIC_KEY", "ORDO_FAILPOINT"):
        monkeypatch.delenv(name, raising=False)
    return Settings.from_env()


@pytest.fixture
def server(local: Settings) -> Iterator[Client]:
    log = build_log(local)
    try:
        with TestClient(build_app(local, log)) as client:
            yield client
    finally:
        log.close()


def test_an_operator_writes_the_prescribers_copy(
    server: Client, people: People, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = issue(server, people, 3, consent=False)
    number = created["prescription_id"]
    assert dispense(server, people, number, (1, 1)).status_code == 201
    out = tmp_path / "ordonnance.pdf"

    assert main(["document", number, "--out", str(out)]) == 0

    pdf = out.read_bytes()
    text = text_of(pdf)
    assert f"Prescripteur : RPPS {people.prescriber}" in text
    assert f"{CONSENT} : NON" in text
    assert MASKED_EXECUTION in " ".join(text.split())  # the patient opposed: nothing dispensed
    assert people.pharmacy not in text
    assert qr_codes_on_first_page(pdf) == [created["qr_payload"]]
    assert f"{out}: ordonnance {number}" in capsys.readouterr().out


def test_an_unknown_prescription_writes_nothing(
    server: Client, people: People, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    number = issue(server, people)["prescription_id"]
    unknown = number[:-1] + ("A" if number[-1] != "A" else "B")
    out = tmp_path / "ordonnance.pdf"

    assert main(["document", unknown, "--out", str(out)]) == 1

    assert not out.exists()
    assert "not_found" in capsys.readouterr().err


def test_a_missing_directory_is_refused_before_anything_is_read(
    local: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nowhere" / "ordonnance.pdf"

    assert main(["document", "ABCDE-FGHJK-MNPQR-STVWX", "--out", str(out)]) == 2

    assert "no such directory" in capsys.readouterr().err
