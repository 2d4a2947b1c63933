"""The FHIR door on real packs of the catalogue's sample: a narcotic, a generic group, a line in
common name (DCI); each mapping of the contract, read back in /v1."""

from __future__ import annotations

from typing import Any

from tests.api.test_catalogue_rules_api import with_catalogue  # noqa: F401 - a fixture
from tests.api.test_fhir_dispensing import dispense
from tests.api.test_fhir_prescribing import (
    FHIR_JSON,
    assert_outcome,
    fixture,
    prescribed,
    without_server_managed,
)
from tests.api.test_products_api import AMOXICILLINE_ARROW
from tests.conftest import Client
from tools.cast import People


def number_of(location: str) -> str:
    return location.removeprefix("MedicationRequest/").rsplit("-", 1)[0]


def v1_read(client: Client, people: People, number: str) -> Any:
    return client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()


def test_a_narcotic_is_secure_fractioned_and_may_overlap(
    with_catalogue: Client,  # noqa: F811
    people: People,
) -> None:
    sent = fixture("ordo-skenan-narcotic")

    created = with_catalogue.post(
        "/fhir/R4/MedicationRequest", json=sent, headers={**people.as_prescriber(), **FHIR_JSON}
    )

    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"MedicationRequest/{created.json()['id']}"
    assert without_server_managed(created.json()) == without_server_managed(sent)
    read = v1_read(with_catalogue, people, number_of(created.headers["location"]))
    assert read["kind"] == "secure"
    (line,) = read["lines"]
    assert (line["narcotic"], line["duration_days"], line["fraction_days"]) == (True, 28, 14)
    assert line["overlap_allowed"] is True
    assert line["product"]["code"] == "3400933323523"


def test_a_narcotic_without_the_secure_category_is_refused_at_its_line(
    with_catalogue: Client,  # noqa: F811
    people: People,
) -> None:
    sent = fixture("ordo-skenan-narcotic")
    del sent["category"]

    response = with_catalogue.post(
        "/fhir/R4/MedicationRequest", json=sent, headers={**people.as_prescriber(), **FHIR_JSON}
    )

    assert_outcome(response, 422, "invalid_request")


def test_repeats_multiply_the_packs_and_a_substance_is_a_dci_line(
    with_catalogue: Client,  # noqa: F811
    people: People,
) -> None:
    clamoxyl, paracetamol = prescribed(with_catalogue, people, fixture("ordo-clamoxyl-and-dci"))

    read = v1_read(with_catalogue, people, number_of(clamoxyl))
    first, second = read["lines"]
    assert (first["product"]["code"], first["quantity"], first["duration_days"]) == (
        "3400931587538",
        3,
        7,
    )
    assert second["product"] == {"system": "DCI", "code": None, "label": "paracétamol"}
    assert paracetamol == f"MedicationRequest/{number_of(clamoxyl)}-2"


def test_a_generic_of_the_group_is_dispensed_in_place_of_the_princeps(
    with_catalogue: Client,  # noqa: F811
    people: People,
) -> None:
    clamoxyl, _ = prescribed(with_catalogue, people, fixture("ordo-clamoxyl-and-dci"))
    given = dispense(clamoxyl, 1, AMOXICILLINE_ARROW)
    given["substitution"] = {"wasSubstituted": True}

    created = with_catalogue.post(
        "/fhir/R4/MedicationDispense", json=given, headers={**people.as_pharmacist(), **FHIR_JSON}
    )

    assert created.status_code == 201, created.text
    assert created.json()["substitution"] == {"wasSubstituted": True}
    read = v1_read(with_catalogue, people, number_of(clamoxyl))
    assert read["dispensations"][0]["lines"][0]["product"]["code"] == AMOXICILLINE_ARROW
    assert read["lines"][0]["remaining"] == 2
