"""Contract v1.1, "Audit and time travel": who called a prescription, on the embedded default
and on PostgreSQL. Every call on its own endpoints by anyone but its patient is recorded,
refused ones included, within 1 second of its answer."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from litestar.testing import TestClient

from adapters.access.cli import prune
from adapters.access.store import TABLE, AccessEntry, open_access_log
from adapters.bootstrap import build_app
from adapters.config import Settings, schema_of
from domain.identifiers import PrescriptionNumber
from tests.conftest import Client
from tools.cast import SECRET, People


def issue(client: Client, people: People, quantity: int = 3) -> str:
    response = client.post(
        "/v1/prescriptions", json=people.prescription_body(quantity), headers=people.as_prescriber()
    )
    assert response.status_code == 201, response.text
    number: str = response.json()["prescription_id"]
    return number


def access_log(client: Client, number: str, headers: dict[str, str], **query: Any) -> Any:
    return client.get(f"/v1/prescriptions/{number}/access-log", headers=headers, params=query)


def entries_within_a_second(client: Client, people: People, number: str, count: int) -> list[Any]:
    """The insurer's view of the log once it holds `count` entries; fails after 1 s."""
    deadline = time.monotonic() + 1.0
    while True:
        items: list[Any] = access_log(client, number, people.as_insurer()).json()["items"]
        if len(items) >= count or time.monotonic() > deadline:
            assert len(items) == count, items
            return items
        time.sleep(0.05)


def seen(items: list[Any]) -> list[tuple[str, str, str | None, str | None, int]]:
    """(action, role, rpps, finess, status), oldest first."""
    return [(i["action"], i["role"], i["rpps"], i["finess"], i["status"]) for i in reversed(items)]


def test_each_action_appears_with_the_callers_identity_within_a_second(
    client: Client, people: People
) -> None:
    number = issue(client, people)
    url = f"/v1/prescriptions/{number}"
    pharmacist = people.as_pharmacist()
    one_pack = {"lines": [{"line_no": 1, "quantity": 1}]}
    billed, withdrawn = (
        f"{url}/dispensations/"
        + client.post(f"{url}/dispensations", json=one_pack, headers=pharmacist).json()[
            "dispensation_id"
        ]
        for _ in range(2)
    )
    bill = {"invoice_number": "F-1", "lines": [{"line_no": 1, "quantity": 1, "amount_cents": 1}]}
    calls = [
        client.get(url, headers=pharmacist),
        client.get(f"{url}/qr.svg", headers=pharmacist),
        client.get(f"{url}/dispensable", headers=pharmacist),
        client.post(f"{billed}/billing", json=bill, headers=pharmacist),
        client.post(f"{withdrawn}/withdrawal", json={"reason": "erreur"}, headers=pharmacist),
        client.post(
            f"{url}/adaptations",
            json={
                "line_no": 1,
                "description": "Boîte de 28 au lieu de 30",
                "prescriber_rpps": people.prescriber,
                "agreed_on": datetime.now(UTC).date().isoformat(),
            },
            headers=pharmacist,
        ),
        client.get(f"{url}/events", headers=people.as_insurer()),
        client.get(url, headers=people.as_prescriber()),
        client.post(f"{url}/cancel", json={"reason": "erreur"}, headers=people.as_prescriber()),
    ]

    items = entries_within_a_second(client, people, number, len(calls) + 2)

    ph = ("pharmacist", people.pharmacist, people.pharmacy)
    assert seen(items) == [
        ("dispensations", *ph, 201),
        ("dispensations", *ph, 201),
        ("read", *ph, 200),
        ("qr.svg", *ph, 200),
        ("dispensable", *ph, 200),
        ("billing", *ph, 201),
        ("withdrawal", *ph, 201),
        ("adaptations", *ph, 201),
        ("events", "insurer", None, None, 200),
        ("read", "prescriber", people.prescriber, None, 200),
        ("cancel", "prescriber", people.prescriber, None, 200),
    ]
    assert [call.status_code for call in calls] == [item[-1] for item in seen(items)[2:]]
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)


def test_the_patients_own_calls_are_not_recorded_but_another_patients_are(
    client: Client, people: People
) -> None:
    number = issue(client, people)
    url = f"/v1/prescriptions/{number}"
    own = people.as_patient()
    client.get(url, headers=own)
    client.get(f"{url}/events", headers=own)
    client.post(f"{url}/transmissions", json={"finess": people.pharmacy}, headers=own)
    client.get(f"{url}/dispensable", headers=own)  # refused (403), but on their own
    client.get(url, headers=people.as_patient(people.corsican_patient))  # 404

    (entry,) = entries_within_a_second(client, people, number, 1)

    assert seen([entry]) == [("read", "patient", None, None, 404)]


def test_refused_calls_appear_with_their_status(client: Client, people: People) -> None:
    number = issue(client, people, quantity=1)
    url = f"/v1/prescriptions/{number}"
    too_much = {"lines": [{"line_no": 1, "quantity": 5}]}
    calls = [
        client.get(url, headers=people.as_prescriber(people.other_prescriber)),
        client.post(f"{url}/dispensations", json=too_much, headers=people.as_pharmacist()),
        client.post(f"{url}/dispensations", content=b"{not json", headers=people.as_pharmacist()),
        client.post(f"{url}/dispensations", content=b" " * 100_000, headers=people.as_pharmacist()),
        client.post(f"{url}/cancel", json={"reason": "x"}, headers=people.as_pharmacist()),
        client.get(f"{url}/events", headers=people.as_pharmacist()),
        client.get(f"{url}?as_of=yesterday", headers=people.as_pharmacist()),
    ]

    items = entries_within_a_second(client, people, number, len(calls))

    assert [(action, status) for action, *_, status in seen(items)] == [
        ("read", 404),
        ("dispensations", 409),
        ("dispensations", 400),
        ("dispensations", 413),
        ("cancel", 403),
        ("events", 403),
        ("read", 422),
    ]
    assert [item[-1] for item in seen(items)] == [call.status_code for call in calls]
    # Refused before the route asked who called (the body): named by the token all the same.
    assert {item[1:4] for item in seen(items)[2:4]} == {
        ("pharmacist", people.pharmacist, people.pharmacy)
    }


