"""`scripts/demo` plays a whole day through the API of a real `ordo serve`, and what it prints
and says it did is what that server shows afterwards."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Required, TypedDict, Unpack

import httpx
import pytest

from adapters.auth import sign_token
from adapters.config import Settings
from tests.api.test_document_api import qr_codes_on_first_page, text_of
from tools import harness
from tools.demo import plan
from tools.demo.cli import DemoOptions, main, run
from tools.demo.client import Api, ApiError, Tokens
from tools.demo.day import Report, day_facts, fill

SECRET = "demo-test-secret-0123456789abcdef"
SMALL_DAY = 8


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The settings the server and the demo share: one data directory, one secret."""
    data_dir = tmp_path_factory.mktemp("demo")
    return harness.without_ordo_settings() | {
        "ORDO_DATA_DIR": str(data_dir),
        "ORDO_AUTH_SECRET": SECRET,
        "ORDO_CATALOGUE_REFRESH_SECONDS": "0.5",
    }


@pytest.fixture(scope="module")
def server(env: dict[str, str]) -> Iterator[harness.Server]:
    with harness.serving(env) as server:
        yield server


@pytest.fixture(scope="module")
def report(env: dict[str, str], server: harness.Server) -> Report:
    return run(DemoOptions(server.base_url, SMALL_DAY, seed=3), Settings.from_env(env))


