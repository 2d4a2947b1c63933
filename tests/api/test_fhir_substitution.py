"""The "non substituable" mention in the FHIR door (contract v1.2: `substitution.allowedBoolean`
false with `substitution.reason.coding[0].code` MTE, EFG or CIF is `non_substitutable`), and a
biosimilar's lot (a contained Medication's `batch.lotNumber`), both ways, on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.api.test_catalogue_rules_api import give, pack, with_catalogue
from tests.api.test_fhir_dispensing import dispense
from tests.api.test_fhir_prescribing import (
    FHIR_JSON,
    assert_outcome,
    conforms,
    fixture,
    post_bundle,
    prescribed,
)
from tests.api.test_substitution_api import INHIXA, LOVENOX, written
from tests.api.test_substitution_api import prescribed as v1_prescribed
from tests.conftest import Client
from tools.cast import People

REASON_SYSTEM = "urn:ordo:non-substitution-reason"
__all__ = ["with_catalogue"]  # the fixture (the shipped sample imported), for the tests below


def clamoxyl_not_to_substitute(code: str | None) -> dict[str, Any]:
    """ordo's Clamoxyl fixture, its Clamoxyl line written "non substituable" for `code`."""
    bundle = fixture("ordo-clamoxyl-and-dci")
    reason = {"coding": [{"system": REASON_SYSTEM, "code": code}]} if code else {"text": "?"}
    bundle["entry"][1]["resource"]["substitution"] = {"allowedBoolean": False, "reason": reason}
    return bundle


def number_of(location: str) -> str:
    return location.removeprefix("MedicationRequest/").rsplit("-", 1)[0]


def test_a_line_not_to_substitute_reads_in_v1_as_non_substitutable(
    client: Client, people: People
) -> None:
    first, _ = prescribed(client, people, clamoxyl_not_to_substitute("CIF"))

    read = client.get(f"/v1/prescriptions/{number_of(first)}", headers=people.as_pharmacist())

    assert [line["non_substitutable"] for line in read.json()["lines"]] == [
        {"reason": "CIF"},
        None,
    ]


def test_a_line_not_to_substitute_without_a_reason_is_refused_at_its_element(
    client: Client, people: People
) -> None:
    response = post_bundle(client, people, clamoxyl_not_to_substitute(None))

    assert_outcome(
        response,
        422,
        "non_substitution_reason_invalid",
        "Bundle.entry[1].resource.substitution.reason",
    )


def test_a_reason_the_rules_refuse_names_the_element(client: Client, people: People) -> None:
    response = post_bundle(client, people, clamoxyl_not_to_substitute("MTE"))

    assert_outcome(
        response,
        422,
        "non_substitution_reason_invalid",
        "Bundle.entry[1].resource.substitution.reason",
    )


def test_a_v1_non_substitutable_line_reads_in_fhir(client: Client, people: People) -> None:
    body = people.prescription_body(3)
    body["lines"][0]["non_substitutable"] = {"reason": "CIF"}
    created = client.post("/v1/prescriptions", json=body, headers=people.as_prescriber())
    assert created.status_code == 201, created.text
    number = created.json()["prescription_id"]

    resource = client.get(
        f"/fhir/R4/MedicationRequest/{number}-1", headers=people.as_pharmacist()
    ).json()

    assert resource["substitution"] == {
        "allowedBoolean": False,
        "reason": {"coding": [{"system": REASON_SYSTEM, "code": "CIF"}]},
    }


# --- a biosimilar's lot: a contained Medication with batch.lotNumber ------------------------------


def with_lot(code: str, line: str, lot: str | None) -> dict[str, Any]:
    """A MedicationDispense of `code` as a contained Medication, with `lot` if given."""
    resource = dispense(line, 1, code)
    medication: dict[str, Any] = {
        "resourceType": "Medication",
        "id": "given",
        "code": resource.pop("medicationCodeableConcept"),
    }
    if lot is not None:
        medication["batch"] = {"lotNumber": lot}
    return {**resource, "contained": [medication], "medicationReference": {"reference": "#given"}}


def post_dispense(client: Client, people: People, resource: dict[str, Any]) -> Any:
    return client.post(
        "/fhir/R4/MedicationDispense",
        json=resource,
        headers={**people.as_pharmacist(), **FHIR_JSON},
    )


def test_a_biosimilar_given_with_its_lot_through_fhir_is_read_back_with_it(
    with_catalogue: Client, people: People
) -> None:
    number = v1_prescribed(with_catalogue, people, written(LOVENOX))
    line = f"MedicationRequest/{number}-1"

    without = post_dispense(with_catalogue, people, with_lot(INHIXA, line, None))
    created = post_dispense(with_catalogue, people, with_lot(INHIXA, line, "L2311A"))

    assert_outcome(without, 422, "lot_required", "MedicationDispense.medicationReference")
    assert created.status_code == 201, created.text
    read = with_catalogue.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    assert read["dispensations"][0]["lines"][0]["lot"] == "L2311A"
    found = conforms(
        with_catalogue.get(
            f"/fhir/R4/MedicationDispense?prescription={line}", headers=people.as_pharmacist()
        )
    )
    (medication,) = found["entry"][0]["resource"]["contained"]
    assert medication["batch"] == {"lotNumber": "L2311A"}


def test_a_lot_given_through_v1_reads_in_fhir_as_a_contained_medication(
    with_catalogue: Client, people: People
) -> None:
    number = v1_prescribed(with_catalogue, people, written(LOVENOX))
    assert (
        give(with_catalogue, people, number, 1, product=pack(INHIXA), lot="L7").status_code == 201
    )

    found = conforms(
        with_catalogue.get(
            f"/fhir/R4/MedicationDispense?prescription=MedicationRequest/{number}-1",
            headers=people.as_pharmacist(),
        )
    )

    resource = found["entry"][0]["resource"]
    assert "medicationCodeableConcept" not in resource
    assert resource["medicationReference"] == {"reference": "#medication"}
    (medication,) = resource["contained"]
    assert medication["batch"] == {"lotNumber": "L7"}
    assert medication["code"]["coding"][0]["code"] == INHIXA


def test_a_medication_reference_to_nothing_contained_is_refused_at_its_element(
    with_catalogue: Client, people: People
) -> None:
    number = v1_prescribed(with_catalogue, people, written(LOVENOX))
    resource = with_lot(INHIXA, f"MedicationRequest/{number}-1", "L1")
    resource["medicationReference"] = {"reference": "Medication/elsewhere"}

    refused = post_dispense(with_catalogue, people, resource)

    assert_outcome(refused, 422, "invalid_request", "MedicationDispense.medicationReference")
