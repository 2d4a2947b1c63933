"""The FHIR door, dispensing, cancelling, searching, masking and hostile input."""

from __future__ import annotations

from typing import Any

from tests.api.test_fhir_prescribing import (
    FHIR_JSON,
    assert_outcome,
    conforms,
    fixture,
    post_bundle,
)
from tests.conftest import Client
from tools.cast import People

CIP13 = "http://data.esante.gouv.fr/ansm/medicament/Presentation"


def dispense(line: str, quantity: int, code: str = People().paracetamol) -> dict[str, Any]:
    """A MedicationDispense of the pack `code` (the cast's prescribed paracetamol)."""
    return {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": CIP13, "code": code, "display": "Paracétamol 1 g"}]
        },
        "authorizingPrescription": [{"reference": line}],
        "quantity": {"value": quantity},
        "note": [{"text": "remis au patient"}],
    }


def v1_prescription(client: Client, people: People, *quantities: int, consent: bool = True) -> str:
    body = people.prescription_body(*quantities, consent=consent)
    response = client.post("/v1/prescriptions", json=body, headers=people.as_prescriber())
    number: str = response.json()["prescription_id"]
    return number


def test_a_dispensing_is_recorded_searched_and_seen_in_v1(client: Client, people: People) -> None:
    number = v1_prescription(client, people, 3)

    created = client.post(
        "/fhir/R4/MedicationDispense",
        json=dispense(f"MedicationRequest/{number}-1", 2),
        headers={**people.as_pharmacist(), **FHIR_JSON},
    )

    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"MedicationDispense/{conforms(created)['id']}"
    assert created.json()["note"] == [{"text": "remis au patient"}]
    read = client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    assert read["lines"][0]["remaining"] == 1
    found = conforms(
        client.get(
            f"/fhir/R4/MedicationDispense?prescription=MedicationRequest/{number}-1",
            headers=people.as_pharmacist(),
        )
    )
    assert found["total"] == 1 and found["entry"][0]["resource"]["status"] == "completed"
    request = client.get(
        f"/fhir/R4/MedicationRequest/{number}-1", headers=people.as_pharmacist()
    ).json()
    assert {"url": "urn:ordo:remaining", "valueInteger": 1} in request["extension"]


def test_a_transaction_with_one_bad_line_records_nothing(client: Client, people: People) -> None:
    number = v1_prescription(client, people, 3, 1)
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": dispense(f"MedicationRequest/{number}-1", 1)},
            {"resource": dispense(f"MedicationRequest/{number}-2", 5)},
        ],
    }

    response = client.post("/fhir/R4", json=bundle, headers={**people.as_pharmacist(), **FHIR_JSON})

    assert_outcome(response, 409, "quantity_exceeds_remaining")
    read = client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    assert read["dispensations"] == []


def test_under_opposition_the_prescriber_learns_nothing(client: Client, people: People) -> None:
    number = v1_prescription(client, people, 3, consent=False)
    client.post(
        "/fhir/R4/MedicationDispense",
        json=dispense(f"MedicationRequest/{number}-1", 3),
        headers={**people.as_pharmacist(), **FHIR_JSON},
    )

    request = client.get(
        f"/fhir/R4/MedicationRequest/{number}-1", headers=people.as_prescriber()
    ).json()
    found = client.get(
        f"/fhir/R4/MedicationDispense?prescription=MedicationRequest/{number}-1",
        headers=people.as_prescriber(),
    ).json()

    assert request["status"] == "active"
    assert all(e["url"] != "urn:ordo:remaining" for e in request["extension"])
    assert found["total"] == 0
    pharmacist = client.get(
        f"/fhir/R4/MedicationRequest/{number}-1", headers=people.as_pharmacist()
    ).json()
    assert pharmacist["status"] == "completed"


