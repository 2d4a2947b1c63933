"""Conditional reads of a prescription (`ETag`, `If-None-Match` -> 304): a caller is told "not
modified" only when the representation it holds is exactly the one it would be given now; a new
event, the patient's opposition or another caller's view never matches. On both stores."""

from __future__ import annotations

from typing import Any

from tests.api.test_access_log_api import entries_within_a_second
from tests.conftest import Client
from tools.cast import People


def issued(client: Client, people: People, consent: bool = True) -> str:
    answer = client.post(
        "/v1/prescriptions",
        json=people.prescription_body(3, consent=consent),
        headers=people.as_prescriber(),
    )
    assert answer.status_code == 201, answer.text
    number: str = answer.json()["prescription_id"]
    return number


def dispensed(client: Client, people: People, number: str, quantity: int = 1) -> None:
    answer = client.post(
        f"/v1/prescriptions/{number}/dispensations",
        json={"lines": [{"line_no": 1, "quantity": quantity}]},
        headers=people.as_pharmacist(),
    )
    assert answer.status_code == 201, answer.text


def consent(client: Client, people: People, number: str, given: bool) -> None:
    answer = client.put(
        f"/v1/prescriptions/{number}/execution-view-consent",
        json={"consent": given},
        headers=people.as_patient(),
    )
    assert answer.status_code == 200, answer.text


def read(client: Client, number: str, headers: dict[str, str], tag: str | None = None) -> Any:
    conditional = {"If-None-Match": tag} if tag is not None else {}
    return client.get(f"/v1/prescriptions/{number}", headers={**headers, **conditional})


def test_a_read_names_its_representation_and_a_repeat_with_it_is_not_modified(
    client: Client, people: People
) -> None:
    number = issued(client, people)
    first = read(client, number, people.as_pharmacist())

    again = read(client, number, people.as_pharmacist(), first.headers["etag"])

    assert first.status_code == 200
    assert (again.status_code, again.content) == (304, b"")
    assert again.headers["etag"] == first.headers["etag"]


def test_a_dispensing_since_the_tag_answers_the_new_state(client: Client, people: People) -> None:
    number = issued(client, people)
    before = read(client, number, people.as_pharmacist())
    dispensed(client, people, number)

    after = read(client, number, people.as_pharmacist(), before.headers["etag"])

    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert len(after.json()["dispensations"]) == 1


def test_a_prescriber_holding_the_unmasked_view_gets_the_masked_one_after_the_opposition(
    client: Client, people: People
) -> None:
    number = issued(client, people)
    dispensed(client, people, number)
    unmasked = read(client, number, people.as_prescriber())
    consent(client, people, number, given=False)

    masked = read(client, number, people.as_prescriber(), unmasked.headers["etag"])

    assert unmasked.json()["execution_visible"] is True
    assert masked.status_code == 200
    assert (masked.json()["execution_visible"], masked.json()["dispensations"]) == (False, [])


def test_a_prescriber_holding_the_masked_view_gets_the_unmasked_one_once_consent_is_given(
    client: Client, people: People
) -> None:
    number = issued(client, people, consent=False)
    dispensed(client, people, number)
    masked = read(client, number, people.as_prescriber())
    consent(client, people, number, given=True)

    unmasked = read(client, number, people.as_prescriber(), masked.headers["etag"])

    assert masked.json()["execution_visible"] is False
    assert unmasked.status_code == 200
    assert len(unmasked.json()["dispensations"]) == 1


def test_one_callers_tag_never_matches_another_callers_view(client: Client, people: People) -> None:
    number = issued(client, people, consent=False)
    dispensed(client, people, number)
    pharmacist = read(client, number, people.as_pharmacist())

    prescriber = read(client, number, people.as_prescriber(), pharmacist.headers["etag"])
    insurer = read(client, number, people.as_insurer(), pharmacist.headers["etag"])

    assert prescriber.status_code == 200
    assert prescriber.json()["execution_visible"] is False
    assert prescriber.headers["etag"] != pharmacist.headers["etag"]
    assert insurer.status_code == 200


def test_a_tag_among_several_weak_or_any_matches(client: Client, people: People) -> None:
    number = issued(client, people)
    tag = read(client, number, people.as_pharmacist()).headers["etag"]

    for offered in (f'"0-other", W/{tag}', "*"):
        assert read(client, number, people.as_pharmacist(), offered).status_code == 304
    assert read(client, number, people.as_pharmacist(), '"1-other"').status_code == 200


def test_a_read_as_of_an_instant_is_tagged_apart_from_the_read_of_now(
    client: Client, people: People
) -> None:
    number = issued(client, people)
    dispensed(client, people, number)
    now = read(client, number, people.as_pharmacist())
    history = client.get(f"/v1/prescriptions/{number}/events", headers=people.as_insurer())
    issued_at = history.json()["events"][0]["at"]

    then = client.get(
        f"/v1/prescriptions/{number}",
        params={"as_of": issued_at},
        headers={**people.as_pharmacist(), "If-None-Match": now.headers["etag"]},
    )

    assert then.status_code == 200
    assert then.json()["dispensations"] == []


def test_nobody_learns_a_tag_of_a_prescription_they_may_not_read(
    client: Client, people: People
) -> None:
    number = issued(client, people)
    tag = read(client, number, people.as_pharmacist()).headers["etag"]

    stranger = read(client, number, people.as_prescriber(people.other_prescriber), tag)

    assert (stranger.status_code, stranger.json()["code"]) == (404, "not_found")
    assert "etag" not in stranger.headers


def test_a_read_answered_not_modified_is_in_the_access_log(client: Client, people: People) -> None:
    number = issued(client, people)
    tag = read(client, number, people.as_pharmacist()).headers["etag"]
    assert read(client, number, people.as_pharmacist(), tag).status_code == 304

    items = entries_within_a_second(client, people, number, 2)

    assert [(i["action"], i["role"], i["status"]) for i in reversed(items)] == [
        ("read", "pharmacist", 200),
        ("read", "pharmacist", 304),
    ]
