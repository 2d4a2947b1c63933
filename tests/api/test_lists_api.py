"""The lists, the inbox and their pagination, on the embedded default and on PostgreSQL.

Lists come from projections that may lag the log by up to a second, so each test waits for
the list to show what it expects, as a client polling would, for at most 5 seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.api.test_prescriptions_api import assert_problem, dispense, issue
from tests.conftest import Client
from tools.cast import People


def eventually(read: Callable[[], Any], until: Callable[[Any], bool], seconds: float = 5.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        answer = read()
        if until(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(0.02)


def prescriber_list(client: Client, people: People, **params: Any) -> Any:
    return client.get(
        "/v1/prescribers/me/prescriptions", params=params, headers=people.as_prescriber()
    )


def ids(page: dict[str, Any]) -> list[str]:
    return [item["prescription_id"] for item in page["items"]]


def test_a_prescriber_lists_their_own_prescriptions_newest_first(
    client: Client, people: People
) -> None:
    mine = [issue(client, people)["prescription_id"] for _ in range(3)]
    client.post(
        "/v1/prescriptions",
        json=people.prescription_body(),
        headers=people.as_prescriber(people.other_prescriber),
    )

    page = eventually(
        lambda: prescriber_list(client, people).json(), lambda p: len(p["items"]) == 3
    )

    assert ids(page) == mine[::-1]
    assert page["next_cursor"] is None


def test_list_items_read_like_the_single_read_and_reflect_a_dispensing(
    client: Client, people: People
) -> None:
    number = issue(client, people, 3)["prescription_id"]
    dispense(client, people, number, (1, 2))

    page = eventually(
        lambda: prescriber_list(client, people).json(),
        lambda p: p["items"] and p["items"][0]["lines"][0]["dispensed"] == 2,
    )

    single = client.get(f"/v1/prescriptions/{number}", headers=people.as_prescriber()).json()
    assert page["items"] == [single]


def test_the_prescriber_list_applies_the_patients_opposition(
    client: Client, people: People
) -> None:
    number = issue(client, people, 3)["prescription_id"]
    dispense(client, people, number, (1, 3))
    client.put(
        f"/v1/prescriptions/{number}/execution-view-consent",
        json={"consent": False},
        headers=people.as_patient(),
    )

    page = eventually(
        lambda: prescriber_list(client, people).json(),
        lambda p: p["items"] and not p["items"][0]["execution_view_consent"],
    )

    (item,) = page["items"]
    assert (item["execution_visible"], item["status"], item["dispensations"]) == (
        False,
        "active",
        [],
    )
    assert item["lines"][0]["dispensed"] is None


def test_pages_follow_the_cursor_and_stay_stable_while_new_prescriptions_arrive(
    client: Client, people: People
) -> None:
    numbers = [issue(client, people)["prescription_id"] for _ in range(5)]
    eventually(lambda: prescriber_list(client, people).json(), lambda p: len(p["items"]) == 5)

    first = prescriber_list(client, people, limit=2).json()
    newer = issue(client, people)["prescription_id"]
    eventually(lambda: prescriber_list(client, people).json(), lambda p: len(p["items"]) == 6)
    second = prescriber_list(client, people, limit=2, cursor=first["next_cursor"]).json()
    third = prescriber_list(client, people, limit=2, cursor=second["next_cursor"]).json()

    assert ids(first) + ids(second) + ids(third) == numbers[::-1]
    assert third["next_cursor"] is None
    assert newer not in ids(second) + ids(third)


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 501}, {"limit": "x"}, {"cursor": "not-a-cursor"}]
)
def test_a_bad_page_request_is_refused(
    client: Client, people: People, params: dict[str, Any]
) -> None:
    response = prescriber_list(client, people, **params)

    assert response.status_code in {400, 422}
    assert response.json()["code"] == "invalid_request"


def test_a_patient_lists_their_own_prescriptions_with_execution_data(
    client: Client, people: People
) -> None:
    number = issue(client, people, 3, consent=False)["prescription_id"]
    dispense(client, people, number, (1, 1))

    page = eventually(
        lambda: client.get("/v1/patients/me/prescriptions", headers=people.as_patient()).json(),
        lambda p: p["items"] and p["items"][0]["lines"][0]["dispensed"] == 1,
    )
    other = client.get(
        "/v1/patients/me/prescriptions", headers=people.as_patient(people.corsican_patient)
    ).json()

    assert ids(page) == [number] and page["items"][0]["execution_visible"]
    assert other["items"] == []


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/v1/prescribers/me/prescriptions", "pharmacist"),
        ("/v1/patients/me/prescriptions", "prescriber"),
        ("/v1/pharmacies/me/inbox", "patient"),
    ],
)
def test_each_list_is_for_its_own_role(
    client: Client, people: People, path: str, role: str
) -> None:
    headers = {
        "pharmacist": people.as_pharmacist(),
        "prescriber": people.as_prescriber(),
        "patient": people.as_patient(),
    }[role]

    assert_problem(client.get(path, headers=headers), 403, "forbidden")
    assert client.get(path).status_code == 401


def inbox(client: Client, people: People, finess: str | None = None) -> Any:
    return client.get("/v1/pharmacies/me/inbox", headers=people.as_pharmacist(finess)).json()


def transmit(client: Client, people: People, number: str, finess: str, message: str = "") -> None:
    response = client.post(
        f"/v1/prescriptions/{number}/transmissions",
        json={"finess": finess, "message": message},
        headers=people.as_patient(),
    )
    assert response.status_code == 201, response.text


def test_a_transmitted_prescription_waits_in_the_pharmacys_inbox_until_fully_dispensed(
    client: Client, people: People
) -> None:
    first = issue(client, people, 2)["prescription_id"]
    second = issue(client, people, 1)["prescription_id"]
    transmit(client, people, first, people.pharmacy, "Je passe à 18 h")
    transmit(client, people, second, people.pharmacy)

    page = eventually(lambda: inbox(client, people), lambda p: len(p["items"]) == 2)
    assert ids(page) == [first, second]  # oldest transmission first
    assert page["items"][0]["message"] == "Je passe à 18 h"
    assert page["items"][0]["patient"] == {"ins": people.patient}
    assert inbox(client, people, people.other_pharmacy)["items"] == []

    dispense(client, people, first, (1, 1), finess=people.other_pharmacy)
    page = eventually(
        lambda: inbox(client, people), lambda p: p["items"][0]["lines"][0]["remaining"] == 1
    )
    dispense(client, people, first, (1, 1), finess=people.other_pharmacy)
    client.post(
        f"/v1/prescriptions/{second}/cancel",
        json={"reason": "erreur"},
        headers=people.as_prescriber(),
    )

    assert eventually(lambda: inbox(client, people), lambda p: not p["items"])["items"] == []
