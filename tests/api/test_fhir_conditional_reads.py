"""Conditional reads of a MedicationRequest (`ETag`, `If-None-Match` -> 304), as /v1's: a caller
is told "not modified" only when the resource it holds is exactly the one it would be given now;
a dispensing, the patient's opposition or another caller's view never matches. On both stores."""

from __future__ import annotations

from typing import Any

from tests.api.test_conditional_reads_api import consent, issued
from tests.api.test_fhir_dispensing import dispense
from tests.api.test_fhir_prescribing import FHIR_JSON
from tests.conftest import Client
from tools.cast import People


def read(client: Client, resource_id: str, headers: dict[str, str], tag: str | None = None) -> Any:
    conditional = {"If-None-Match": tag} if tag is not None else {}
    return client.get(
        f"/fhir/R4/MedicationRequest/{resource_id}", headers={**headers, **conditional}
    )


def dispensed(client: Client, people: People, number: str, quantity: int = 1) -> Any:
    answer = client.post(
        "/fhir/R4/MedicationDispense",
        json=dispense(f"MedicationRequest/{number}-1", quantity),
        headers={**people.as_pharmacist(), **FHIR_JSON},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_read_names_its_resource_and_a_repeat_with_it_is_not_modified(
    client: Client, people: People
) -> None:
    number = issued(client, people)
    first = read(client, f"{number}-1", people.as_pharmacist())

    again = read(client, f"{number}-1", people.as_pharmacist(), first.headers["etag"])

    assert first.status_code == 200
    assert first.headers["etag"].startswith(f'"{first.json()["meta"]["versionId"]}-')
    assert (again.status_code, again.content) == (304, b"")
    assert again.headers["etag"] == first.headers["etag"]


def test_a_read_right_after_a_dispensing_answers_the_new_state(
    client: Client, people: People
) -> None:
    number = issued(client, people)
    before = read(client, f"{number}-1", people.as_pharmacist())
    dispensed(client, people, number, 2)

    after = read(client, f"{number}-1", people.as_pharmacist(), before.headers["etag"])

    assert after.status_code == 200
    assert after.headers["etag"] != before.headers["etag"]
    assert after.headers["etag"].startswith(f'"{after.json()["meta"]["versionId"]}-')
    assert {"url": "urn:ordo:remaining", "valueInteger": 1} in after.json()["extension"]


def test_a_prescriber_holding_the_unmasked_resource_is_answered_after_the_opposition(
    client: Client, people: People
) -> None:
    number = issued(client, people)
    dispensed(client, people, number)
    unmasked = read(client, f"{number}-1", people.as_prescriber())
    consent(client, people, number, given=False)

    masked = read(client, f"{number}-1", people.as_prescriber(), unmasked.headers["etag"])

    assert masked.status_code == 200
    assert masked.headers["etag"] != unmasked.headers["etag"]
    urls = {extension["url"] for extension in masked.json()["extension"]}
    assert "urn:ordo:remaining" in {e["url"] for e in unmasked.json()["extension"]}
    assert "urn:ordo:remaining" not in urls


def test_one_callers_tag_never_matches_another_callers_view(client: Client, people: People) -> None:
    number = issued(client, people, consent=False)
    dispensed(client, people, number)
    pharmacist = read(client, f"{number}-1", people.as_pharmacist())

    prescriber = read(client, f"{number}-1", people.as_prescriber(), pharmacist.headers["etag"])

    assert prescriber.status_code == 200
    assert prescriber.headers["etag"] != pharmacist.headers["etag"]


def test_a_tag_names_no_line_the_prescription_lacks_nor_one_the_caller_may_not_read(
    client: Client, people: People
) -> None:
    number = issued(client, people)
    tag = read(client, f"{number}-1", people.as_pharmacist()).headers["etag"]

    missing = read(client, f"{number}-9", people.as_pharmacist(), tag)
    stranger = read(client, f"{number}-1", people.as_prescriber(people.other_prescriber), tag)

    assert missing.status_code == stranger.status_code == 404
    assert "etag" not in missing.headers and "etag" not in stranger.headers
