"""Contract v1.1, `?as_of=`: a prescription, and its history, as its events stood at an instant,
with the caller's masking as of now; on the embedded default and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.calendar import Moment, paris_day
from tests.conftest import Client
from tools.cast import People

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)


def at(client: Client, hours: float) -> None:
    """The server's clock reads START + hours from now on."""
    instant = START + timedelta(hours=hours)
    client.app.state.service.clock = lambda: Moment(at=instant, today=paris_day(instant))


def instant(hours: float) -> str:
    return (START + timedelta(hours=hours)).isoformat()


def issued_then_dispensed_twice(client: Client, people: People, consent: bool = True) -> str:
    """Issued at START+1h (3 packs); 1 pack dispensed at +2h; 2 more at +3h."""
    at(client, 1)
    body = people.prescription_body(3, consent=consent)
    number: str = client.post(
        "/v1/prescriptions", json=body, headers=people.as_prescriber()
    ).json()["prescription_id"]
    for hours, quantity in ((2, 1), (3, 2)):
        at(client, hours)
        given = client.post(
            f"/v1/prescriptions/{number}/dispensations",
            json={"lines": [{"line_no": 1, "quantity": quantity}]},
            headers=people.as_pharmacist(),
        )
        assert given.status_code == 201, given.text
    return number


def read_as_of(client: Client, number: str, hours: float, headers: dict[str, str]) -> Any:
    return client.get(
        f"/v1/prescriptions/{number}", params={"as_of": instant(hours)}, headers=headers
    )


def test_before_it_was_issued_it_is_not_found(client: Client, people: People) -> None:
    number = issued_then_dispensed_twice(client, people)

    for path in ("", "/events"):
        response = client.get(
            f"/v1/prescriptions/{number}{path}",
            params={"as_of": instant(0.5)},
            headers=people.as_insurer(),
        )
        assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_between_events_it_is_the_state_of_that_instant(client: Client, people: People) -> None:
    number = issued_then_dispensed_twice(client, people)
    pharmacist = people.as_pharmacist()

    def remaining_and_status(hours: float) -> tuple[int, str, int]:
        view = read_as_of(client, number, hours, pharmacist).json()
        return view["lines"][0]["remaining"], view["status"], len(view["dispensations"])

    assert remaining_and_status(1) == (3, "active", 0)  # the instant of issue itself
    assert remaining_and_status(1.5) == (3, "active", 0)
    assert remaining_and_status(2.5) == (2, "partially_dispensed", 1)
    assert remaining_and_status(5) == (0, "dispensed", 2)
    assert client.get(f"/v1/prescriptions/{number}", headers=pharmacist).json() == (
        read_as_of(client, number, 5, pharmacist).json()
    )


def test_the_history_stops_at_the_instant(client: Client, people: People) -> None:
    number = issued_then_dispensed_twice(client, people)

    history = client.get(
        f"/v1/prescriptions/{number}/events",
        params={"as_of": instant(2.5)},
        headers=people.as_patient(),
    ).json()

    assert [event["type"] for event in history["events"]] == [
        "PrescriptionIssued",
        "DispensationRecorded",
    ]


def test_masking_is_the_callers_as_of_now(client: Client, people: People) -> None:
    """The patient consented when the pack was dispensed, and has withdrawn it since: the
    prescriber no longer sees that past dispensing either."""
    number = issued_then_dispensed_twice(client, people, consent=True)
    at(client, 4)
    withdrawn = client.put(
        f"/v1/prescriptions/{number}/execution-view-consent",
        json={"consent": False},
        headers=people.as_patient(),
    )
    assert withdrawn.status_code == 200

    then = read_as_of(client, number, 2.5, people.as_prescriber()).json()

    assert (then["execution_visible"], then["dispensations"]) == (False, [])
    assert then["lines"][0]["remaining"] is None
    assert read_as_of(client, number, 2.5, people.as_patient()).json()["dispensations"] != []


def test_consent_given_since_shows_the_past_to_the_prescriber(
    client: Client, people: People
) -> None:
    number = issued_then_dispensed_twice(client, people, consent=False)
    at(client, 4)
    client.put(
        f"/v1/prescriptions/{number}/execution-view-consent",
        json={"consent": True},
        headers=people.as_patient(),
    )

    then = read_as_of(client, number, 2.5, people.as_prescriber()).json()

    assert (then["execution_visible"], then["lines"][0]["remaining"]) == (True, 2)


def test_who_may_not_read_it_now_may_not_read_its_past(client: Client, people: People) -> None:
    number = issued_then_dispensed_twice(client, people)

    for stranger in (
        people.as_prescriber(people.other_prescriber),
        people.as_patient(people.corsican_patient),
    ):
        assert read_as_of(client, number, 2.5, stranger).status_code == 404


def test_as_of_is_an_rfc_3339_instant_with_its_offset(client: Client, people: People) -> None:
    number = issued_then_dispensed_twice(client, people)

    for text in ("yesterday", "2026-01-01T10:00:00", "2026-13-01T10:00:00Z"):
        response = client.get(
            f"/v1/prescriptions/{number}", params={"as_of": text}, headers=people.as_insurer()
        )
        problem = response.json()
        assert (response.status_code, problem["code"], problem["field"]) == (
            422,
            "invalid_request",
            "as_of",
        )
