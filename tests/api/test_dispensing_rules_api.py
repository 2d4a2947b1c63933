"""Contract v1.1, dispensing: what may be given now, narcotics, dispensed_at, withdrawals and
adaptations, through HTTP on the embedded default and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec
import pytest

from domain.calendar import Moment
from domain.identifiers import Cip13
from tests.api.test_prescriptions_api import assert_problem
from tests.conftest import Client
from tools.cast import People

MORPHINE = {"system": "CIP13", "code": Cip13.from_body("340093332352").value, "label": "Skenan"}


def prescribe(client: Client, people: People, *lines: dict[str, Any], **changes: Any) -> str:
    body = {
        "patient": {"ins": changes.pop("ins", people.patient)},
        "execution_view_consent": changes.pop("consent", True),
        "kind": changes.pop("kind", "standard"),
        "lines": list(lines),
        **changes,
    }
    response = client.post("/v1/prescriptions", json=body, headers=people.as_prescriber())
    assert response.status_code == 201, response.text
    number: str = response.json()["prescription_id"]
    return number


def levothyrox(quantity: int = 3, duration_days: int = 90) -> dict[str, Any]:
    product = {"system": "CIP13", "code": Cip13.from_body("340093000003").value, "label": "L"}
    return {
        "product": product,
        "quantity": quantity,
        "dosage": "1 par jour",
        "duration_days": duration_days,
    }


def morphine(**extra: Any) -> dict[str, Any]:
    line = {"product": MORPHINE, "quantity": 4, "dosage": "1 matin et soir", "duration_days": 28}
    return {**line, "narcotic": True, **extra}


def give(
    client: Client, people: People, number: str, quantity: int, **extra: Any
) -> Any:  # the response
    finess = extra.pop("finess", None)
    body = {"lines": [{"line_no": 1, "quantity": quantity}], **extra}
    return client.post(
        f"/v1/prescriptions/{number}/dispensations",
        json=body,
        headers=people.as_pharmacist(finess),
    )


def allowed(client: Client, people: People, number: str, **params: str) -> Any:
    return client.get(
        f"/v1/prescriptions/{number}/dispensable", params=params, headers=people.as_pharmacist()
    )


def travel(client: Client, days: float) -> None:
    """Move the server's clock: the service reads the instant through its `clock`."""
    service = client.app.state.service
    service.clock = lambda: _moment(datetime.now(UTC) + timedelta(days=days))


def _moment(at: datetime) -> Moment:
    return Moment(at=at, today=at.date())


# --- dispensable and the command agree --------------------------------------------------------


def test_dispensable_says_what_the_command_then_enforces(client: Client, people: People) -> None:
    number = prescribe(client, people, levothyrox(12, 360))

    answer = allowed(client, people, number)
    too_many = give(client, people, number, 2)
    just_enough = give(client, people, number, 1)
    after = allowed(client, people, number).json()["lines"][0]

    line = answer.json()["lines"][0]
    assert answer.status_code == 200
    assert (line["max_quantity"], line["reason"]) == (1, "quantity_exceeds_allowed_now")
    problem = assert_problem(too_many, 409, "quantity_exceeds_allowed_now")
    assert problem["max_quantity"] == 1 and "line 1" in problem["detail"]
    assert just_enough.status_code == 201
    next_on = date.fromisoformat(after["next_on"])
    assert (after["max_quantity"], after["reason"]) == (0, "quantity_exceeds_allowed_now")
    assert (next_on - datetime.now(UTC).date()).days in (22, 23)  # 30 days, 7 early


def test_the_read_shows_covered_until_and_the_new_line_fields(
    client: Client, people: People
) -> None:
    number = prescribe(client, people, morphine(fraction_days=7), kind="secure")
    give(client, people, number, 1)

    line = client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist()).json()[
        "lines"
    ][0]

    assert (line["narcotic"], line["fraction_days"], line["overlap_allowed"]) == (True, 7, False)
    assert line["assimilated"] is False
    covered = date.fromisoformat(line["covered_until"]) - datetime.now(UTC).date()
    assert covered.days in (6, 7, 8)  # 7 days from the pharmacy's today


