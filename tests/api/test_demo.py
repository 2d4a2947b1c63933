"""`ordo demo` plays a whole day through the public API, and what it says it did is what the API
shows afterwards, read back by another app on the same store."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any, Required, TypedDict, Unpack

import pytest
from litestar.testing import AsyncTestClient, TestClient

from adapters import demo
from adapters.auth import sign_token
from adapters.bootstrap import build_app, build_log
from adapters.cli import main
from adapters.config import Settings
from tests.conftest import Client

SECRET = "demo-test-secret-0123456789abcdef"
SMALL_DAY = 8


@pytest.fixture
def settings(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ORDO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ORDO_AUTH_SECRET", SECRET)
    for name in ("ORDO_DATABASE_URL", "ORDO_AUTH_PUBLIC_KEY", "ORDO_FAILPOINT"):
        monkeypatch.delenv(name, raising=False)
    return Settings.from_env()


@pytest.fixture
def report(settings: Settings) -> demo.Report:
    return demo.run(demo.DemoOptions(prescriptions=SMALL_DAY, seed=3), settings)


@pytest.fixture
def reader(settings: Settings) -> Iterator[Client]:
    """Another app on the same data dir: what the demo wrote must be durable and readable."""
    log = build_log(settings)
    try:
        with TestClient(app=build_app(settings, log)) as client:
            yield client
    finally:
        log.close()


class Claims(TypedDict, total=False):
    """Who a token names (the keywords of sign_token)."""

    role: Required[str]
    rpps: str
    finess: str
    ins: str


def read(client: Client, number: str, **claims: Unpack[Claims]) -> dict[str, Any]:
    token = sign_token(SECRET, subject="test", **claims)
    response = client.get(
        f"/v1/prescriptions/{number}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def as_pharmacist(report: demo.Report) -> Claims:
    pharmacy = report.cast.pharmacies[0]
    return {"role": "pharmacist", "rpps": pharmacy.pharmacists[0], "finess": pharmacy.finess}


def test_the_command_plays_the_day_and_prints_the_summary(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--prescriptions", str(SMALL_DAY)]) == 0

    out = capsys.readouterr().out
    assert "issue prescription" in out
    assert out.count("curl -s -H 'Authorization: Bearer ") == 3
    assert (settings.data_dir / "ordo.sqlite3").exists()


def test_what_the_demo_reports_is_what_the_api_shows(report: demo.Report, reader: Client) -> None:
    views = [read(reader, p.prescription_id, **as_pharmacist(report)) for p in report.played]
    facts = demo.day_facts(report)
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


def substitutions(views: list[dict[str, Any]]) -> int:
    """Dispensed lines whose product differs from the one prescribed on that line."""
    return sum(
        line["product"] != view["lines"][line["line_no"] - 1]["product"]
        for view in views
        for dispensation in view["dispensations"]
        for line in dispensation["lines"]
    )


def test_the_showcase_is_masked_for_the_prescriber_only(
    report: demo.Report, reader: Client
) -> None:
    showcase = report.showcase()
    number, plan = showcase.prescription_id, showcase.plan

    as_prescriber = read(reader, number, role="prescriber", rpps=plan.prescriber)
    as_patient = read(reader, number, role="patient", ins=plan.patient)

    assert as_prescriber["execution_visible"] is False
    assert as_prescriber["dispensations"] == []
    assert {d["finess"] for d in as_patient["dispensations"]} == {
        v.pharmacy.finess for v in plan.visits
    }
    assert len(plan.visits) == 2


def test_the_day_is_deterministic_for_a_seed() -> None:
    def day(seed: int) -> tuple[demo.Cast, list[demo.Plan]]:
        rng = random.Random(seed)
        cast = demo.make_cast(rng)
        return cast, demo.plan_day(rng, cast, 40)

    cast, plans = day(1)
    assert day(1) == (cast, plans)
    assert day(2) != (cast, plans)
    assert (len(cast.prescribers), len(cast.patients), len(cast.pharmacies)) == (5, 30, 6)
    assert any(ins[5:7] in ("2A", "2B") for ins in cast.patients)
    assert all(
        m.duration_days <= 28 and plan.kind == "secure"
        for plan in plans
        for m in plan.medicines
        if m.narcotic
    )


async def test_an_api_error_names_the_call_and_the_problem(settings: Settings) -> None:
    log = build_log(settings)
    try:
        app = build_app(settings, log)
        async with AsyncTestClient(app=app, base_url=demo.EMBEDDED_URL) as client:
            api = demo.Api(client, demo.Tokens("not-the-secret-the-server-was-given-at-all"))
            with pytest.raises(demo.ApiError) as error:
                await demo.fill(api, demo.DemoOptions(prescriptions=1))
    finally:
        log.close()

    assert error.value.status == 401
    assert "issue prescription: POST /v1/prescriptions answered 401 unauthenticated" in str(
        error.value
    )
    assert "ORDO_AUTH_SECRET" in str(error.value)


def test_an_unreachable_server_exits_non_zero(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--url", "http://127.0.0.1:9", "--prescriptions", "1"]) == 1

    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err