def test_the_log_is_for_its_patient_and_the_insurer(client: Client, people: People) -> None:
    number = issue(client, people)

    assert access_log(client, number, people.as_patient()).status_code == 200
    assert access_log(client, number, people.as_insurer()).status_code == 200
    other = access_log(client, number, people.as_patient(people.corsican_patient))
    assert (other.status_code, other.json()["code"]) == (404, "not_found")
    for professional in (people.as_prescriber(), people.as_pharmacist()):
        refused = access_log(client, number, professional)
        assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert access_log(client, "ABCDE-ABCDE-ABCDE-ABCDE", people.as_insurer()).status_code == 404


def test_the_log_is_paged_newest_first(client: Client, people: People) -> None:
    number = issue(client, people)
    for _ in range(5):
        client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist())
    everything = entries_within_a_second(client, people, number, 5)

    pages, cursor = [], None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = access_log(client, number, people.as_patient(), **query).json()
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert [len(page) for page in pages] == [2, 2, 1]
    assert [item for page in pages for item in page] == everything
    bad = access_log(client, number, people.as_patient(), cursor="not-a-cursor")
    assert bad.status_code in {400, 422} and bad.json()["code"] == "invalid_request"


def test_lists_and_the_log_itself_write_no_entries(client: Client, people: People) -> None:
    number = issue(client, people)
    client.get("/v1/prescribers/me/prescriptions", headers=people.as_prescriber())
    client.get("/v1/patients/me/prescriptions", headers=people.as_patient())
    client.get(f"/v1/prescriptions/{number}", headers=people.as_insurer())

    assert len(entries_within_a_second(client, people, number, 1)) == 1
    time.sleep(0.5)
    assert len(access_log(client, number, people.as_insurer()).json()["items"]) == 1


def stored_rows(settings: Settings) -> list[tuple[Any, ...]]:
    select = f"SELECT * FROM {TABLE}"
    if settings.database_url is None:
        with sqlite3.connect(settings.data_dir / "access-log.sqlite3") as conn:
            return conn.execute(select).fetchall()
    schema = schema_of(settings.database_url)
    server = settings.database_url.partition("?")[0]
    with psycopg.connect(server) as conn:
        return conn.execute(f'SELECT * FROM "{schema}".{TABLE}').fetchall()


def test_no_patient_identifier_is_stored(
    client: Client, people: People, settings: Settings
) -> None:
    number = issue(client, people)
    client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist())
    client.get(f"/v1/prescriptions/{number}", headers=people.as_patient(people.corsican_patient))
    entries_within_a_second(client, people, number, 2)

    rows = stored_rows(settings)

    assert len(rows) == 2
    text = repr(rows)
    assert people.patient not in text and people.corsican_patient not in text
    assert people.patient[:13] not in text and people.corsican_patient[:13] not in text


@pytest.mark.parametrize("days", [30, 3650])
def test_prune_deletes_what_is_older_than_the_retention(settings: Settings, days: int) -> None:
    settings = msgspec.structs.replace(settings, access_log_retention_days=days)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    number = PrescriptionNumber.generate().value
    store = open_access_log(settings.database_url, settings.data_dir)
    ages = [days + 1, days, 1]
    store.insert([entry(number, now - timedelta(days=age)) for age in ages])

    try:
        assert prune(settings, now) == 1
        kept = store.page(number, None, 10)
    finally:
        store.close()
    assert [(now - stored.entry.at).days for stored in kept] == [1, days]


def test_the_cli_prunes_with_the_default_retention(tmp_path: Path, capsys: Any) -> None:
    from adapters.cli import main  # noqa: PLC0415

    number = PrescriptionNumber.generate().value
    store = open_access_log(None, tmp_path)
    now = datetime.now(UTC)
    store.insert([entry(number, now - timedelta(days=3651)), entry(number, now)])

    with pytest.MonkeyPatch.context() as env:
        env.setenv("ORDO_DATA_DIR", str(tmp_path))
        env.delenv("ORDO_DATABASE_URL", raising=False)
        env.delenv("ORDO_ACCESS_LOG_RETENTION_DAYS", raising=False)
        assert main(["access-log", "prune"]) == 0

    assert "1 entries older than 3650 days deleted" in capsys.readouterr().out
    assert len(store.page(number, None, 10)) == 1


def entry(number: str, at: datetime) -> AccessEntry:
    return AccessEntry(
        prescription_id=number,
        at=at,
        role="insurer",
        rpps=None,
        finess=None,
        subject="caisse",
        action="read",
        status=200,
    )


def test_with_the_access_log_off_nothing_is_recorded(tmp_path: Path, people: People) -> None:
    settings = Settings.from_env(
        {"ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH_SECRET": SECRET, "ORDO_ACCESS_LOG": "false"}
    )
    with TestClient(build_app(settings)) as client:
        number = issue(client, people)
        client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist())
        time.sleep(0.5)

        assert access_log(client, number, people.as_insurer()).json()["items"] == []