def test_only_pharmacists_ask_what_may_be_dispensed(client: Client, people: People) -> None:
    number = prescribe(client, people, levothyrox())

    response = client.get(f"/v1/prescriptions/{number}/dispensable", headers=people.as_prescriber())

    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize(
    ("at", "why"),
    [("yesterday-ish", "format"), ("+1h", "ahead"), ("-73h", "behind")],
)
def test_dispensable_at_is_bounded_like_dispensed_at(
    client: Client, people: People, at: str, why: str
) -> None:
    number = prescribe(client, people, levothyrox())
    now = datetime.now(UTC)
    value = {
        "yesterday-ish": "hier",
        "+1h": (now + timedelta(hours=1)).isoformat(),
        "-73h": (now - timedelta(hours=73)).isoformat(),
    }[at]

    problem = assert_problem(allowed(client, people, number, at=value), 422, "invalid_request")

    assert problem["field"] == "at", why


# --- narcotics --------------------------------------------------------------------------------


def test_two_narcotic_prescriptions_of_one_patient_do_not_overlap(
    client: Client, people: People
) -> None:
    first = prescribe(client, people, morphine(), kind="secure")
    second = prescribe(client, people, morphine(), kind="secure")
    assert give(client, people, first, 4).status_code == 201

    refused = give(client, people, second, 1, finess=people.other_pharmacy)
    line = allowed(client, people, second).json()["lines"][0]

    problem = assert_problem(refused, 409, "narcotic_overlap")
    assert problem["max_quantity"] == 0
    assert (line["max_quantity"], line["reason"]) == (0, "narcotic_overlap")


def test_the_prescriber_may_allow_the_overlap(client: Client, people: People) -> None:
    first = prescribe(client, people, morphine(), kind="secure")
    second = prescribe(client, people, morphine(overlap_allowed=True), kind="secure")
    give(client, people, first, 4)

    assert give(client, people, second, 4, finess=people.other_pharmacy).status_code == 201


def test_a_late_narcotic_gets_the_days_left(client: Client, people: People) -> None:
    ten_days_ago = (datetime.now(UTC).date() - timedelta(days=10)).isoformat()
    number = prescribe(client, people, morphine(), kind="secure", issued_on=ten_days_ago)

    line = allowed(client, people, number).json()["lines"][0]

    assert line["max_quantity"] in (2, 3)  # 17 to 19 days left of 28 depending on the hour
    assert give(client, people, number, line["max_quantity"] + 1).status_code == 409
    assert give(client, people, number, line["max_quantity"]).status_code == 201


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (morphine(fraction_days=28), "lines[0].fraction_days"),
        ({**levothyrox(), "fraction_days": 7}, "lines[0].fraction_days"),
        ({**levothyrox(), "overlap_allowed": True}, "lines[0].overlap_allowed"),
        ({**levothyrox(3, 85), "assimilated": True}, "lines[0].duration_days"),
    ],
    ids=["fraction-as-long-as-the-line", "fraction-not-narcotic", "overlap-not-narcotic", "84d"],
)
def test_prescribing_mentions_are_checked(
    client: Client, people: People, line: dict[str, Any], field: str
) -> None:
    body = {
        "patient": {"ins": people.patient},
        "execution_view_consent": True,
        "kind": "secure",
        "lines": [line],
    }

    response = client.post("/v1/prescriptions", json=body, headers=people.as_prescriber())

    assert assert_problem(response, 422, "invalid_request")["field"] == field


def test_tramadol_needs_a_secure_prescription(client: Client, people: People) -> None:
    body = {
        "patient": {"ins": people.patient},
        "execution_view_consent": True,
        "lines": [{**levothyrox(1, 30), "assimilated": True}],
    }

    response = client.post("/v1/prescriptions", json=body, headers=people.as_prescriber())

    assert "secure" in assert_problem(response, 422, "invalid_request")["detail"]


# --- dispensed_at -----------------------------------------------------------------------------


