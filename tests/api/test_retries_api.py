"""Every POST is retry-safe with an `Idempotency-Key`, on the embedded default and on PostgreSQL:
a retry gets the first answer and records nothing more; the key with another body is refused.
(Dispensing and billing: tests/api/test_prescriptions_api.py and test_billing_api.py.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest

from tests.api.test_conversations_api import messaging, transmit
from tests.api.test_fhir_prescribing import FHIR_JSON, assert_outcome
from tests.api.test_lists_api import eventually
from tests.api.test_prescriptions_api import assert_problem, dispense, issue
from tests.conftest import Client
from tools.cast import People

__all__ = ["messaging"]  # the fixture: the app with an MSSanté directory


class Asked(NamedTuple):
    """A POST to retry: where, as whom, its body and another body under the same key, and what
    it records (counted)."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    other: dict[str, Any]
    recorded: Callable[[], int]


def prescription_events(client: Client, people: People, number: str) -> Callable[[], int]:
    def count() -> int:
        response = client.get(f"/v1/prescriptions/{number}/events", headers=people.as_patient())
        return len(response.json()["events"])

    return count


def parameters(reason: str) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": reason}]}


def dispensed(client: Client, people: People) -> tuple[str, str]:
    number = issue(client, people, 3)["prescription_id"]
    receipt = dispense(client, people, number, (1, 1)).json()
    return number, receipt["dispensation_id"]


def cancel(client: Client, people: People) -> Asked:
    number = issue(client, people)["prescription_id"]
    return Asked(
        f"/v1/prescriptions/{number}/cancel",
        people.as_prescriber(),
        {"reason": "erreur de patient"},
        {"reason": "doublon"},
        prescription_events(client, people, number),
    )


def withdrawal(client: Client, people: People) -> Asked:
    number, dispensation_id = dispensed(client, people)
    return Asked(
        f"/v1/prescriptions/{number}/dispensations/{dispensation_id}/withdrawal",
        people.as_pharmacist(),
        {"reason": "saisie sur la mauvaise ordonnance"},
        {"reason": "mauvais patient"},
        prescription_events(client, people, number),
    )


def adaptation(client: Client, people: People) -> Asked:
    number = issue(client, people)["prescription_id"]
    body = {
        "line_no": 1,
        "description": "Boîte de 28 au lieu de 30, posologie inchangée",
        "prescriber_rpps": people.prescriber,
        "agreed_on": datetime.now(UTC).date().isoformat(),
    }
    return Asked(
        f"/v1/prescriptions/{number}/adaptations",
        people.as_pharmacist(),
        body,
        {**body, "description": "Boîte de 90"},
        prescription_events(client, people, number),
    )


def transmission(client: Client, people: People, headers: dict[str, str]) -> Asked:
    number = issue(client, people)["prescription_id"]
    return Asked(
        f"/v1/prescriptions/{number}/transmissions",
        headers,
        {"finess": people.pharmacy, "message": "Je passe à 18 h"},
        {"finess": people.pharmacy, "message": "Je passe demain"},
        prescription_events(client, people, number),
    )


def sending_to_patient(client: Client, people: People) -> Asked:
    number = issue(client, people)["prescription_id"]
    return Asked(
        f"/v1/prescriptions/{number}/send-to-patient",
        people.as_prescriber(),
        {"message": "Votre ordonnance"},
        {"message": "Votre ordonnance, corrigée"},
        prescription_events(client, people, number),
    )


def message(client: Client, people: People) -> Asked:
    number = issue(client, people)["prescription_id"]
    conversation_id = transmit(client, people, number, people.pharmacy)["conversation_id"]
    url = f"/v1/conversations/{conversation_id}/messages"

    def messages() -> int:
        """The messages of the conversation (markers aside), once the projections saw a marker
        posted last."""
        marker = {"subject": "marqueur", "body": str(datetime.now(UTC))}
        client.post(url, json=marker, headers=people.as_patient())
        mine = eventually(
            lambda: client.get("/v1/patients/me/conversations", headers=people.as_patient()),
            lambda r: marker["body"] in r.text,
        ).json()["items"][0]
        return sum(m["subject"] != marker["subject"] for m in mine["messages"])

    return Asked(
        url,
        people.as_pharmacist(),
        {"subject": "Votre commande", "body": "Disponible demain"},
        {"subject": "Votre commande", "body": "Disponible lundi"},
        messages,
    )