@pytest.fixture
def reader(server: harness.Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        yield client


class Claims(TypedDict, total=False):
    """Who a token names (the keywords of sign_token)."""

    role: Required[str]
    rpps: str
    finess: str
    ins: str


def read(client: httpx.Client, number: str, **claims: Unpack[Claims]) -> dict[str, Any]:
    token = sign_token(SECRET, subject="test", **claims)
    response = client.get(
        f"/v1/prescriptions/{number}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def as_pharmacist(report: Report) -> Claims:
    pharmacy = report.cast.pharmacies[0]
    return {"role": "pharmacist", "rpps": pharmacy.pharmacists[0], "finess": pharmacy.finess}


def test_the_command_plays_the_day_and_prints_the_summary(
    env: dict[str, str], server: harness.Server
) -> None:
    command = [sys.executable, "-m", "tools.demo", "--url", server.base_url]
    done = subprocess.run(
        [*command, "--prescriptions", str(SMALL_DAY)],
        env=env,
        cwd=harness.ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "scripts/demo: API calls" in done.stdout
    assert "issue prescription" in done.stdout
    assert "narcotic in fractions" in done.stdout
    assert done.stdout.count("curl -s -H 'Authorization: Bearer ") == 3
    assert f"{server.base_url}/v1/prescriptions/" in done.stdout
    assert list(Path(env["ORDO_DATA_DIR"]).glob("ordonnance-*.pdf"))


def test_the_demo_says_where_its_sample_pdf_is(
    env: dict[str, str],
    server: harness.Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ORDO_DATA_DIR", env["ORDO_DATA_DIR"])
    monkeypatch.setenv("ORDO_AUTH_SECRET", SECRET)

    assert main(["--url", server.base_url, "--prescriptions", "1"]) == 0

    out = capsys.readouterr().out
    found = re.search(r"Sample ordonnance \(PDF, the patient's copy\): (\S+\.pdf)", out)
    assert found, out
    sample = Path(found[1])
    assert sample.parent == Path(env["ORDO_DATA_DIR"])
    text = text_of(sample.read_bytes())
    assert "Ordonnance sécurisée" in text and "(vingt-huit jours)" in text
    number = sample.stem.removeprefix("ordonnance-")
    assert qr_codes_on_first_page(sample.read_bytes()) == [number]
    assert f"ordo document {number} --out FILE.pdf" in out


def test_what_the_demo_reports_is_what_the_api_shows(report: Report, reader: httpx.Client) -> None:
    views = [read(reader, p.prescription_id, **as_pharmacist(report)) for p in report.played]
    facts = day_facts(report)
    dispensations = [d for view in views for d in view["dispensations"]]

    assert len(views) == facts["prescriptions"] == SMALL_DAY
    assert len(dispensations) == facts["dispensations"] == report.counts["dispense"]
    assert sum(d["billed"] for d in dispensations) == facts["billed dispensations"]
    assert facts["billed dispensations"] == report.counts["bill"]
    assert (
        sum(line["quantity"] for d in dispensations for line in d["lines"])
        == facts["packs dispensed"]
    )
    assert [v["status"] for v in views].count("cancelled") == facts["cancelled"] == 1
    assert substitutions(views) == facts["generic substitutions (lines)"] > 0
    assert (
        sum(len({d["finess"] for d in v["dispensations"]}) > 1 for v in views)
        == facts["dispensed in two pharmacies"]
    )
    assert (
        sum(not v["execution_view_consent"] for v in views)
        == facts["patient opposes the prescriber's view"]
    )
    assert any(v["kind"] == "secure" and v["lines"][0]["narcotic"] for v in views)
    assert report.sample_document is not None
    assert report.sample_document.read_bytes().startswith(b"%PDF-")


def substitutions(views: list[dict[str, Any]]) -> int:
    """Dispensed lines whose product differs from the one prescribed on that line."""
    return sum(
        line["product"] != view["lines"][line["line_no"] - 1]["product"]
        for view in views
        for dispensation in view["dispensations"]
        for line in dispensation["lines"]
    )


def test_the_counter_scenes_are_what_the_api_recorded(report: Report, reader: httpx.Client) -> None:
    shown = {scene.rule: scene.prescription_id for scene in report.rules}
    fractions = read(reader, shown["narcotic in fractions"], **as_pharmacist(report))
    withdrawn = read(
        reader, shown["withdrawal of a dispensing recorded in error"], **as_pharmacist(report)
    )

    assert len(report.rules) == 5
    assert [line["remaining"] for line in fractions["lines"]] == [3]
    assert withdrawn["dispensations"][0]["withdrawn"] is True
    assert withdrawn["lines"][0]["remaining"] == 3


def test_the_showcase_is_masked_for_the_prescriber_only(
    report: Report, reader: httpx.Client
) -> None:
    showcase = report.showcase()
    number, showcase_plan = showcase.prescription_id, showcase.plan

    as_prescriber = read(reader, number, role="prescriber", rpps=showcase_plan.prescriber)
    as_patient = read(reader, number, role="patient", ins=showcase_plan.patient)

    assert as_prescriber["execution_visible"] is False
    assert as_prescriber["dispensations"] == []
    assert {d["finess"] for d in as_patient["dispensations"]} == {
        v.pharmacy.finess for v in showcase_plan.visits
    }
    assert len(showcase_plan.visits) == 2


def test_the_day_is_deterministic_for_a_seed() -> None:
    def day(seed: int) -> tuple[plan.Cast, list[plan.Plan]]:
        rng = random.Random(seed)
        cast = plan.make_cast(rng)
        return cast, plan.plan_day(rng, cast, 40)

    cast, plans = day(1)
    assert day(1) == (cast, plans)
    assert day(2) != (cast, plans)
    assert (len(cast.prescribers), len(cast.patients), len(cast.pharmacies)) == (5, 30, 6)
    assert any(ins[5:7] in ("2A", "2B") for ins in cast.patients)
    assert all(
        m.duration_days <= 28 and p.kind == "secure"
        for p in plans
        for m in p.medicines
        if m.narcotic
    )


async def test_an_api_error_names_the_call_and_the_problem(server: harness.Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        api = Api(client, Tokens("not-the-secret-the-server-was-given-at-all"))
        with pytest.raises(ApiError) as error:
            await fill(api, prescriptions=1, seed=1)

    assert error.value.status == 401
    assert "issue prescription: POST /v1/prescriptions answered 401 unauthenticated" in str(
        error.value
    )
    assert "ORDO_AUTH_SECRET" in str(error.value)


def test_an_unreachable_server_exits_non_zero(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ORDO_DATA_DIR", env["ORDO_DATA_DIR"])
    monkeypatch.setenv("ORDO_AUTH_SECRET", SECRET)

    assert main(["--url", "http://127.0.0.1:9", "--prescriptions", "1"]) == 1

    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err


def test_a_day_without_prescriptions_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--prescriptions", "0"]) == 2

    assert "--prescriptions must be at least 1" in capsys.readouterr().err
