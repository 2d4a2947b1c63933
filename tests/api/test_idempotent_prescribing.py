"""Prescribing with an `Idempotency-Key`, through both doors: a retry registers nothing new and
answers the first prescription again; another body under the same key is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_fhir_prescribing import FHIR_JSON, assert_outcome, fixture
from tests.api.test_prescriptions_api import assert_problem
from tests.conftest import Client
from tools.cast import People


def log_position(client: Client) -> int:
    position: int = client.get("/readyz").json()["log_position"]
    return position


def prescribe_v1(client: Client, people: People, key: str, packs: int = 3) -> Any:
    return client.post(
        "/v1/prescriptions",
        json=people.prescription_body(packs),
        headers={**people.as_prescriber(), "Idempotency-Key": key},
    )


def test_a_retried_v1_prescribing_registers_one_prescription(
    client: Client, people: People
) -> None:
    first = prescribe_v1(client, people, "lap-1")
    after_first = log_position(client)

    again = prescribe_v1(client, people, "lap-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert log_position(client) == after_first


def test_another_body_under_the_same_key_is_refused(client: Client, people: People) -> None:
    prescribe_v1(client, people, "lap-1", packs=3)

    other = prescribe_v1(client, people, "lap-1", packs=2)

    assert_problem(other, 422, "idempotency_key_reused")


def test_the_same_key_from_another_prescriber_is_another_prescription(
    client: Client, people: People
) -> None:
    first = prescribe_v1(client, people, "lap-1").json()["prescription_id"]
    body = people.prescription_body(3)
    headers = {**people.as_prescriber(people.other_prescriber), "Idempotency-Key": "lap-1"}

    other = client.post("/v1/prescriptions", json=body, headers=headers)

    assert other.status_code == 201, other.text
    assert other.json()["prescription_id"] != first


def fhir_post(client: Client, people: People, path: str, body: dict[str, Any], key: str) -> Any:
    headers = {**people.as_prescriber(), **FHIR_JSON, "Idempotency-Key": key}
    return client.post(path, json=body, headers=headers)


@pytest.mark.parametrize("name", ["ordo-clamoxyl-and-dci", "HAS-11-2-Presc-EVRA"])
def test_a_retried_transaction_registers_one_prescription(
    client: Client, people: People, name: str
) -> None:
    bundle = fixture(name)
    first = fhir_post(client, people, "/fhir/R4", bundle, "lap-7")
    after_first = log_position(client)

    again = fhir_post(client, people, "/fhir/R4", bundle, "lap-7")

    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert again.json() == first.json()
    assert log_position(client) == after_first


def test_a_retried_medication_request_registers_one_prescription(
    client: Client, people: People
) -> None:
    bundle = fixture("ordo-clamoxyl-and-dci")
    patient = bundle["entry"][0]["resource"]["identifier"][0]
    line = {**bundle["entry"][1]["resource"], "subject": {"identifier": patient}}
    first = fhir_post(client, people, "/fhir/R4/MedicationRequest", line, "lap-8")
    after_first = log_position(client)

    again = fhir_post(client, people, "/fhir/R4/MedicationRequest", line, "lap-8")

    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.headers["location"] == first.headers["location"]
    assert again.json()["id"] == first.json()["id"]
    assert log_position(client) == after_first


def test_another_resource_under_the_same_key_is_an_operation_outcome(
    client: Client, people: People
) -> None:
    bundle = fixture("ordo-clamoxyl-and-dci")
    fhir_post(client, people, "/fhir/R4", bundle, "lap-9")
    bundle["entry"] = bundle["entry"][:-1]

    other = fhir_post(client, people, "/fhir/R4", bundle, "lap-9")

    assert_outcome(other, 422, "idempotency_key_reused")


def test_each_prescribing_operation_documents_the_header(client: Client) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    for path in ("/v1/prescriptions", "/fhir/R4", "/fhir/R4/MedicationRequest"):
        parameters = paths[path]["post"].get("parameters", [])
        assert "Idempotency-Key" in {p["name"] for p in parameters}, path
