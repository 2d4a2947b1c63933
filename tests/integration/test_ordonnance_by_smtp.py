"""The ordonnance sent through MSSanté to a real SMTP server (aiosmtpd on a free local port), on
the embedded default and on PostgreSQL: the prescriber sends it to the patient's mailbox and to a
pharmacy's BAL ORG; each e-mail is received once, at the right address, under the Message-ID
its event recorded, with the PDF attached (its text read back with pdfplumber)."""

from __future__ import annotations

import asyncio
import io
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pdfplumber
import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.config import Settings
from adapters.messaging.ordonnance import ordonnance_pdf
from domain.events import Mail, PrescriptionSentToPatient
from domain.identifiers import PrescriptionNumber
from tests.api.test_catalogue_rules_api import line, pack, prescribe
from tests.api.test_products_api import import_sample
from tests.integration.smtp_relay import Relay
from tests.integration.test_mailer_smtp import (
    BAL_ORG,
    POSTMASTER,
    Conversations,
    deliver_everything,
    settings_with,
)
from tests.mails import body_text
from tools import harness
from tools.cast import SECRET, People


@pytest.fixture(params=["sqlite", "postgres"])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, relay: Relay, people: People
) -> Settings:
    directory = tmp_path / "mssante.csv"
    directory.write_text(f"finess,address\n{people.pharmacy},{BAL_ORG}\n")
    env = {
        "ORDO_DATA_DIR": str(tmp_path),
        "ORDO_AUTH_SECRET": SECRET,
        "ORDO_SMTP_URL": relay.url,
        "ORDO_MSSANTE_DIRECTORY": str(directory),
        # No mailer inside the server: the test runs `ordo mailer`'s loop itself, twice.
        "ORDO_MAILER": "off",
    }
    if request.param == "postgres":
        env["ORDO_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    return Settings.from_env(env)


def sent_by_the_prescriber(settings: Settings, people: People) -> tuple[str, list[dict[str, Any]]]:
    """A prescription sent to the patient's mailbox and to the pharmacy: its number and the
    e-mails its events recorded."""
    with TestClient(build_app(settings)) as client:
        body = people.prescription_body(2)
        issued = client.post("/v1/prescriptions", json=body, headers=people.as_prescriber())
        number = issued.json()["prescription_id"]
        to_patient = client.post(
            f"/v1/prescriptions/{number}/send-to-patient",
            json={"message": "Sans papier, comme convenu"},
            headers=people.as_prescriber(),
        )
        assert to_patient.status_code == 202, to_patient.text
        to_pharmacy = client.post(
            f"/v1/prescriptions/{number}/transmissions",
            json={"finess": people.pharmacy, "message": "Sortie ce soir"},
            headers=people.as_prescriber(),
        )
        assert to_pharmacy.status_code == 201, to_pharmacy.text
        events = client.get(
            f"/v1/prescriptions/{number}/events", headers=people.as_patient()
        ).json()["events"]
    return number, [mail for event in events for mail in event["data"].get("mails", [])]


def pdf_text(message: EmailMessage) -> str:
    (part,) = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    assert part.get_content_disposition() == "attachment"
    assert (part.get_filename() or "").endswith(".pdf")
    with pdfplumber.open(io.BytesIO(part.get_content())) as pdf:
        return "\n".join(page.extract_text() for page in pdf.pages)


def test_the_patient_and_the_pharmacy_each_receive_the_pdf_once(
    settings: Settings, relay: Relay, people: People
) -> None:
    number, recorded = sent_by_the_prescriber(settings, people)
    patient_box = f"{people.patient}@patient.mssante.fr"
    assert [m["recipient"] for m in recorded] == [patient_box, BAL_ORG]

    counts = asyncio.run(deliver_everything(settings))

    assert counts == {"pending": 0, "delivered": 2, "failed": 0}
    received = {r.recipients[0]: r for r in relay.handler.received}
    assert len(relay.handler.received) == 2 and set(received) == {patient_box, BAL_ORG}
    for mail in recorded:
        got = received[mail["recipient"]]
        assert got.message_id == mail["message_id"]  # the one the event recorded
        assert (got.sender, got.message["To"]) == (mail["sender"], mail["recipient"])
        assert number in pdf_text(got.message)
    assert "Sans papier" in body_text(received[patient_box].message)

    # The mailer started again follows the same log: nothing is received twice.
    asyncio.run(deliver_everything(settings))
    assert len(relay.handler.received) == 2


def test_a_pdf_that_cannot_be_drawn_holds_back_its_email_alone(
    tmp_path: Path, relay: Relay, people: People
) -> None:
    settings = settings_with(tmp_path, relay, people)
    world = Conversations(settings, people)
    world.exchange()  # two e-mails that can be written
    # An e-mail whose PDF names a prescription this log does not have (a log restored
    # without it, say): its renderer fails.
    orphan = PrescriptionNumber.generate(lambda bits: 987654321 % (1 << bits)).value
    missing = PrescriptionNumber.generate(lambda bits: 123123123 % (1 << bits)).value
    mail = Mail(
        message_id=f"<ordonnance.{orphan}@ordo.mssante.fr>",
        kind="ordonnance",
        sender=POSTMASTER,
        recipient=f"{people.patient}@patient.mssante.fr",
        subject="Votre ordonnance",
        body="",
        prescription_id=orphan,
        remaining=(),
        attachments=(ordonnance_pdf(missing),),
    )
    sent = PrescriptionSentToPatient(
        prescription_id=orphan,
        version=1,
        at=datetime.now(UTC),
        prescriber_rpps=people.prescriber,
        message="",
        mails=(mail,),
    )
    world.log.append([sent])

    counts = asyncio.run(deliver_everything(settings, seconds=3))

    assert counts == {"pending": 1, "delivered": 2, "failed": 0}
    assert mail.message_id not in relay.handler.message_ids()
    with sqlite3.connect(tmp_path / "mailer.sqlite3") as outbox:
        (reason,) = outbox.execute(
            "SELECT reason FROM ordo_mail_outbox WHERE state = 'pending'"
        ).fetchone()
    assert reason == f"could not be written: LookupError: no prescription {missing} in the log"


def test_ordo_mailer_on_its_own_counts_the_pdf_in_units_as_a_server_does(
    settings: Settings, relay: Relay, people: People
) -> None:
    import_sample(settings)
    with TestClient(build_app(settings)) as client:
        levothyrox_25_box_of_30 = pack("3400930065556")
        issued = prescribe(client, people, line(levothyrox_25_box_of_30, 60, 2), kind="standard")
        assert issued.status_code == 201, issued.text
        number = issued.json()["prescription_id"]
        sent = client.post(
            f"/v1/prescriptions/{number}/send-to-patient", json={}, headers=people.as_prescriber()
        )
        assert sent.status_code == 202, sent.text
    env = harness.without_ordo_settings() | {
        "ORDO_DATA_DIR": str(settings.data_dir),
        "ORDO_AUTH_SECRET": SECRET,
        "ORDO_SMTP_URL": relay.url,
        **({"ORDO_DATABASE_URL": settings.database_url} if settings.database_url else {}),
    }

    mailer = subprocess.Popen([sys.executable, "-m", "adapters.cli", "mailer"], env=env)
    try:
        deadline = time.monotonic() + 60
        while not relay.handler.received and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        mailer.send_signal(signal.SIGTERM)
        mailer.wait(15)

    (received,) = relay.handler.received
    assert "60 unités" in pdf_text(received.message)  # 2 boxes of 30 tablets, none given yet