def test_dispensed_at_is_kept_beside_when_it_was_recorded(client: Client, people: People) -> None:
    number = prescribe(client, people, levothyrox(3, 8))
    travel(client, days=2)  # the LGO records two days later what it handed over 30 hours ago
    handed_over = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=18)

    response = give(client, people, number, 1, dispensed_at=handed_over.isoformat())
    read = client.get(f"/v1/prescriptions/{number}", headers=people.as_patient()).json()

    assert response.status_code == 201, response.text
    dispensation = read["dispensations"][0]
    assert datetime.fromisoformat(dispensation["dispensed_at"]) == handed_over
    assert datetime.fromisoformat(dispensation["recorded_at"]) > handed_over + timedelta(hours=29)


def test_a_dispensing_may_not_be_dated_before_the_prescription(
    client: Client, people: People
) -> None:
    number = prescribe(client, people, levothyrox(3, 8))
    an_hour_before = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    response = give(client, people, number, 1, dispensed_at=an_hour_before)

    assert "registered" in assert_problem(response, 422, "invalid_request")["detail"]


@pytest.mark.parametrize("offset", [timedelta(hours=-73), timedelta(minutes=6)])
def test_dispensed_at_out_of_bounds_is_refused(
    client: Client, people: People, offset: timedelta
) -> None:
    number = prescribe(client, people, levothyrox(3, 8))

    response = give(
        client, people, number, 1, dispensed_at=(datetime.now(UTC) + offset).isoformat()
    )

    assert assert_problem(response, 422, "invalid_request")["field"] == "dispensed_at"


# --- DCI lines --------------------------------------------------------------------------------


def test_a_substance_line_needs_the_pack_handed_over(client: Client, people: People) -> None:
    line = {**levothyrox(2, 6), "product": {"system": "DCI", "label": "amoxicilline 500 mg"}}
    number = prescribe(client, people, line)
    pack = {"system": "CIP13", "code": Cip13.from_body("340093576568").value, "label": "Arrow"}

    without = give(client, people, number, 1)
    with_pack = client.post(
        f"/v1/prescriptions/{number}/dispensations",
        json={"lines": [{"line_no": 1, "quantity": 1, "product": pack}]},
        headers=people.as_pharmacist(),
    )

    assert assert_problem(without, 422, "invalid_request")["field"] == "lines[0].product"
    assert with_pack.status_code == 201


# --- withdrawal -------------------------------------------------------------------------------


def withdraw(client: Client, people: People, number: str, dispensation_id: str, **who: Any) -> Any:
    return client.post(
        f"/v1/prescriptions/{number}/dispensations/{dispensation_id}/withdrawal",
        json={"reason": "saisie sur la mauvaise ordonnance"},
        headers=people.as_pharmacist(who.get("finess")),
    )


def test_a_withdrawn_dispensing_counts_nowhere(client: Client, people: People) -> None:
    number = prescribe(client, people, levothyrox())
    dispensation_id = give(client, people, number, 1).json()["dispensation_id"]

    response = withdraw(client, people, number, dispensation_id)
    history = client.get(f"/v1/prescriptions/{number}/events", headers=people.as_patient())

    body = response.json()
    assert response.status_code == 201, response.text
    assert (body["lines"][0]["remaining"], body["status"]) == (3, "active")
    assert body["dispensations"][0]["withdrawn"] is True
    assert body["lines"][0]["covered_until"] is None
    assert allowed(client, people, number).json()["lines"][0]["max_quantity"] == 1
    withdrawn = history.json()["events"][-1]
    assert withdrawn["type"] == "DispensationWithdrawn"
    assert withdrawn["actor"] == {
        "role": "pharmacist",
        "rpps": people.pharmacist,
        "finess": people.pharmacy,
    }


def test_withdrawal_is_for_the_pharmacy_that_dispensed(client: Client, people: People) -> None:
    number = prescribe(client, people, levothyrox())
    dispensation_id = give(client, people, number, 1).json()["dispensation_id"]

    response = withdraw(client, people, number, dispensation_id, finess=people.other_pharmacy)

    assert_problem(response, 404, "not_found")


