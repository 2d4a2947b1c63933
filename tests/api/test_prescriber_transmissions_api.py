"""The prescriber who wrote a prescription sends it to a pharmacy (a hospital at discharge, an
EHPAD's doctor): contract.md "The ordonnance as a document, sent through MSSanté", on the
embedded default and on PostgreSQL. The e-mail through the outbox is tested in
tests/integration; here, the prescription enters the pharmacy's inbox, and the inbox and the
history say who sent it."""

from __future__ import annotations

from typing import Any

from tests.api.test_lists_api import eventually, ids
from tests.api.test_prescriptions_api import assert_problem, dispense, issue
from tests.conftest import Client
from tools.cast import People


def send(client: Client, number: str, finess: str, headers: dict[str, str]) -> Any:
    return client.post(
        f"/v1/prescriptions/{number}/transmissions",
        json={"finess": finess, "message": "Sortie d'hospitalisation ce soir"},
        headers=headers,
    )


def inbox(client: Client, people: People, finess: str) -> dict[str, Any]:
    page: dict[str, Any] = client.get(
        "/v1/pharmacies/me/inbox", headers=people.as_pharmacist(finess)
    ).json()
    return page


def history(client: Client, people: People, number: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = client.get(
        f"/v1/prescriptions/{number}/events", headers=people.as_patient()
    ).json()["events"]
    return events


def test_the_prescriber_who_wrote_it_sends_it_to_a_pharmacys_inbox(
    client: Client, people: People
) -> None:
    number = issue(client, people, 2)["prescription_id"]

    response = send(client, number, people.pharmacy, people.as_prescriber())

    assert response.status_code == 201, response.text
    page = eventually(lambda: inbox(client, people, people.pharmacy), lambda p: p["items"])
    assert ids(page) == [number]
    assert page["items"][0]["sent_by"] == "prescriber"
    assert page["items"][0]["message"] == "Sortie d'hospitalisation ce soir"
    sent = history(client, people, number)[-1]
    assert sent["type"] == "PrescriptionTransmitted"
    assert sent["actor"] == {"role": "prescriber", "rpps": people.prescriber}
    assert sent["data"]["sent_by"] == "prescriber"


def test_the_patients_own_sending_says_the_patient_sent_it(client: Client, people: People) -> None:
    number = issue(client, people, 2)["prescription_id"]

    assert send(client, number, people.pharmacy, people.as_patient()).status_code == 201

    page = eventually(lambda: inbox(client, people, people.pharmacy), lambda p: p["items"])
    assert page["items"][0]["sent_by"] == "patient"
    assert history(client, people, number)[-1]["actor"] == {"role": "patient"}


def test_the_patient_sends_it_elsewhere_after_the_prescriber(
    client: Client, people: People
) -> None:
    number = issue(client, people, 2)["prescription_id"]
    assert send(client, number, people.pharmacy, people.as_prescriber()).status_code == 201

    assert send(client, number, people.other_pharmacy, people.as_patient()).status_code == 201

    theirs = eventually(lambda: inbox(client, people, people.other_pharmacy), lambda p: p["items"])
    assert theirs["items"][0]["sent_by"] == "patient"
    assert inbox(client, people, people.pharmacy)["items"][0]["sent_by"] == "prescriber"


def test_a_prescriber_who_did_not_write_it_gets_404(client: Client, people: People) -> None:
    number = issue(client, people)["prescription_id"]

    response = send(client, number, people.pharmacy, people.as_prescriber(people.other_prescriber))

    assert_problem(response, 404, "not_found")
    assert len(history(client, people, number)) == 1


def test_pharmacists_and_the_insurer_do_not_send(client: Client, people: People) -> None:
    number = issue(client, people)["prescription_id"]

    for headers in (people.as_pharmacist(), people.as_insurer()):
        assert_problem(send(client, number, people.pharmacy, headers), 403, "forbidden")


def test_under_opposition_the_prescriber_learns_nothing_of_the_dispensing(
    client: Client, people: People
) -> None:
    number = issue(client, people, 1, consent=False)["prescription_id"]
    assert dispense(client, people, number, (1, 1)).status_code == 201

    response = send(client, number, people.other_pharmacy, people.as_prescriber())

    assert response.status_code == 201, response.text  # not 409 already_dispensed
    assert response.json()["execution_visible"] is False
    assert inbox(client, people, people.other_pharmacy)["items"] == []  # nothing left


def test_with_consent_the_prescriber_is_told_it_was_dispensed(
    client: Client, people: People
) -> None:
    number = issue(client, people, 1, consent=True)["prescription_id"]
    assert dispense(client, people, number, (1, 1)).status_code == 201

    response = send(client, number, people.other_pharmacy, people.as_prescriber())

    assert_problem(response, 409, "already_dispensed")


def test_a_cancelled_prescription_is_not_sent(client: Client, people: People) -> None:
    number = issue(client, people)["prescription_id"]
    cancelled = client.post(
        f"/v1/prescriptions/{number}/cancel",
        json={"reason": "erreur"},
        headers=people.as_prescriber(),
    )
    assert cancelled.status_code == 200

    response = send(client, number, people.pharmacy, people.as_prescriber())

    assert_problem(response, 409, "prescription_cancelled")