def fhir_cancel(client: Client, people: People) -> Asked:
    number = issue(client, people)["prescription_id"]
    return Asked(
        f"/fhir/R4/MedicationRequest/{number}-1/$cancel",
        {**people.as_prescriber(), **FHIR_JSON},
        parameters("erreur de patient"),
        parameters("doublon"),
        prescription_events(client, people, number),
    )


def fhir_withdrawal(client: Client, people: People) -> Asked:
    number, dispensation_id = dispensed(client, people)
    url = f"/fhir/R4/MedicationDispense/{dispensation_id}-1/$withdraw"
    headers = {**people.as_pharmacist(), **FHIR_JSON}
    # A dispensation's id names no prescription: wait until the projections know it.
    another_pharmacy = {**people.as_pharmacist(people.other_pharmacy), **FHIR_JSON}
    eventually(
        lambda: client.post(url, json=parameters("essai"), headers=another_pharmacy),
        lambda response: "no MedicationDispense" not in response.text,
    )
    return Asked(
        url,
        headers,
        parameters("mauvaise ordonnance"),
        parameters("mauvais patient"),
        prescription_events(client, people, number),
    )


OPERATIONS: dict[str, Callable[[Client, People], Asked]] = {
    "cancel": cancel,
    "withdrawal": withdrawal,
    "adaptation": adaptation,
    "transmission by the patient": lambda c, p: transmission(c, p, p.as_patient()),
    "transmission by the prescriber": lambda c, p: transmission(c, p, p.as_prescriber()),
    "send-to-patient": sending_to_patient,
    "message": message,
    "FHIR $cancel": fhir_cancel,
    "FHIR $withdraw": fhir_withdrawal,
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_retry_with_the_same_key_gets_the_first_answer_and_records_once(
    messaging: Client, people: People, operation: str
) -> None:
    asked = OPERATIONS[operation](messaging, people)
    before = asked.recorded()
    headers = {**asked.headers, "Idempotency-Key": "lap-lgo-7"}

    first = messaging.post(asked.url, json=asked.body, headers=headers)
    again = messaging.post(asked.url, json=asked.body, headers=headers)

    assert first.status_code in {200, 201, 202}, first.text
    assert (again.status_code, again.content) == (first.status_code, first.content)
    assert asked.recorded() == before + 1


@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_same_key_with_another_body_is_refused(
    messaging: Client, people: People, operation: str
) -> None:
    asked = OPERATIONS[operation](messaging, people)
    headers = {**asked.headers, "Idempotency-Key": "lap-lgo-8"}
    messaging.post(asked.url, json=asked.body, headers=headers)
    before = asked.recorded()

    other = messaging.post(asked.url, json=asked.other, headers=headers)

    if asked.url.startswith("/fhir/"):
        assert_outcome(other, 422, "idempotency_key_reused")
    else:
        assert_problem(other, 422, "idempotency_key_reused")
    assert asked.recorded() == before


def test_without_a_key_each_message_is_posted(messaging: Client, people: People) -> None:
    asked = message(messaging, people)
    before = asked.recorded()

    for _ in range(2):
        messaging.post(asked.url, json=asked.body, headers=asked.headers)

    assert asked.recorded() == before + 2


def test_the_openapi_document_offers_the_key_on_every_post(messaging: Client) -> None:
    document = messaging.get("/schema/openapi.json").json()

    posts = {
        path: item["post"]
        for path, item in document["paths"].items()
        if "post" in item and path.startswith(("/v1/prescriptions", "/v1/conversations", "/fhir"))
    }

    assert posts
    for path, operation in posts.items():
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, path
