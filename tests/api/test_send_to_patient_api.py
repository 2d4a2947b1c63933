"""The ordonnance sent through MSSanté (contract.md "The ordonnance as a document, sent through
MSSanté"), through the API, on the embedded default and on PostgreSQL: the prescriber who wrote
it sends the PDF to the patient's Mon espace santé mailbox, or to a pharmacy's BAL ORG with the
transmission. The e-mails land as .eml files here (no ORDO_SMTP_URL); with a real SMTP server in
tests/integration/test_ordonnance_by_smtp.py."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import pytest

from adapters.config import Settings
from tests.api.test_access_log_api import entries_within_a_second, seen
from tests.api.test_conversations_api import BAL_ORG, messaging, outbox
from tests.api.test_document_api import text_of
from tests.api.test_prescriptions_api import assert_problem, issue
from tests.conftest import Client
from tests.mails import body_text
from tools.cast import People

__all__ = ["messaging"]  # the fixture: the app with an MSSanté directory
MESSAGE = "Votre ordonnance, comme convenu en consultation"


def send_to_patient(client: Client, number: str, headers: dict[str, str], body: Any = None) -> Any:
    return client.post(
        f"/v1/prescriptions/{number}/send-to-patient",
        json={"message": MESSAGE} if body is None else body,
        headers=headers,
    )


def history(client: Client, people: People, number: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/prescriptions/{number}/events", headers=people.as_patient())
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def attached_pdf(mail: EmailMessage) -> bytes:
    (part,) = [p for p in mail.walk() if p.get_content_type() == "application/pdf"]
    assert part.get_content_disposition() == "attachment"
    pdf = part.get_content()
    assert isinstance(pdf, bytes) and pdf.startswith(b"%PDF-")
    return pdf


def test_the_prescriber_who_wrote_it_sends_it_to_the_patients_mailbox(
    messaging: Client, settings: Settings, people: People
) -> None:
    number = issue(messaging, people, 2)["prescription_id"]

    response = send_to_patient(messaging, number, people.as_prescriber())

    assert response.status_code == 202, response.text
    assert response.json()["prescription_id"] == number
    assert response.json()["message"] == MESSAGE
    sent = history(messaging, people, number)[-1]
    assert sent["type"] == "PrescriptionSentToPatient"
    assert sent["actor"] == {"role": "prescriber", "rpps": people.prescriber}
    assert sent["data"]["prescriber_rpps"] == people.prescriber
    (recorded,) = sent["data"]["mails"]
    assert recorded["recipient"] == f"{people.patient}@patient.mssante.fr"
    (mail,) = outbox(settings, 1)
    assert mail["To"] == f"{people.patient}@patient.mssante.fr"
    assert mail["Message-ID"] == recorded["message_id"]
    assert mail["Subject"] == f"Votre ordonnance n° {number}"
    for kind in ("plain", "html"):
        content = body_text(mail, kind)
        assert MESSAGE in content and "pas pu être remis" not in content
    text = text_of(attached_pdf(mail))
    assert number in text and "Paracétamol" in text


def test_each_sending_is_its_own_email(
    messaging: Client, settings: Settings, people: People
) -> None:
    number = issue(messaging, people)["prescription_id"]
    for _ in range(2):
        assert send_to_patient(messaging, number, people.as_prescriber()).status_code == 202

    mails = outbox(settings, 2)

    assert len({m["Message-ID"] for m in mails}) == 2
    assert [e["type"] for e in history(messaging, people, number)][-2:] == [
        "PrescriptionSentToPatient",
        "PrescriptionSentToPatient",
    ]


def test_another_prescriber_learns_nothing(messaging: Client, people: People) -> None:
    number = issue(messaging, people)["prescription_id"]

    for unknown in (number, "0000-0000-0000", "not-a-number"):
        headers = people.as_prescriber(people.other_prescriber) if unknown == number else None
        response = send_to_patient(messaging, unknown, headers or people.as_prescriber())
        assert_problem(response, 404, "not_found")


@pytest.mark.parametrize("role", ["pharmacist", "patient", "insurer"])
def test_only_a_prescriber_sends_it(messaging: Client, people: People, role: str) -> None:
    number = issue(messaging, people)["prescription_id"]
    headers = {
        "pharmacist": people.as_pharmacist(),
        "patient": people.as_patient(),
        "insurer": people.as_insurer(),
    }[role]

    assert_problem(send_to_patient(messaging, number, headers), 403, "forbidden")
    assert history(messaging, people, number)[-1]["type"] == "PrescriptionIssued"


def test_the_access_log_shows_the_sending_and_the_refusals(
    messaging: Client, people: People
) -> None:
    number = issue(messaging, people)["prescription_id"]

    send_to_patient(messaging, number, people.as_pharmacist())
    send_to_patient(messaging, number, people.as_prescriber())

    entries = entries_within_a_second(messaging, people, number, 2)
    assert [(action, role, status) for action, role, _, _, status in seen(entries)] == [
        ("send-to-patient", "pharmacist", 403),
        ("send-to-patient", "prescriber", 202),
    ]


def test_a_cancelled_prescription_is_not_sent(messaging: Client, people: People) -> None:
    number = issue(messaging, people)["prescription_id"]
    cancelled = messaging.post(
        f"/v1/prescriptions/{number}/cancel",
        json={"reason": "erreur de posologie"},
        headers=people.as_prescriber(),
    )
    assert cancelled.status_code == 200

    response = send_to_patient(messaging, number, people.as_prescriber())

    assert_problem(response, 409, "prescription_cancelled")


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 202), ({"message": "x" * 2001}, 400), ({"message": "ok", "to": "x@y.fr"}, 400)],
)
def test_the_message_is_optional_and_nothing_else_is_taken(
    messaging: Client, people: People, body: dict[str, Any], status: int
) -> None:
    number = issue(messaging, people)["prescription_id"]

    response = send_to_patient(messaging, number, people.as_prescriber(), body)

    assert response.status_code == status, response.text


# --- the prescriber's transmission carries the PDF to the BAL ORG ----------------------------


def transmit_as_prescriber(client: Client, people: People, number: str, finess: str) -> Any:
    response = client.post(
        f"/v1/prescriptions/{number}/transmissions",
        json={"finess": finess, "message": "Sortie d'hospitalisation ce soir"},
        headers=people.as_prescriber(),
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_the_prescribers_transmission_sends_the_pdf_to_the_bal_org(
    messaging: Client, settings: Settings, people: People
) -> None:
    number = issue(messaging, people, 2)["prescription_id"]

    sent = transmit_as_prescriber(messaging, people, number, people.pharmacy)

    assert sent["pharmacy_mailbox"] is True and sent["conversation_id"] is None
    transmitted = history(messaging, people, number)[-1]
    assert transmitted["data"]["sent_by"] == "prescriber"
    assert [m["recipient"] for m in transmitted["data"]["mails"]] == [BAL_ORG]
    (mail,) = outbox(settings, 1)
    assert mail["To"] == BAL_ORG
    assert people.prescriber in body_text(mail)
    assert number in text_of(attached_pdf(mail))


def test_a_pharmacy_without_bal_org_gets_no_email_from_the_prescriber(
    messaging: Client, people: People
) -> None:
    number = issue(messaging, people)["prescription_id"]

    sent = transmit_as_prescriber(messaging, people, number, people.other_pharmacy)

    assert sent["pharmacy_mailbox"] is False
    assert history(messaging, people, number)[-1]["data"]["mails"] == []