def test_cancel_cancels_the_whole_prescription(client: Client, people: People) -> None:
    number = v1_prescription(client, people, 3, 1)
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "reason", "valueString": "erreur de patient"}],
    }

    response = client.post(
        f"/fhir/R4/MedicationRequest/{number}-2/$cancel",
        json=parameters,
        headers={**people.as_prescriber(), **FHIR_JSON},
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    read = client.get(f"/v1/prescriptions/{number}", headers=people.as_prescriber()).json()
    assert read["status"] == "cancelled"


def test_search_by_group_identifier_pages_with_links(client: Client, people: People) -> None:
    number = v1_prescription(client, people, 1, 2, 3)

    first = conforms(
        client.get(
            f"/fhir/R4/MedicationRequest?group-identifier={number}&_count=2",
            headers=people.as_pharmacist(),
        )
    )

    assert first["total"] == 3 and len(first["entry"]) == 2
    following = next(link["url"] for link in first["link"] if link["relation"] == "next")
    second = client.get(following, headers=people.as_pharmacist()).json()
    assert [e["resource"]["id"] for e in second["entry"]] == [f"{number}-3"]
    assert all(link["relation"] != "next" for link in second["link"])


def test_hostile_input_gets_a_clean_4xx_outcome(client: Client, people: People) -> None:
    headers = {**people.as_prescriber(), **FHIR_JSON}
    bundle = fixture("HAS-32-2-Presc-ULTIBRO-BREEZ")
    bundle["entry"][2]["resource"]["surprise"] = True
    assert_outcome(
        post_bundle(client, people, bundle),
        400,
        "invalid_request",
        "Bundle.entry[2].resource.surprise",
    )
    wrong_type = fixture("HAS-32-2-Presc-ULTIBRO-BREEZ")
    wrong_type["entry"][2]["resource"]["dispenseRequest"]["quantity"]["value"] = "two"
    assert_outcome(
        post_bundle(client, people, wrong_type),
        400,
        "invalid_request",
        "Bundle.entry[2].resource.dispenseRequest.quantity.value",
    )
    many = {"resourceType": "Bundle", "type": "transaction", "entry": [{}] * 10_000}
    assert_outcome(post_bundle(client, people, many), 422, "invalid_request", "Bundle.entry")
    deep: dict[str, Any] = {"url": "urn:x", "valueString": "x"}
    for _ in range(200):
        deep = {"url": "urn:x", "extension": [deep]}
    nested = {"resourceType": "MedicationRequest", "extension": [deep]}
    assert_outcome(
        client.post("/fhir/R4/MedicationRequest", json=nested, headers=headers),
        400,
        "invalid_request",
    )
    patient = {"resourceType": "Patient"}
    assert_outcome(
        client.post("/fhir/R4/MedicationRequest", json=patient, headers=headers),
        400,
        "invalid_request",
        "resourceType",
    )
    xml = client.get("/fhir/R4/metadata?_format=xml")
    assert_outcome(xml, 406, "not_acceptable")
    accept_xml = client.get("/fhir/R4/metadata", headers={"accept": "application/fhir+xml"})
    assert_outcome(accept_xml, 406, "not_acceptable")
    assert_outcome(client.get("/fhir/R4/MedicationRequest/x-1"), 401, "unauthenticated")


def test_a_retried_dispensing_with_its_key_replays_the_first(
    client: Client, people: People
) -> None:
    number = v1_prescription(client, people, 3)
    headers = {**people.as_pharmacist(), **FHIR_JSON, "Idempotency-Key": "lgo-42"}
    sent = dispense(f"MedicationRequest/{number}-1", 1)

    first = client.post("/fhir/R4/MedicationDispense", json=sent, headers=headers)
    again = client.post("/fhir/R4/MedicationDispense", json=sent, headers=headers)
    other = client.post(
        "/fhir/R4/MedicationDispense",
        json=dispense(f"MedicationRequest/{number}-1", 2),
        headers=headers,
    )

    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert_outcome(other, 422, "idempotency_key_reused")
    read = client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    assert read["lines"][0]["remaining"] == 2


def test_what_is_not_json_or_not_served_is_an_outcome(client: Client, people: People) -> None:
    xml = client.post(
        "/fhir/R4/MedicationRequest",
        content=b"<MedicationRequest xmlns='http://hl7.org/fhir'/>",
        headers={**people.as_prescriber(), "content-type": "application/fhir+xml"},
    )
    no_route = client.get("/fhir/R4/Patient/1", headers=people.as_prescriber())
    no_object = client.post(
        "/fhir/R4/MedicationRequest",
        content=b"[1, 2]",
        headers={**people.as_prescriber(), **FHIR_JSON},
    )
    patient_prescribing = client.post(
        "/fhir/R4/MedicationRequest",
        json=fixture("ordo-skenan-narcotic"),
        headers={**people.as_patient(), **FHIR_JSON},
    )

    assert_outcome(xml, 415, "unsupported_media_type")
    assert_outcome(no_route, 404, "route_not_found")
    assert_outcome(no_object, 400, "invalid_request")
    assert_outcome(patient_prescribing, 403, "forbidden")


def test_a_dispensing_answers_as_a_read_right_after_it(client: Client, people: People) -> None:
    number = v1_prescription(client, people, 3, 2)
    line = f"MedicationRequest/{number}-1"
    before = client.get(f"/fhir/R4/{line}", headers=people.as_pharmacist()).json()

    created = client.post(
        "/fhir/R4/MedicationDispense",
        json=dispense(line, 3),
        headers={**people.as_pharmacist(), **FHIR_JSON},
    ).json()

    found = client.get(
        f"/fhir/R4/MedicationDispense?prescription={line}", headers=people.as_pharmacist()
    ).json()
    request = client.get(f"/fhir/R4/{line}", headers=people.as_pharmacist()).json()
    assert created == found["entry"][0]["resource"]
    assert (created["status"], created["meta"]["lastUpdated"]) == (
        "completed",
        request["meta"]["lastUpdated"],
    )
    assert int(request["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
    assert (request["status"], before["status"]) == ("active", "active")
    assert {"url": "urn:ordo:remaining", "valueInteger": 0} in request["extension"]


def test_a_retry_of_a_withdrawn_dispensing_answers_it_withdrawn(
    client: Client, people: People
) -> None:
    number = v1_prescription(client, people, 3)
    headers = {**people.as_pharmacist(), **FHIR_JSON, "Idempotency-Key": "lgo-43"}
    sent = dispense(f"MedicationRequest/{number}-1", 1)
    first = client.post("/fhir/R4/MedicationDispense", json=sent, headers=headers).json()
    withdrawal = {
        "resourceType": "Parameters",
        "parameter": [{"name": "reason", "valueString": "saisie en double"}],
    }
    client.post(
        f"/fhir/R4/MedicationDispense/{first['id']}/$withdraw",
        json=withdrawal,
        headers={**people.as_pharmacist(), **FHIR_JSON},
    )

    again = client.post("/fhir/R4/MedicationDispense", json=sent, headers=headers)

    assert (again.status_code, again.json()["id"]) == (201, first["id"])
    assert (first["status"], again.json()["status"]) == ("completed", "entered-in-error")
