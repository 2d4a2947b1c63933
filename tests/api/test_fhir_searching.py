"""The FHIR door: the patient's and the prescriber's own searches, paged, and `$withdraw`
(both read from the projections, which may lag the log by up to a second)."""

from __future__ import annotations

from typing import Any

from tests.api.test_access_log_api import entries_within_a_second, seen
from tests.api.test_fhir_dispensing import dispense, v1_prescription
from tests.api.test_fhir_prescribing import FHIR_JSON, assert_outcome, conforms
from tests.api.test_lists_api import eventually
from tests.conftest import Client
from tools.cast import People

INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"


def ids(bundle: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


def pages(client: Client, headers: dict[str, str], url: str) -> list[list[str]]:
    """Every page of a search, following its `next` links."""
    found: list[list[str]] = []
    following: str | None = url
    while following is not None:
        page = client.get(following, headers=headers).json()
        found.append(ids(page))
        following = next((x["url"] for x in page["link"] if x["relation"] == "next"), None)
    return found


def test_a_prescriber_pages_through_their_own_lines_newest_first(
    client: Client, people: People
) -> None:
    older = v1_prescription(client, people, 1, 1, 1)
    newer = v1_prescription(client, people, 1, 1)
    url = f"/fhir/R4/MedicationRequest?requester={people.prescriber}&_count=2"
    headers = people.as_prescriber()
    eventually(lambda: pages(client, headers, url), lambda found: sum(map(len, found)) == 5)

    found = pages(client, headers, url)

    assert found == [
        [f"{newer}-1", f"{newer}-2"],
        [f"{older}-1", f"{older}-2"],
        [f"{older}-3"],
    ]
    by_identifier = (
        f"/fhir/R4/MedicationRequest?requester:identifier={RPPS_SYSTEM}|8{people.prescriber}"
    )
    assert len(ids(client.get(by_identifier, headers=headers).json())) == 5


def test_a_patient_searches_their_own_and_finds_nobody_elses(
    client: Client, people: People
) -> None:
    number = v1_prescription(client, people, 2)
    mine = f"/fhir/R4/MedicationRequest?patient:identifier={INS_SYSTEM}|{people.patient}"
    headers = people.as_patient()

    found = eventually(lambda: client.get(mine, headers=headers).json(), lambda b: bool(ids(b)))

    assert ids(found) == [f"{number}-1"]
    other = f"/fhir/R4/MedicationRequest?patient={people.corsican_patient}"
    assert ids(client.get(other, headers=headers).json()) == []
    pharmacist = client.get(mine, headers=people.as_pharmacist())
    assert_outcome(pharmacist, 403, "forbidden")


def test_a_withdrawn_dispensing_reads_entered_in_error(client: Client, people: People) -> None:
    number = v1_prescription(client, people, 3)
    created = client.post(
        "/fhir/R4/MedicationDispense",
        json=dispense(f"MedicationRequest/{number}-1", 2),
        headers={**people.as_pharmacist(), **FHIR_JSON},
    ).json()
    withdrawal = {
        "resourceType": "Parameters",
        "parameter": [{"name": "reason", "valueString": "mauvaise ordonnance"}],
    }
    url = f"/fhir/R4/MedicationDispense/{created['id']}/$withdraw"

    def withdraw(headers: dict[str, str]) -> Any:
        return client.post(url, json=withdrawal, headers={**headers, **FHIR_JSON})

    other = withdraw(people.as_pharmacist(people.other_pharmacy))
    assert_outcome(other, 404, "not_found")
    assert "no MedicationDispense" not in other.text  # found, but not that pharmacy's
    response = withdraw(people.as_pharmacist())

    assert response.status_code == 200, response.text
    assert conforms(response)["status"] == "entered-in-error"
    read = client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    assert read["lines"][0]["remaining"] == 3 and read["dispensations"][0]["withdrawn"]
    found = client.get(
        f"/fhir/R4/MedicationDispense?prescription=MedicationRequest/{number}-1",
        headers=people.as_pharmacist(),
    ).json()
    assert found["entry"][0]["resource"]["status"] == "entered-in-error"


def test_fhir_reads_and_cancels_are_in_the_access_log(client: Client, people: People) -> None:
    number = v1_prescription(client, people, 1)
    client.get(f"/fhir/R4/MedicationRequest/{number}-1", headers=people.as_pharmacist())
    cancel = {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "x"}]}
    client.post(
        f"/fhir/R4/MedicationRequest/{number}-1/$cancel",
        json=cancel,
        headers={**people.as_prescriber(), **FHIR_JSON},
    )

    items = entries_within_a_second(client, people, number, 2)

    assert seen(items) == [
        ("read", "pharmacist", people.pharmacist, people.pharmacy, 200),
        ("cancel", "prescriber", people.prescriber, None, 200),
    ]


def test_a_withdraw_right_after_the_dispense_finds_it(client: Client, people: People) -> None:
    number = v1_prescription(client, people, 3)
    headers = {**people.as_pharmacist(), **FHIR_JSON}
    reason = {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "x"}]}
    for _ in range(3):
        created = client.post(
            "/fhir/R4/MedicationDispense",
            json=dispense(f"MedicationRequest/{number}-1", 1),
            headers=headers,
        ).json()

        withdrawn = client.post(
            f"/fhir/R4/MedicationDispense/{created['id']}/$withdraw", json=reason, headers=headers
        )

        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["status"] == "entered-in-error"


def test_a_line_the_dispensation_did_not_hand_over_is_not_withdrawn(
    client: Client, people: People
) -> None:
    number = v1_prescription(client, people, 3)
    headers = {**people.as_pharmacist(), **FHIR_JSON}
    created = client.post(
        "/fhir/R4/MedicationDispense",
        json=dispense(f"MedicationRequest/{number}-1", 1),
        headers=headers,
    ).json()
    dispensation_id = created["id"].rsplit("-", 1)[0]
    reason = {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "x"}]}

    response = client.post(
        f"/fhir/R4/MedicationDispense/{dispensation_id}-7/$withdraw", json=reason, headers=headers
    )

    assert_outcome(response, 404, "not_found")
    read = client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    assert read["lines"][0]["remaining"] == 2 and not read["dispensations"][0]["withdrawn"]
