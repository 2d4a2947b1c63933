"""A refusal that concerns one element names it in `expression` (FHIRPath), in a single resource
and in a Bundle: a quantity refused by a rule names the dispense's `quantity`, a product its
medication element (the `medicationReference` when the line refers to a Medication)."""

from __future__ import annotations

from typing import Any

from tests.api.test_catalogue_rules_api import with_catalogue  # noqa: F401 - a fixture
from tests.api.test_fhir_dispensing import dispense, v1_prescription
from tests.api.test_fhir_prescribing import FHIR_JSON, assert_outcome, fixture, post_bundle
from tests.api.test_products_api import CLAMOXYL, SKENAN
from tests.conftest import Client
from tools.cast import People

CIP13 = "http://data.esante.gouv.fr/ansm/medicament/Presentation"


def post_dispense(client: Client, people: People, resource: dict[str, Any]) -> Any:
    return client.post(
        "/fhir/R4/MedicationDispense",
        json=resource,
        headers={**people.as_pharmacist(), **FHIR_JSON},
    )


def test_more_than_remains_names_the_quantity(client: Client, people: People) -> None:
    number = v1_prescription(client, people, 3)

    response = post_dispense(client, people, dispense(f"MedicationRequest/{number}-1", 4))

    assert_outcome(response, 409, "quantity_exceeds_remaining", "MedicationDispense.quantity")


def test_in_a_bundle_the_refused_quantity_is_its_entry(client: Client, people: People) -> None:
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

    expression = "Bundle.entry[1].resource.quantity"
    assert_outcome(response, 409, "quantity_exceeds_remaining", expression)


def test_a_line_with_nothing_left_names_the_quantity(client: Client, people: People) -> None:
    number = v1_prescription(client, people, 1, 1)
    post_dispense(client, people, dispense(f"MedicationRequest/{number}-1", 1))

    response = post_dispense(client, people, dispense(f"MedicationRequest/{number}-1", 1))

    assert_outcome(response, 409, "already_dispensed", "MedicationDispense.quantity")


def test_a_substitute_the_catalogue_refuses_names_the_medication(
    with_catalogue: Client,  # noqa: F811
    people: People,
) -> None:
    body = people.prescription_body(3)
    body["lines"][0]["product"] = {"system": "CIP13", "code": CLAMOXYL, "label": "Clamoxyl"}
    created = with_catalogue.post("/v1/prescriptions", json=body, headers=people.as_prescriber())
    number = created.json()["prescription_id"]

    response = post_dispense(
        with_catalogue, people, dispense(f"MedicationRequest/{number}-1", 1, SKENAN)
    )

    expression = "MedicationDispense.medicationCodeableConcept"
    assert_outcome(response, 422, "substitution_not_allowed", expression)


def test_a_bad_code_of_a_referenced_medication_names_the_reference(
    client: Client, people: People
) -> None:
    bundle = fixture("ordo-clamoxyl-and-dci")
    medication = bundle["entry"][2]["resource"]["contained"][0]
    medication["code"] = {"coding": [{"system": CIP13, "code": "3400930000008", "display": "?"}]}

    response = post_bundle(client, people, bundle)

    expression = "Bundle.entry[2].resource.medicationReference"
    assert_outcome(response, 422, "invalid_request", expression)


def test_a_narcotic_without_the_secure_category_names_the_category(
    with_catalogue: Client,  # noqa: F811
    people: People,
) -> None:
    sent = fixture("ordo-skenan-narcotic")
    del sent["category"]

    response = with_catalogue.post(
        "/fhir/R4/MedicationRequest", json=sent, headers={**people.as_prescriber(), **FHIR_JSON}
    )

    assert_outcome(response, 422, "invalid_request", "MedicationRequest.category")
