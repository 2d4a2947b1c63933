"""The v1 contract through HTTP, on the embedded default and on PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from domain.prescription import add_months
from tests.conftest import Client
from tools.cast import People


def issue(client: Client, people: People, *quantities: int, **changes: Any) -> dict[str, Any]:
    body = people.prescription_body(*quantities, consent=changes.pop("consent", True))
    body.update(changes)
    response = client.post("/v1/prescriptions", json=body, headers=people.as_prescriber())
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


def dispense(
    client: Client, people: People, number: str, *lines: tuple[int, int], **headers: str
) -> Any:
    body = {"lines": [{"line_no": no, "quantity": quantity} for no, quantity in lines]}
    finess = headers.pop("finess", None)
    return client.post(
        f"/v1/prescriptions/{number}/dispensations",
        json=body,
        headers={**people.as_pharmacist(finess), **headers},
    )


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code and problem["status"] == status
    assert {"type", "title", "detail"} <= problem.keys()
    return problem


# --- registering and reading -----------------------------------------------------------------


def test_a_prescriber_registers_a_prescription_and_gets_its_qr_payload(
    client: Client, people: People
) -> None:
    created = issue(client, people, 3, 1)

    assert created["status"] == "active"
    assert created["qr_payload"] == created["prescription_id"]
    assert [(x["line_no"], x["remaining"]) for x in created["lines"]] == [(1, 3), (2, 1)]
    assert created["expires_on"] == str(add_months(date.fromisoformat(created["issued_on"]), 3))


@pytest.mark.parametrize("caller", ["pharmacist", "prescriber", "patient", "insurer"])
def test_the_four_roles_read_a_prescription(client: Client, people: People, caller: str) -> None:
    number = issue(client, people)["prescription_id"]
    headers = {
        "pharmacist": people.as_pharmacist(),
        "prescriber": people.as_prescriber(),
        "patient": people.as_patient(),
        "insurer": people.as_insurer(),
    }[caller]

    response = client.get(f"/v1/prescriptions/{number}", headers=headers)

    assert response.status_code == 200
    assert response.json()["prescription_id"] == number


@pytest.mark.parametrize("caller", ["other prescriber", "other patient"])
def test_a_caller_who_may_not_see_it_gets_404_like_a_missing_one(
    client: Client, people: People, caller: str
) -> None:
    number = issue(client, people)["prescription_id"]
    headers = (
        people.as_prescriber(people.other_prescriber)
        if caller == "other prescriber"
        else people.as_patient(people.corsican_patient)
    )

    assert_problem(client.get(f"/v1/prescriptions/{number}", headers=headers), 404, "not_found")


def test_the_number_is_read_in_any_case_with_or_without_dashes(
    client: Client, people: People
) -> None:
    number = issue(client, people)["prescription_id"]

    for typed in (number.lower(), number.replace("-", ""), " ".join(number.split("-"))):
        response = client.get(f"/v1/prescriptions/{typed}", headers=people.as_pharmacist())
        assert response.json()["prescription_id"] == number


def test_a_mistyped_number_is_not_found_never_another_prescription(
    client: Client, people: People
) -> None:
    number = issue(client, people)["prescription_id"]
    canonical = number.replace("-", "")
    i = next(i for i in range(len(canonical) - 1) if canonical[i] != canonical[i + 1])
    swapped = canonical[:i] + canonical[i + 1] + canonical[i] + canonical[i + 2 :]

    assert_problem(
        client.get(f"/v1/prescriptions/{swapped}", headers=people.as_pharmacist()), 404, "not_found"
    )
    assert_problem(
        client.get("/v1/prescriptions/NOT-A-NUMBER", headers=people.as_pharmacist()),
        404,
        "not_found",
    )


def test_the_qr_code_is_an_svg_of_the_number(client: Client, people: People) -> None:
    number = issue(client, people)["prescription_id"]

    response = client.get(f"/v1/prescriptions/{number}/qr.svg", headers=people.as_prescriber())

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in response.content


# --- dispensing ------------------------------------------------------------------------------


def test_a_pharmacy_dispenses_and_the_next_one_sees_it_at_once(
    client: Client, people: People
) -> None:
    number = issue(client, people, 3)["prescription_id"]

    first = dispense(client, people, number, (1, 2))
    seen_elsewhere = client.get(
        f"/v1/prescriptions/{number}", headers=people.as_pharmacist(people.other_pharmacy)
    ).json()

    assert first.status_code == 201
    assert first.json()["lines"] == [{"line_no": 1, "dispensed": 2, "remaining": 1}]
    assert first.json()["status"] == "partially_dispensed"
    assert seen_elsewhere["dispensed_elsewhere"] is True
    assert seen_elsewhere["lines"][0]["remaining"] == 1
    second = dispense(client, people, number, (1, 1), finess=people.other_pharmacy)
    assert second.json()["dispensed_elsewhere"] is True and second.json()["status"] == "dispensed"


@pytest.mark.parametrize(
    ("already", "asked", "status", "code"),
    [
        ((1, 3), (1, 1), 409, "already_dispensed"),
        ((1, 2), (1, 2), 409, "quantity_exceeds_remaining"),
        (None, (9, 1), 422, "invalid_request"),
        (None, (1, 0), 422, "invalid_request"),
    ],
    ids=["nothing-left", "less-left-than-asked", "unknown-line", "zero-quantity"],
)
def test_a_refused_dispensing_records_nothing(  # noqa: PLR0917 - parametrized cases
    client: Client,
    people: People,
    already: tuple[int, int] | None,
    asked: tuple[int, int],
    status: int,
    code: str,
) -> None:
    number = issue(client, people, 3)["prescription_id"]
    if already:
        assert dispense(client, people, number, already).status_code == 201
    before = client.get(f"/v1/prescriptions/{number}/events", headers=people.as_insurer()).json()

    assert_problem(dispense(client, people, number, asked), status, code)

    after = client.get(f"/v1/prescriptions/{number}/events", headers=people.as_insurer()).json()
    assert after == before


def test_cancelled_and_expired_prescriptions_are_not_dispensed(
    client: Client, people: People
) -> None:
    cancelled = issue(client, people)["prescription_id"]
    client.post(
        f"/v1/prescriptions/{cancelled}/cancel",
        json={"reason": "erreur"},
        headers=people.as_prescriber(),
    )
    old = issue(client, people, issued_on=str(date.today() - timedelta(days=100)))[
        "prescription_id"
    ]

    assert_problem(dispense(client, people, cancelled, (1, 1)), 409, "prescription_cancelled")
    assert_problem(dispense(client, people, old, (1, 1)), 409, "prescription_expired")


def test_a_substitute_is_recorded_with_the_dispensing(client: Client, people: People) -> None:
    number = issue(client, people)["prescription_id"]
    generic = {"system": "CIP13", "code": people.generic, "label": "Paracétamol Biogaran 1 g"}

    client.post(
        f"/v1/prescriptions/{number}/dispensations",
        json={"lines": [{"line_no": 1, "quantity": 1, "product": generic}]},
        headers=people.as_pharmacist(),
    )

    read = client.get(f"/v1/prescriptions/{number}", headers=people.as_patient()).json()
    assert read["dispensations"][0]["lines"][0]["product"] == generic
    assert read["lines"][0]["product"]["code"] == people.paracetamol


def test_a_retry_with_the_same_key_returns_the_first_answer(client: Client, people: People) -> None:
    number = issue(client, people, 3)["prescription_id"]

    first = dispense(client, people, number, (1, 1), **{"Idempotency-Key": "lgo-42"})
    again = dispense(client, people, number, (1, 1), **{"Idempotency-Key": "lgo-42"})
    other_body = dispense(client, people, number, (1, 2), **{"Idempotency-Key": "lgo-42"})

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert_problem(other_body, 422, "idempotency_key_reused")
    read = client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()
    assert read["lines"][0]["dispensed"] == 1


def test_the_same_key_from_another_pharmacy_is_another_request(
    client: Client, people: People
) -> None:
    number = issue(client, people, 3)["prescription_id"]

    dispense(client, people, number, (1, 1), **{"Idempotency-Key": "k"})
    other = dispense(
        client, people, number, (1, 1), finess=people.other_pharmacy, **{"Idempotency-Key": "k"}
    )

    assert other.status_code == 201
    assert other.json()["lines"][0]["dispensed"] == 2


# --- billing ---------------------------------------------------------------------------------


def bill(
    client: Client, people: People, number: str, dispensation_id: str, quantity: int, **kw: str
) -> Any:
    return client.post(
        f"/v1/prescriptions/{number}/dispensations/{dispensation_id}/billing",
        json={
            "invoice_number": "F-1",
            "lines": [{"line_no": 1, "quantity": quantity, "amount_cents": 250}],
        },
        headers=people.as_pharmacist(kw.get("finess")),
    )


def test_billing_follows_the_dispensing(client: Client, people: People) -> None:
    number = issue(client, people, 3)["prescription_id"]
    dispensation_id = dispense(client, people, number, (1, 2)).json()["dispensation_id"]

    assert_problem(
        bill(client, people, number, dispensation_id, 3), 422, "billing_exceeds_dispensed"
    )
    assert_problem(
        bill(client, people, number, dispensation_id, 1, finess=people.other_pharmacy),
        403,
        "forbidden",
    )
    assert_problem(bill(client, people, number, "unknown", 1), 404, "not_found")
    billed = bill(client, people, number, dispensation_id, 2)
    assert billed.status_code == 201 and billed.json()["billed"] is True
    assert_problem(bill(client, people, number, dispensation_id, 1), 409, "already_billed")


# --- cancelling, consent, history, transmissions ---------------------------------------------


def test_only_its_prescriber_cancels_a_prescription(client: Client, people: People) -> None:
    number = issue(client, people, 3)["prescription_id"]
    dispense(client, people, number, (1, 1))
    reason = {"reason": "erreur de posologie"}

    assert_problem(
        client.post(
            f"/v1/prescriptions/{number}/cancel", json=reason, headers=people.as_pharmacist()
        ),
        403,
        "forbidden",
    )
    assert_problem(
        client.post(
            f"/v1/prescriptions/{number}/cancel",
            json=reason,
            headers=people.as_prescriber(people.other_prescriber),
        ),
        404,
        "not_found",
    )
    cancelled = client.post(
        f"/v1/prescriptions/{number}/cancel", json=reason, headers=people.as_prescriber()
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["lines"][0]["remaining"] == 0
    assert_problem(
        client.post(
            f"/v1/prescriptions/{number}/cancel", json=reason, headers=people.as_prescriber()
        ),
        409,
        "prescription_cancelled",
    )


def test_the_patients_opposition_hides_execution_from_the_prescriber(
    client: Client, people: People
) -> None:
    number = issue(client, people, 3)["prescription_id"]
    dispense(client, people, number, (1, 3))
    url = f"/v1/prescriptions/{number}/execution-view-consent"

    assert_problem(
        client.put(url, json={"consent": False}, headers=people.as_pharmacist()), 403, "forbidden"
    )
    assert_problem(
        client.put(
            url, json={"consent": False}, headers=people.as_patient(people.corsican_patient)
        ),
        404,
        "not_found",
    )
    assert client.put(url, json={"consent": False}, headers=people.as_patient()).status_code == 200

    seen = client.get(f"/v1/prescriptions/{number}", headers=people.as_prescriber()).json()
    assert (seen["execution_visible"], seen["status"], seen["dispensations"]) == (
        False,
        "active",
        [],
    )
    assert seen["lines"][0]["dispensed"] is None and seen["lines"][0]["remaining"] is None
    assert client.put(url, json={"consent": True}, headers=people.as_insurer()).status_code == 200
    assert (
        client.get(f"/v1/prescriptions/{number}", headers=people.as_prescriber()).json()["status"]
        == "dispensed"
    )


def test_the_history_lists_every_fact_with_its_actor(client: Client, people: People) -> None:
    number = issue(client, people, 3)["prescription_id"]
    dispensation_id = dispense(client, people, number, (1, 2)).json()["dispensation_id"]
    bill(client, people, number, dispensation_id, 2)

    history = client.get(f"/v1/prescriptions/{number}/events", headers=people.as_patient()).json()[
        "events"
    ]

    assert [e["type"] for e in history] == [
        "PrescriptionIssued",
        "DispensationRecorded",
        "BillingRecorded",
    ]
    assert history[0]["actor"] == {"role": "prescriber", "rpps": people.prescriber}
    assert history[1]["actor"] == {
        "role": "pharmacist",
        "rpps": people.pharmacist,
        "finess": people.pharmacy,
    }
    assert (
        client.get(f"/v1/prescriptions/{number}/events", headers=people.as_insurer()).status_code
        == 200
    )
    for headers in (people.as_prescriber(), people.as_pharmacist()):
        assert_problem(
            client.get(f"/v1/prescriptions/{number}/events", headers=headers), 403, "forbidden"
        )


def test_a_patient_sends_a_prescription_to_a_pharmacy(client: Client, people: People) -> None:
    number = issue(client, people, 1)["prescription_id"]
    url = f"/v1/prescriptions/{number}/transmissions"
    body = {"finess": people.other_pharmacy, "message": "Je passe demain"}

    assert client.post(url, json=body, headers=people.as_patient()).status_code == 201
    assert_problem(client.post(url, json=body, headers=people.as_pharmacist()), 403, "forbidden")
    assert_problem(
        client.post(url, json={"finess": "123456789"}, headers=people.as_patient()),
        422,
        "invalid_request",
    )
    dispense(client, people, number, (1, 1))
    assert_problem(
        client.post(url, json=body, headers=people.as_patient()), 409, "already_dispensed"
    )


# --- bad input and authentication ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "field_hint"),
    [
        (b"{not json", 400, "malformed"),
        (
            b'{"patient": {"ins": "x"}, "execution_view_consent": true, "lines": [], "extra": 1}',
            400,
            "extra",
        ),
        (
            b'{"patient": {"ins": 184127645108946}, "execution_view_consent": true, "lines": []}',
            400,
            "patient.ins",
        ),
        (b'{"execution_view_consent": true, "lines": []}', 400, "patient"),
        (
            b'{"patient": {"ins": "184127645108946"}, "execution_view_consent": "true",'
            b' "lines": []}',
            400,
            "execution_view_consent",
        ),
        (
            b'{"patient": {"ins": "184127645108946"}, "execution_view_consent": true, "lines": ['
            b'{"product": {"system": "DCI", "label": "x"}, "quantity": "3", "dosage": "x",'
            b' "duration_days": 1}]}',
            400,
            "lines[0].quantity",
        ),
        (
            b'{"patient": {"ins": "184127645108947"}, "execution_view_consent": true, "lines": ['
            b'{"product": {"system": "DCI", "label": "x"}, "quantity": 1, "dosage": "x",'
            b' "duration_days": 1}]}',
            422,
            "patient.ins",
        ),
        (
            b'{"patient": {"ins": "184127645108946"}, "execution_view_consent": true,'
            b' "kind": "urgent", "lines": []}',
            400,
            "kind",
        ),
    ],
    ids=[
        "malformed-json",
        "unknown-field",
        "wrong-type",
        "missing-field",
        "string-for-a-boolean",
        "string-for-a-number",
        "bad-ins-key",
        "unknown-kind",
    ],
)
def test_bad_input_gets_a_4xx_problem_naming_the_field(
    client: Client, people: People, body: bytes, status: int, field_hint: str
) -> None:
    response = client.post(
        "/v1/prescriptions",
        content=body,
        headers={**people.as_prescriber(), "content-type": "application/json"},
    )

    problem = assert_problem(response, status, "invalid_request")
    assert field_hint in problem["detail"] + str(problem.get("field"))
    if "field" in problem:
        assert problem["field"] == field_hint


def test_an_oversize_body_is_refused_with_413(client: Client, people: People) -> None:
    huge = b'{"reason": "' + b"x" * 200_000 + b'"}'

    response = client.post(
        "/v1/prescriptions/ABCDE/cancel",
        content=huge,
        headers={**people.as_prescriber(), "content-type": "application/json"},
    )

    assert_problem(response, 413, "payload_too_large")


def test_a_role_without_the_right_gets_403(client: Client, people: People) -> None:
    assert_problem(
        client.post(
            "/v1/prescriptions", json=people.prescription_body(), headers=people.as_pharmacist()
        ),
        403,
        "forbidden",
    )
    number = issue(client, people)["prescription_id"]
    assert_problem(dispense_as(client, number, people.as_prescriber()), 403, "forbidden")


def dispense_as(client: Client, number: str, headers: dict[str, str]) -> Any:
    return client.post(
        f"/v1/prescriptions/{number}/dispensations",
        json={"lines": [{"line_no": 1, "quantity": 1}]},
        headers=headers,
    )


def test_operational_endpoints(client: Client, people: People) -> None:
    issue(client, people)

    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    metrics = client.get("/metrics").text
    assert 'path="/v1/prescriptions"' in metrics
    assert "ordo_request_duration_seconds_bucket" in metrics
    schema = client.get("/schema/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    dispensing = schema["paths"]["/v1/prescriptions/{prescription_id}/dispensations"]["post"]
    assert "requestBody" in dispensing and "Idempotency-Key" in str(dispensing["parameters"])
    assert_problem(client.get("/v2/nothing-here"), 404, "route_not_found")
    assert client.get("/schema").status_code == 200
