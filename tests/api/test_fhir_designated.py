"""The pharmacy named on a line (`designated_finess`, CSS L162-4-2) in FHIR: the line's
`dispenseRequest.performer`, an Organization by its FINESS (`urn:oid:1.2.250.1.71.4.2.2`, value
`1` + FINESS), in the reference or in the Bundle's Organization it points to; read back as sent,
read in /v1, and only that pharmacy dispenses the line."""

from __future__ import annotations

from typing import Any

from tests.api.test_fhir_dispensing import dispense
from tests.api.test_fhir_prescribing import (
    FHIR_JSON,
    LINE,
    assert_outcome,
    conforms,
    fixture,
    post_bundle,
    prescribed,
)
from tests.conftest import Client
from tools.cast import People

FINESS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
EXAMPLE = "HAS-32-2-Presc-ULTIBRO-BREEZ"


def naming(finess: str) -> dict[str, Any]:
    """The guide's example, its line naming the pharmacy `finess` by its identifier."""
    bundle = fixture(EXAMPLE)
    request = bundle["entry"][2]["resource"]
    request["dispenseRequest"]["performer"] = {
        "identifier": {"system": FINESS_SYSTEM, "value": f"1{finess}"}
    }
    return bundle


def number_of(location: str) -> str:
    return location.removeprefix("MedicationRequest/").rsplit("-", 1)[0]


def test_a_line_naming_a_pharmacy_reads_back_and_in_v1(client: Client, people: People) -> None:
    bundle = naming(people.pharmacy)

    (location,) = prescribed(client, people, bundle)

    read = conforms(client.get(f"/fhir/R4/{location}", headers=people.as_prescriber()))
    sent = bundle["entry"][2]["resource"]["dispenseRequest"]
    assert read["dispenseRequest"] == sent
    v1 = client.get(f"/v1/prescriptions/{number_of(location)}", headers=people.as_pharmacist())
    assert v1.json()["lines"][0]["designated_finess"] == people.pharmacy


def test_only_the_pharmacy_named_dispenses_the_line(client: Client, people: People) -> None:
    (location,) = prescribed(client, people, naming(people.pharmacy))
    resource = dispense(location, 1, code="3400893964361")
    resource["medicationCodeableConcept"]["coding"][0]["system"] = (
        "http://data.esante.gouv.fr/ansm/medicament/UCD"
    )

    elsewhere = client.post(
        "/fhir/R4/MedicationDispense",
        json=resource,
        headers={**people.as_pharmacist(people.other_pharmacy), **FHIR_JSON},
    )
    named = client.post(
        "/fhir/R4/MedicationDispense",
        json=resource,
        headers={**people.as_pharmacist(), **FHIR_JSON},
    )

    assert_outcome(elsewhere, 409, "designated_pharmacy_only")
    assert named.status_code == 201, named.text


def test_the_pharmacy_may_be_an_organization_of_the_bundle(client: Client, people: People) -> None:
    bundle = fixture(EXAMPLE)
    organization = {
        "resourceType": "Organization",
        "identifier": [{"system": FINESS_SYSTEM, "value": f"1{people.pharmacy}"}],
    }
    bundle["entry"].insert(0, {"fullUrl": "Organization/officine", "resource": organization})
    request = bundle["entry"][3]["resource"]
    request["dispenseRequest"]["performer"] = {"reference": "Organization/officine"}

    (location,) = prescribed(client, people, bundle)

    v1 = client.get(f"/v1/prescriptions/{number_of(location)}", headers=people.as_pharmacist())
    assert v1.json()["lines"][0]["designated_finess"] == people.pharmacy


def test_a_finess_whose_key_fails_is_refused_with_its_element(
    client: Client, people: People
) -> None:
    wrong_key = people.pharmacy[:-1] + str((int(people.pharmacy[-1]) + 1) % 10)

    response = post_bundle(client, people, naming(wrong_key))

    assert_outcome(response, 422, "invalid_request", f"{LINE}.dispenseRequest.performer")


def test_a_v1_line_naming_a_pharmacy_reads_in_fhir(client: Client, people: People) -> None:
    body = people.prescription_body(2)
    body["lines"][0]["designated_finess"] = people.pharmacy
    created = client.post("/v1/prescriptions", json=body, headers=people.as_prescriber())
    assert created.status_code == 201, created.text
    number = created.json()["prescription_id"]

    resource = conforms(
        client.get(f"/fhir/R4/MedicationRequest/{number}-1", headers=people.as_pharmacist())
    )

    assert resource["dispenseRequest"]["performer"] == {
        "identifier": {"system": FINESS_SYSTEM, "value": f"1{people.pharmacy}"}
    }
