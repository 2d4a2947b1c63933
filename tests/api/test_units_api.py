"""Lines counted in units at the HTTP door, on SQLite and PostgreSQL, with the shipped sample
of the public database imported: `units` and `contraceptive` of a product, `dispensable`'s
`counted_in`, `max_units` and `remaining_units`, the read's and the receipt's
`remaining_units`, refusals in units, reconciliation in units, and CIP13s of the 34009 range."""

from __future__ import annotations

from typing import Any

from tests.api.test_catalogue_rules_api import give, line, pack, prescribe, with_catalogue
from tests.api.test_lists_api import eventually
from tests.api.test_prescriptions_api import assert_problem
from tests.api.test_reconciliation_api import invoice, reconcile
from tests.conftest import Client
from tools.cast import People

__all__ = ["with_catalogue"]  # the fixture, imported for the tests below

LEVOTHYROX_30, LEVOTHYROX_90 = "3400930065556", "3400930065570"
MINIDRIL_1, MINIDRIL_3 = "3400931823902", "3400931824091"
DOLIPRANE_SYRUP = "3400934615467"
UCD13 = "3400891479287"  # a UCD13 (34008…): a dispensing unit's code, never a pack


def written(client: Client, people: People, code: str, quantity: int, days: int) -> str:
    response = prescribe(client, people, line(pack(code), days, quantity), kind="standard")
    assert response.status_code == 201, response.text
    number: str = response.json()["prescription_id"]
    return number


def dispensable(client: Client, people: People, number: str) -> Any:
    response = client.get(f"/v1/prescriptions/{number}/dispensable", headers=people.as_pharmacist())
    assert response.status_code == 200, response.text
    return response.json()["lines"][0]


def test_a_product_says_its_units_and_whether_it_is_a_contraceptive(
    with_catalogue: Client, people: People
) -> None:
    def product(code: str) -> Any:
        response = with_catalogue.get(f"/v1/products/{code}", headers=people.as_pharmacist())
        assert response.status_code == 200, response.text
        return response.json()

    assert (product(LEVOTHYROX_90)["units"], product(LEVOTHYROX_90)["contraceptive"]) == (90, False)
    assert (product(MINIDRIL_3)["units"], product(MINIDRIL_3)["contraceptive"]) == (63, True)
    assert product(DOLIPRANE_SYRUP)["units"] is None


def test_dispensable_counts_a_line_of_boxes_of_30_in_units(
    with_catalogue: Client, people: People
) -> None:
    number = written(with_catalogue, people, LEVOTHYROX_30, 3, 90)

    allowed = dispensable(with_catalogue, people, number)

    assert allowed["counted_in"] == "units"
    assert (allowed["max_quantity"], allowed["max_units"], allowed["remaining_units"]) == (
        1,
        30,
        90,
    )


def test_a_line_whose_pack_counts_no_units_is_counted_in_packs(
    with_catalogue: Client, people: People
) -> None:
    number = written(with_catalogue, people, DOLIPRANE_SYRUP, 2, 10)

    allowed = dispensable(with_catalogue, people, number)

    assert (allowed["counted_in"], allowed["max_units"], allowed["remaining_units"]) == (
        "packs",
        None,
        None,
    )


def test_three_boxes_of_90_for_three_boxes_of_30_are_refused_and_one_gives_the_line(
    with_catalogue: Client, people: People
) -> None:
    number = written(with_catalogue, people, LEVOTHYROX_30, 3, 90)

    too_many = give(with_catalogue, people, number, 3, product=pack(LEVOTHYROX_90))
    one = give(with_catalogue, people, number, 1, product=pack(LEVOTHYROX_90))

    problem = assert_problem(too_many, 409, "quantity_exceeds_remaining")
    assert problem["detail"] == "line 1 has 90 units left, 270 asked (3 pack(s) of 90)"
    assert one.status_code == 201, one.text
    assert one.json()["lines"][0] == {
        "line_no": 1,
        "dispensed": 1,
        "remaining": 0,
        "remaining_units": 0,
    }
    read = with_catalogue.get(f"/v1/prescriptions/{number}", headers=people.as_pharmacist())
    assert read.json()["status"] == "dispensed"
    assert read.json()["lines"][0]["remaining_units"] == 0


