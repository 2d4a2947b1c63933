"""The catalogue's prescribing conditions for every product through HTTP (contract "restricted
products"), on SQLite and PostgreSQL, with the shipped sample of the public database: a
SUBUTEX 8 mg line ("délivrance fractionnée de 7 jours") is recorded with its fraction and
dispensed 7 days at a time; of two prescriptions of zolpidem (STILNOX, ZOLPIDEM ARROW:
"chevauchement interdit") the second waits for the first to run out (409 narcotic_overlap,
`dispensable` says until when), unless the prescriber wrote the express mention, or the first
dispensing is withdrawn."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.api.test_catalogue_rules_api import give, line, pack, prescribe, with_catalogue
from tests.api.test_dispensing_rules_api import withdraw
from tests.api.test_prescriptions_api import assert_problem
from tests.api.test_restricted_products_api import SUBUTEX, dispensable
from tests.conftest import Client
from tools.cast import People

__all__ = ["with_catalogue"]  # the fixture, imported for the tests below

STILNOX_14 = "3400934658570"  # STILNOX 10 mg, 14 comprimés
ZOLPIDEM_ARROW_14 = "3400936388901"  # ZOLPIDEM ARROW 10 mg, 14 comprimés


def prescribed(client: Client, people: People, written: dict[str, Any]) -> str:
    response = prescribe(client, people, written)
    assert response.status_code == 201, response.text
    number: str = response.json()["prescription_id"]
    return number


def today(client: Client, number: str, people: People) -> date:
    read = client.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist())
    return date.fromisoformat(read.json()["issued_on"])


def test_a_subutex_line_is_dispensed_7_days_at_a_time(
    with_catalogue: Client, people: People
) -> None:
    number = prescribed(with_catalogue, people, line(pack(SUBUTEX, "Subutex 8 mg"), 28, 4))

    first = dispensable(with_catalogue, number, people.as_pharmacist())
    two = give(with_catalogue, people, number, 2)
    one = give(with_catalogue, people, number, 1)
    then = dispensable(with_catalogue, number, people.as_pharmacist())

    read = with_catalogue.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist())
    assert read.json()["lines"][0]["fraction_days"] == 7
    assert (first["max_quantity"], first["reason"]) == (1, "quantity_exceeds_allowed_now")
    assert first["detail"] == "a fraction covers at most 7 days: 7 unit(s)"
    problem = assert_problem(two, 409, "quantity_exceeds_allowed_now")
    assert (problem["max_quantity"], problem["field"]) == (1, "lines[0].quantity")
    assert one.status_code == 201, one.text
    issued_on = today(with_catalogue, number, people)
    assert (then["max_quantity"], then["next_on"]) == (0, str(issued_on + timedelta(days=6)))


def test_a_second_prescription_of_zolpidem_waits_for_the_first_to_run_out(
    with_catalogue: Client, people: People
) -> None:
    first = prescribed(with_catalogue, people, line(pack(STILNOX_14, "Stilnox"), 28, 2))
    second = prescribed(with_catalogue, people, line(pack(ZOLPIDEM_ARROW_14, "Zolpidem"), 28, 2))
    assert give(with_catalogue, people, first, 2).status_code == 201

    told = dispensable(with_catalogue, second, people.as_pharmacist())
    refused = give(with_catalogue, people, second, 1)

    issued_on = today(with_catalogue, first, people)
    until = issued_on + timedelta(days=28)
    assert (told["max_quantity"], told["reason"], told["next_on"]) == (
        0,
        "narcotic_overlap",
        str(until),
    )
    assert told["detail"] == (
        f"another prescription of zolpidem of this patient covers {issued_on} (until {until})"
    )
    problem = assert_problem(refused, 409, "narcotic_overlap")
    assert (problem["max_quantity"], problem["field"]) == (0, "lines[0].quantity")
    assert "another prescription of zolpidem" in problem["detail"]


def test_the_express_mention_lets_zolpidem_overlap(with_catalogue: Client, people: People) -> None:
    first = prescribed(with_catalogue, people, line(pack(STILNOX_14, "Stilnox"), 28, 2))
    mentioned = {**line(pack(ZOLPIDEM_ARROW_14, "Zolpidem"), 28, 2), "overlap_allowed": True}
    second = prescribed(with_catalogue, people, mentioned)
    assert give(with_catalogue, people, first, 2).status_code == 201

    given = give(with_catalogue, people, second, 2)

    assert given.status_code == 201, given.text


def test_a_withdrawn_dispensing_of_zolpidem_no_longer_covers_anything(
    with_catalogue: Client, people: People
) -> None:
    first = prescribed(with_catalogue, people, line(pack(STILNOX_14, "Stilnox"), 28, 2))
    second = prescribed(with_catalogue, people, line(pack(ZOLPIDEM_ARROW_14, "Zolpidem"), 28, 2))
    dispensation_id = give(with_catalogue, people, first, 2).json()["dispensation_id"]

    withdrawn = withdraw(with_catalogue, people, first, dispensation_id)

    assert withdrawn.status_code == 201, withdrawn.text
    assert give(with_catalogue, people, second, 2).status_code == 201


def test_the_overlap_mention_on_a_product_that_may_overlap_is_refused(
    with_catalogue: Client, people: People
) -> None:
    mentioned = {**line(pack(SUBUTEX, "Subutex 8 mg"), 28, 4), "overlap_allowed": True}

    problem = assert_problem(prescribe(with_catalogue, people, mentioned), 422, "invalid_request")

    assert problem["field"] == "lines[0].overlap_allowed"