def test_a_billed_dispensing_is_not_withdrawn(client: Client, people: People) -> None:
    number = prescribe(client, people, levothyrox())
    dispensation_id = give(client, people, number, 1).json()["dispensation_id"]
    client.post(
        f"/v1/prescriptions/{number}/dispensations/{dispensation_id}/billing",
        json={"invoice_number": "F-1", "lines": [{"line_no": 1, "quantity": 1, "amount_cents": 9}]},
        headers=people.as_pharmacist(),
    )

    assert_problem(withdraw(client, people, number, dispensation_id), 409, "already_billed")


def test_a_withdrawn_dispensing_is_not_billed(client: Client, people: People) -> None:
    number = prescribe(client, people, levothyrox())
    dispensation_id = give(client, people, number, 1).json()["dispensation_id"]
    withdraw(client, people, number, dispensation_id)

    response = client.post(
        f"/v1/prescriptions/{number}/dispensations/{dispensation_id}/billing",
        json={"invoice_number": "F-2", "lines": [{"line_no": 1, "quantity": 1, "amount_cents": 9}]},
        headers=people.as_pharmacist(),
    )

    assert_problem(response, 409, "dispensation_withdrawn")


def test_withdrawal_window_closes_after_seven_days(client: Client, people: People) -> None:
    number = prescribe(client, people, levothyrox())
    dispensation_id = give(client, people, number, 1).json()["dispensation_id"]

    travel(client, days=7.5)

    response = withdraw(client, people, number, dispensation_id)
    assert_problem(response, 409, "withdrawal_window_closed")


# --- adaptations ------------------------------------------------------------------------------


def adapt(client: Client, people: People, number: str, **changes: Any) -> Any:
    body = {
        "line_no": 1,
        "description": "Boîte de 28 au lieu de 30, posologie inchangée",
        "prescriber_rpps": people.prescriber,
        "agreed_on": datetime.now(UTC).date().isoformat(),
        **changes,
    }
    return client.post(
        f"/v1/prescriptions/{number}/adaptations", json=body, headers=people.as_pharmacist()
    )


def test_an_adaptation_is_recorded_with_the_prescriber_agreement(
    client: Client, people: People
) -> None:
    number = prescribe(client, people, levothyrox())

    response = adapt(client, people, number)
    history = client.get(f"/v1/prescriptions/{number}/events", headers=people.as_insurer())

    assert response.status_code == 201, response.text
    (adaptation,) = response.json()["adaptations"]
    assert adaptation["prescriber_rpps"] == people.prescriber
    assert adaptation["finess"] == people.pharmacy
    assert history.json()["events"][-1]["type"] == "AdaptationRecorded"


def test_adaptations_are_masked_for_the_prescriber_under_opposition(
    client: Client, people: People
) -> None:
    number = prescribe(client, people, levothyrox(), consent=False)
    adapt(client, people, number)

    read = client.get(f"/v1/prescriptions/{number}", headers=people.as_prescriber()).json()

    assert read["adaptations"] == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"line_no": 9}, "line_no"),
        ({"prescriber_rpps": "12345678901"}, "prescriber_rpps"),
        ({"agreed_on": "2099-01-01"}, "agreed_on"),
        ({"description": "  "}, "description"),
    ],
    ids=["unknown-line", "bad-rpps", "future-agreement", "blank"],
)
def test_an_impossible_adaptation_is_invalid(
    client: Client, people: People, changes: dict[str, Any], field: str
) -> None:
    number = prescribe(client, people, levothyrox())

    response = adapt(client, people, number, **changes)

    assert assert_problem(response, 422, "invalid_request")["field"] == field


# --- the OpenAPI document ---------------------------------------------------------------------


def test_the_openapi_document_describes_the_v1_1_dispensing_additions(client: Client) -> None:
    schema = msgspec.json.decode(client.get("/schema/openapi.json").content)
    paths = schema["paths"]

    assert "/v1/prescriptions/{prescription_id}/dispensable" in paths
    assert "/v1/prescriptions/{prescription_id}/adaptations" in paths
    assert "/v1/prescriptions/{prescription_id}/dispensations/{dispensation_id}/withdrawal" in paths
    text = msgspec.json.encode(schema).decode()
    for name in ("dispensed_at", "fraction_days", "overlap_allowed", "covered_until", "next_on"):
        assert name in text