def test_a_three_month_contraceptive_pack_is_given_at_once(
    with_catalogue: Client, people: People
) -> None:
    number = written(with_catalogue, people, MINIDRIL_1, 4, 112)

    given = give(with_catalogue, people, number, 1, product=pack(MINIDRIL_3))

    assert given.status_code == 201, given.text
    assert given.json()["lines"][0]["remaining_units"] == 21


def test_two_boxes_of_30_at_once_are_refused_in_units(
    with_catalogue: Client, people: People
) -> None:
    number = written(with_catalogue, people, LEVOTHYROX_30, 6, 180)

    refused = give(with_catalogue, people, number, 2)

    problem = assert_problem(refused, 409, "quantity_exceeds_allowed_now")
    assert problem["max_quantity"] == 1
    assert problem["detail"].startswith("line 1: at most 30 units may be dispensed now, 60 units")


def test_billing_more_units_than_handed_over_is_quantity_mismatch(
    with_catalogue: Client, people: People
) -> None:
    number = written(with_catalogue, people, LEVOTHYROX_30, 3, 90)
    given = give(with_catalogue, people, number, 1, product=pack(LEVOTHYROX_90))
    assert given.status_code == 201, given.text

    (item,) = reconcile(
        with_catalogue, people, invoice(people, number, (1, 3), product=LEVOTHYROX_90)
    )

    assert item["outcome"] == "quantity_mismatch"
    assert "270 units" in item["detail"] and "90 units" in item["detail"]


# --- a CIP13 starts with 34009 ------------------------------------------------------------------


def test_a_ucd13_is_no_cip13_wherever_a_pack_is_named(
    with_catalogue: Client, people: People
) -> None:
    prescribed = prescribe(with_catalogue, people, line(pack(UCD13)), kind="standard")
    looked_up = with_catalogue.get(f"/v1/products/{UCD13}", headers=people.as_pharmacist())
    number = written(with_catalogue, people, LEVOTHYROX_30, 3, 90)
    substitute = give(with_catalogue, people, number, 1, product=pack(UCD13))

    for response, field in (
        (prescribed, "lines[0].product.code"),
        (looked_up, "cip13"),
        (substitute, "lines[0].product.code"),
    ):
        problem = assert_problem(response, 422, "invalid_request")
        assert problem["field"] == field
        assert "must start with 34009" in problem["detail"]
    (item,) = reconcile(with_catalogue, people, invoice(people, number, (1, 1), product=UCD13))
    assert item["outcome"] == "invalid"
    assert "must start with 34009" in item["detail"]


def test_boxes_of_30_billed_batch_after_batch_for_a_box_of_90_are_over_billed_past_90_units(
    with_catalogue: Client, people: People
) -> None:
    number = written(with_catalogue, people, LEVOTHYROX_30, 3, 90)
    given = give(with_catalogue, people, number, 1, product=pack(LEVOTHYROX_90))
    assert given.status_code == 201, given.text

    batches = [
        reconcile(
            with_catalogue,
            people,
            invoice(people, number, (1, n), number=f"F-{at}", product=LEVOTHYROX_30),
        )
        for at, n in enumerate((1, 2, 1), start=1)
    ]

    assert [item["outcome"] for (item,) in batches] == ["matched", "matched", "over_billed"]
    assert batches[2][0]["detail"].endswith(
        f"30 units; pharmacy {people.pharmacy} dispensed 1, 90 units, and was already paid "
        "for 3 (invoices F-1, F-2), 90 units"
    )


def test_the_lists_show_the_units_left_as_the_read_does(
    with_catalogue: Client, people: People
) -> None:
    number = written(with_catalogue, people, LEVOTHYROX_30, 3, 90)
    assert give(with_catalogue, people, number, 1).status_code == 201
    read = with_catalogue.get(f"/v1/prescriptions/{number}", headers=people.as_prescriber())

    def listed(path: str, headers: dict[str, str]) -> Any:
        page = eventually(
            lambda: with_catalogue.get(path, headers=headers).json(),
            lambda page: any(item["lines"][0]["dispensed"] for item in page["items"]),
        )
        (item,) = [item for item in page["items"] if item["prescription_id"] == number]
        return item["lines"][0]

    by_prescriber = listed("/v1/prescribers/me/prescriptions", people.as_prescriber())
    by_patient = listed("/v1/patients/me/prescriptions", people.as_patient())

    assert read.json()["lines"][0]["remaining_units"] == 60
    assert by_prescriber == read.json()["lines"][0]
    assert by_patient["remaining_units"] == 60
