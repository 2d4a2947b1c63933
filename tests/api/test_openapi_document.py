"""The OpenAPI document states what the server enforces: patterns, lengths, bounds, closed
bodies, exactly the problems each operation answers, and the links that chain issue ->
dispense -> bill."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.http.problem_codes import PROBLEMS_OF
from domain.checks import MAX_LINES, MAX_PACKS_PER_LINE
from domain.decisions.billing import MAX_AMOUNT_CENTS
from tests.conftest import settings_for
from tools.cast import People

PROBLEM = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with TestClient(build_app(settings_for(tmp_path_factory.mktemp("openapi")))) as client:
        yield client.get("/schema/openapi.json").json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path.startswith("/v1/") and method in {"get", "post", "put", "delete"}:
                yield method.upper(), path, operation


def component(document: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def test_the_bodies_state_the_bounds_the_rules_check(document: dict[str, Any]) -> None:
    line = component(document, "PrescriptionLineBody")["properties"]
    billed = component(document, "BillLineBody")["properties"]
    dispensed = component(document, "DispenseLineBody")["properties"]

    assert component(document, "IssueBody")["properties"]["lines"]["minItems"] == 1
    assert component(document, "IssueBody")["properties"]["lines"]["maxItems"] == MAX_LINES
    assert (line["quantity"]["minimum"], line["quantity"]["maximum"]) == (1, MAX_PACKS_PER_LINE)
    assert line["duration_days"]["minimum"] == 1
    assert line["dosage"]["pattern"] == r"\S"
    assert line["fraction_days"]["oneOf"][0]["minimum"] == 1
    assert (billed["amount_cents"]["minimum"], billed["amount_cents"]["maximum"]) == (
        0,
        MAX_AMOUNT_CENTS,
    )
    assert dispensed["line_no"]["minimum"] == 1
    assert component(document, "BillBody")["properties"]["invoice_number"]["minLength"] == 1


def test_the_identifiers_state_their_canonical_form(document: dict[str, Any]) -> None:
    ins = component(document, "PatientBody")["properties"]["ins"]
    by_system = {
        variant["properties"]["system"]["const"]: variant
        for variant in component(document, "Product")["oneOf"]
    }
    rpps = component(document, "AdaptationBody")["properties"]["prescriber_rpps"]
    finess = component(document, "TransmissionBody")["properties"]["finess"]
    read = document["paths"]["/v1/prescriptions/{prescription_id}"]["get"]
    number = next(p for p in read["parameters"] if p["name"] == "prescription_id")

    assert (ins["minLength"], ins["maxLength"]) == (15, 15)
    assert "2[AB]" in ins["pattern"]
    assert by_system["CIP13"]["properties"]["code"]["pattern"] == r"^3400[0-9]{9}$"
    assert by_system["UCD"]["properties"]["code"]["pattern"] == r"^(?:[0-9]{7}|[0-9]{13})$"
    assert "code" in by_system["CIP13"]["required"] and "code" in by_system["UCD"]["required"]
    assert by_system["DCI"]["properties"]["code"]["oneOf"] == [{"type": "null"}]
    assert rpps["pattern"] == r"^[0-9]{11}$"
    assert finess["pattern"] == r"^[0-9]{9}$"
    assert number["schema"]["pattern"] == r"^[0-9A-HJKMNP-TV-Z]{20}$"
    assert "dashes" in number["description"]


@pytest.mark.parametrize(
    "name",
    ["IssueBody", "PatientBody", "PrescriptionLineBody", "DispenseBody", "BillBody"],
)
def test_the_bodies_that_refuse_unknown_fields_say_so(document: dict[str, Any], name: str) -> None:
    assert component(document, name)["additionalProperties"] is False


def test_a_product_is_closed_whatever_its_system(document: dict[str, Any]) -> None:
    variants = component(document, "Product")["oneOf"]

    assert len(variants) == 3
    assert all(variant["additionalProperties"] is False for variant in variants)


def test_every_v1_operation_declares_exactly_its_problems_as_problem_json(
    document: dict[str, Any],
) -> None:
    for method, path, operation in operations(document):
        stated = {
            (int(status), code)
            for status, answer in operation["responses"].items()
            if status.startswith(("4", "5"))
            for code in re.findall(r"`([a-z_]+)`", answer["description"])
        }
        assert stated == PROBLEMS_OF[method, path], f"{method} {path}"
        for status, _ in stated:
            answer = operation["responses"][str(status)]
            assert answer["content"] == {"application/problem+json": {"schema": PROBLEM}}, (
                f"{method} {path} {status}"
            )
        assert "Retry-After" in operation["responses"]["429"]["headers"]


def test_every_v1_operation_has_its_problems_listed(document: dict[str, Any]) -> None:
    assert {(method, path) for method, path, _ in operations(document)} == set(PROBLEMS_OF)


def test_the_problem_descriptions_name_the_codes(document: dict[str, Any]) -> None:
    dispense = document["paths"]["/v1/prescriptions/{prescription_id}/dispensations"]["post"]
    cancel = document["paths"]["/v1/prescriptions/{prescription_id}/cancel"]["post"]

    assert "`narcotic_overlap` (with max_quantity)" in dispense["responses"]["409"]["description"]
    assert "`rate_limited`" in cancel["responses"]["429"]["description"]
    assert "`unauthenticated`" in cancel["responses"]["401"]["description"]
    assert "`already_dispensed`" not in cancel["responses"]["409"]["description"]
    assert "409" not in document["paths"]["/v1/prescriptions/{prescription_id}"]["get"]["responses"]


def test_links_chain_issue_to_dispense_and_dispense_to_billing(
    document: dict[str, Any],
) -> None:
    by_id = {op["operationId"]: (m, p) for m, p, op in operations(document)}
    issued = document["paths"]["/v1/prescriptions"]["post"]["responses"]["201"]["links"]
    dispensations = document["paths"]["/v1/prescriptions/{prescription_id}/dispensations"]
    dispensed = dispensations["post"]["responses"]["201"]["links"]

    assert by_id[issued["read"]["operationId"]] == ("GET", "/v1/prescriptions/{prescription_id}")
    assert by_id[issued["dispense"]["operationId"]][1].endswith("/dispensations")
    assert issued["dispense"]["parameters"] == {
        "prescription_id": "$response.body#/prescription_id"
    }
    assert by_id[dispensed["bill"]["operationId"]][1].endswith("/billing")
    assert by_id[dispensed["withdraw"]["operationId"]][1].endswith("/withdrawal")
    assert dispensed["bill"]["parameters"] == {
        "prescription_id": "$request.path.prescription_id",
        "dispensation_id": "$response.body#/dispensation_id",
    }


def test_a_whole_number_written_with_a_decimal_point_is_that_number(
    tmp_path: Path, people: People
) -> None:
    """JSON Schema's `integer` admits 2.0: the server may not refuse what its document allows."""
    with TestClient(build_app(settings_for(tmp_path))) as client:
        created = client.post(
            "/v1/prescriptions", json=people.prescription_body(3), headers=people.as_prescriber()
        ).json()["prescription_id"]
        path = f"/v1/prescriptions/{created}/dispensations"
        whole = client.post(
            path,
            json={"lines": [{"line_no": 1.0, "quantity": 2.0}]},
            headers=people.as_pharmacist(),
        )
        fractional = client.post(
            path, json={"lines": [{"line_no": 1, "quantity": 0.5}]}, headers=people.as_pharmacist()
        )
        text = client.post(
            path, json={"lines": [{"line_no": 1, "quantity": "1"}]}, headers=people.as_pharmacist()
        )

    assert whole.status_code == 201, whole.text
    assert [line["dispensed"] for line in whole.json()["lines"]] == [2]
    assert fractional.status_code == 400
    assert text.status_code == 400
