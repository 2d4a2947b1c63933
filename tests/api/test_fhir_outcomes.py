"""Under /fhir, what the middleware and the router refuse is an OperationOutcome too (never
problem+json), with the /v1 code: no token, a bad one, a forbidden role, a body too large or not
JSON, no such route or method, past the rate limit; and no answer lingers in a cache. Each
operation states in the OpenAPI document exactly the outcomes it can answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.config import Settings
from adapters.http.fhir_problem_codes import FHIR_PROBLEMS_OF
from tests.api.test_fhir_dispensing import dispense, v1_prescription
from tests.api.test_fhir_prescribing import FHIR_JSON, assert_outcome
from tests.conftest import Client
from tools.cast import SECRET, People

LINE = "/fhir/R4/MedicationRequest/YQGS3AN1034DP30GCFV1-1"


def test_no_token_or_a_bad_one_is_401_with_the_challenge(client: Client) -> None:
    missing = client.get(LINE)
    forged = client.get(LINE, headers={"Authorization": "Bearer forged"})

    for answer in (missing, forged):
        assert_outcome(answer, 401, "unauthenticated")
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["issue"][0]["code"] == "login"


def test_a_role_that_may_not_dispense_is_403(client: Client, people: People) -> None:
    number = v1_prescription(client, people, 3)

    answer = client.post(
        "/fhir/R4/MedicationDispense",
        json=dispense(f"MedicationRequest/{number}-1", 1),
        headers={**people.as_patient(), **FHIR_JSON},
    )

    assert_outcome(answer, 403, "forbidden")


def test_a_body_too_large_is_413(client: Client, people: People) -> None:
    text = "x" * 100_000
    body = {"resourceType": "MedicationRequest", "note": [{"text": text}]}

    answer = client.post(
        "/fhir/R4/MedicationRequest", json=body, headers={**people.as_prescriber(), **FHIR_JSON}
    )

    assert_outcome(answer, 413, "payload_too_large")


def test_a_body_that_is_not_json_is_415(client: Client, people: People) -> None:
    headers = {**people.as_prescriber(), "content-type": "text/plain"}

    answer = client.post("/fhir/R4/MedicationRequest", content=b"x", headers=headers)

    assert_outcome(answer, 415, "unsupported_media_type")


def test_no_such_route_or_method_is_404_or_405(client: Client, people: People) -> None:
    unknown = client.get("/fhir/R4/Patient/1", headers=people.as_prescriber())
    other_version = client.get("/fhir/R5/metadata")
    method = client.delete(LINE, headers=people.as_prescriber())

    assert_outcome(unknown, 404, "route_not_found")
    assert "GET /fhir/R4/Patient/1" in unknown.json()["issue"][0]["diagnostics"]
    assert_outcome(other_version, 404, "route_not_found")
    assert_outcome(method, 405, "method_not_allowed")


def test_fhir_answers_are_not_cached(client: Client, people: People) -> None:
    number = v1_prescription(client, people, 3)

    for answer in (
        client.get(f"/fhir/R4/MedicationRequest/{number}-1", headers=people.as_pharmacist()),
        client.get(LINE),
    ):
        assert answer.headers["cache-control"] == "no-store"


def test_past_the_rate_limit_is_429_with_retry_after(tmp_path: Path, people: People) -> None:
    env = {"ORDO_RATE_LIMIT_PER_MINUTE": "6", "ORDO_RATE_LIMIT_BURST": "2"}
    settings = Settings.from_env(
        {"ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH_SECRET": SECRET, **env}
    )
    with TestClient(build_app(settings)) as limited:
        answers: list[Any] = [limited.get(LINE, headers=people.as_patient()) for _ in range(3)]

    assert [a.status_code for a in answers[:2]] == [404, 404]
    assert_outcome(answers[2], 429, "rate_limited")
    assert answers[2].json()["issue"][0]["code"] == "throttled"
    assert 1 <= int(answers[2].headers["retry-after"]) <= 10


def test_every_fhir_operation_declares_exactly_its_outcomes(client: Client) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    fhir = {p: item for p, item in paths.items() if p.startswith("/fhir/R4")}

    assert {(m.upper(), p) for p, item in fhir.items() for m in item} == set(FHIR_PROBLEMS_OF)
    for (method, path), problems in FHIR_PROBLEMS_OF.items():
        responses = fhir[path][method.lower()]["responses"]
        refusals = {status for status in responses if status.startswith(("4", "5"))}
        assert refusals == {str(status) for status, _ in problems}, f"{method} {path}"
        for status, code in problems:
            answer = responses[str(status)]
            assert f"`{code}`" in answer["description"], f"{method} {path} {status} {code}"
            assert set(answer["content"]) == {"application/fhir+json"}, f"{method} {path}"
        assert "Retry-After" in responses["429"]["headers"]
