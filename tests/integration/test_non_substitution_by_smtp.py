"""The pharmacist's "non substituable (MTE-PH)" tells the prescriber through MSSanté: a real SMTP
server (aiosmtpd on a free local port) receives the e-mail once, at the prescriber's address of
the directory (an `rpps,address` row), under the Message-ID the dispensing's event recorded; on
the embedded default and on PostgreSQL, with the catalogue sample imported (Levothyrox)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.config import Settings
from tests.api.test_products_api import import_sample
from tests.integration.smtp_relay import Relay
from tests.integration.test_mailer_smtp import deliver_everything
from tests.mails import body_text
from tools.cast import SECRET, People

PRESCRIBER_BOX = "dr.martin@medecin.mssante.fr"
LEVOTHYROX = {"system": "CIP13", "code": "3400930065556", "label": "Levothyrox 25 µg"}


@pytest.fixture(params=["sqlite", "postgres"])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, relay: Relay, people: People
) -> Settings:
    directory = tmp_path / "mssante.csv"
    directory.write_text(f"rpps,address\n{people.prescriber},{PRESCRIBER_BOX}\n")
    env = {
        "ORDO_DATA_DIR": str(tmp_path),
        "ORDO_AUTH_SECRET": SECRET,
        "ORDO_SMTP_URL": relay.url,
        "ORDO_MSSANTE_DIRECTORY": str(directory),
        "ORDO_MAILER": "off",  # the test runs `ordo mailer`'s loop itself
    }
    if request.param == "postgres":
        env["ORDO_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    return Settings.from_env(env)


def kept_by_the_pharmacist(settings: Settings, people: People) -> list[dict[str, str]]:
    """Levothyrox prescribed, then given with MTE-PH: the e-mails the events recorded."""
    import_sample(settings)
    with TestClient(build_app(settings)) as client:
        body = {
            "patient": {"ins": people.patient},
            "execution_view_consent": True,
            "lines": [
                {"product": LEVOTHYROX, "quantity": 3, "dosage": "1 par jour", "duration_days": 90}
            ],
        }
        issued = client.post("/v1/prescriptions", json=body, headers=people.as_prescriber())
        assert issued.status_code == 201, issued.text
        number = issued.json()["prescription_id"]
        given = client.post(
            f"/v1/prescriptions/{number}/dispensations",
            json={"lines": [{"line_no": 1, "quantity": 1, "non_substitution": "MTE-PH"}]},
            headers=people.as_pharmacist(),
        )
        assert given.status_code == 201, given.text
        events = client.get(
            f"/v1/prescriptions/{number}/events", headers=people.as_patient()
        ).json()["events"]
    return [mail for event in events for mail in event["data"].get("mails", [])]


def test_the_prescriber_receives_the_mte_ph_notice_once(
    settings: Settings, relay: Relay, people: People
) -> None:
    (recorded,) = kept_by_the_pharmacist(settings, people)

    counts = asyncio.run(deliver_everything(settings))

    assert counts == {"pending": 0, "delivered": 1, "failed": 0}
    (got,) = relay.handler.received
    assert got.recipients == [PRESCRIBER_BOX]
    assert got.message_id == recorded["message_id"]
    # The mailer's encoded Subject is folded past 75 characters: parsed with a leading space.
    assert str(got.message["Subject"]).strip() == recorded["subject"]
    text = body_text(got.message)
    assert "« non substituable (MTE-PH) »" in text
    assert "ligne 1 : Levothyrox 25 µg, 1 boîte(s)" in text

    asyncio.run(deliver_everything(settings))  # started again: nothing is received twice
    assert len(relay.handler.received) == 1
