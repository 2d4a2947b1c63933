"""The medicines catalogue drives the rules (contract "The medicines catalogue"): with the
shipped sample of the public database imported, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.config import Settings
from tests.api.test_prescriptions_api import assert_problem
from tests.api.test_products_api import (
    AMOXICILLINE_ARROW,
    CLAMOXYL,
    SKENAN,
    TOPALGIC,
    import_sample,
)
from tests.api.test_reconciliation_api import reconcile
from tests.conftest import Client
from tools.cast import People

UNKNOWN_PACK = "3400930000007"  # a valid CIP13 the public database does not list


def pack(code: str, label: str = "as written by the LAP") -> dict[str, str]:
    return {"system": "CIP13", "code": code, "label": label}


def line(
    product: dict[str, str], days: int = 28, quantity: int = 4, **extra: Any
) -> dict[str, Any]:
    return {"product": product, "quantity": quantity, "dosage": "1 par jour", "duration_days": days}


def prescribe(client: Client, people: People, *lines: dict[str, Any], **changes: Any) -> Any:
    body = {
        "patient": {"ins": people.patient},
        "execution_view_consent": True,
        "kind": changes.pop("kind", "secure"),
        "lines": list(lines),
        **changes,
    }
    return client.post("/v1/prescriptions", json=body, headers=people.as_prescriber())


def give(client: Client, people: People, number: str, quantity: int, **line_extra: Any) -> Any:
    body = {"lines": [{"line_no": 1, "quantity": quantity, **line_extra}]}
    return client.post(
        f"/v1/prescriptions/{number}/dispensations", json=body, headers=people.as_pharmacist()
    )


@pytest.fixture
def with_catalogue(settings: Settings) -> Iterator[Client]:
    import_sample(settings)
    with TestClient(build_app(settings)) as client:
        yield client


@pytest.fixture
def strict(settings: Settings) -> Iterator[Client]:
    import_sample(settings)
    with TestClient(build_app(msgspec.structs.replace(settings, catalogue_strict=True))) as client:
        yield client


# --- prescribing ------------------------------------------------------------------------------


def test_skenan_is_a_narcotic_whatever_the_lap_says(with_catalogue: Client, people: People) -> None:
    said_not = prescribe(with_catalogue, people, {**line(pack(SKENAN)), "narcotic": False})
    unsaid = prescribe(with_catalogue, people, line(pack(SKENAN)))

    problem = assert_problem(said_not, 422, "invalid_request")
    assert problem["field"] == "lines[0].narcotic"
    assert "is narcotic" in problem["detail"] and "SKENAN" in problem["detail"]
    assert unsaid.status_code == 201, unsaid.text
    assert unsaid.json()["lines"][0]["narcotic"] is True


def test_skenan_needs_a_secure_prescription_for_28_days_at_most(
    with_catalogue: Client, people: People
) -> None:
    standard = prescribe(with_catalogue, people, line(pack(SKENAN)), kind="standard")
    too_long = prescribe(with_catalogue, people, line(pack(SKENAN), days=29))

    assert assert_problem(standard, 422, "invalid_request")["field"] == "kind"
    assert assert_problem(too_long, 422, "invalid_request")["field"] == "lines[0].duration_days"


def test_topalgic_is_assimilated_for_84_days(with_catalogue: Client, people: People) -> None:
    standard = prescribe(with_catalogue, people, line(pack(TOPALGIC), 84, 3), kind="standard")
    twelve_weeks = prescribe(with_catalogue, people, line(pack(TOPALGIC), 84, 3))
    longer = prescribe(with_catalogue, people, line(pack(TOPALGIC), 85, 3))

    assert assert_problem(standard, 422, "invalid_request")["field"] == "kind"
    assert twelve_weeks.status_code == 201, twelve_weeks.text
    written = twelve_weeks.json()["lines"][0]
    assert (written["assimilated"], written["narcotic"]) == (True, False)
    assert assert_problem(longer, 422, "invalid_request")["field"] == "lines[0].duration_days"


def test_without_a_catalogue_the_prescriber_is_taken_at_their_word(
    client: Client, people: People
) -> None:
    response = prescribe(client, people, {**line(pack(SKENAN)), "narcotic": False}, kind="standard")

    assert response.status_code == 201, response.text
    assert response.json()["lines"][0]["narcotic"] is False


def test_a_strict_catalogue_refuses_a_pack_it_does_not_know(strict: Client, people: People) -> None:
    response = prescribe(strict, people, line(pack(UNKNOWN_PACK)), kind="standard")

    problem = assert_problem(response, 422, "unknown_product")
    assert problem["field"] == "lines[0].product.code"


# --- dispensing -------------------------------------------------------------------------------


def test_a_generic_of_clamoxyl_may_be_given_and_skenan_may_not(
    with_catalogue: Client, people: People
) -> None:
    created = prescribe(with_catalogue, people, line(pack(CLAMOXYL), 6, 2), kind="standard")
    number = created.json()["prescription_id"]

    refused = give(with_catalogue, people, number, 1, product=pack(SKENAN, "Skenan"))
    generic = give(with_catalogue, people, number, 1, product=pack(AMOXICILLINE_ARROW, "Arrow"))

    problem = assert_problem(refused, 422, "substitution_not_allowed")
    assert problem["field"] == "lines[0].product"
    assert generic.status_code == 201, generic.text


def test_a_substance_line_takes_a_pack_of_that_substance_only(
    with_catalogue: Client, people: People
) -> None:
    dci = {"system": "DCI", "label": "amoxicilline 500 mg"}
    created = prescribe(with_catalogue, people, line(dci, 6, 2), kind="standard")
    number = created.json()["prescription_id"]

    refused = give(with_catalogue, people, number, 1, product=pack(SKENAN, "Skenan"))
    clamoxyl = give(with_catalogue, people, number, 1, product=pack(CLAMOXYL, "Clamoxyl"))

    assert assert_problem(refused, 422, "substitution_not_allowed")["field"] == "lines[0].product"
    assert clamoxyl.status_code == 201, clamoxyl.text


def test_a_strict_catalogue_refuses_an_unknown_substitute(strict: Client, people: People) -> None:
    created = prescribe(strict, people, line(pack(CLAMOXYL), 6, 2), kind="standard")
    number = created.json()["prescription_id"]

    response = give(strict, people, number, 1, product=pack(UNKNOWN_PACK, "?"))

    assert assert_problem(response, 422, "unknown_product")["field"] == "lines[0].product.code"


def test_a_morphine_prescribed_as_not_narcotic_before_the_import_is_dispensed_as_one(
    settings: Settings, people: People
) -> None:
    ten_days_ago = (datetime.now(UTC).date() - timedelta(days=10)).isoformat()
    with TestClient(build_app(settings)) as before:
        created = prescribe(
            before,
            people,
            {**line(pack(SKENAN)), "narcotic": False},
            kind="standard",
            issued_on=ten_days_ago,
        )
        number = created.json()["prescription_id"]
    import_sample(settings)

    with TestClient(build_app(settings)) as after:
        allowed = after.get(
            f"/v1/prescriptions/{number}/dispensable", headers=people.as_pharmacist()
        ).json()["lines"][0]
        too_many = give(after, people, number, allowed["max_quantity"] + 1)
        just_enough = give(after, people, number, allowed["max_quantity"])

    # 4 packs for 28 days, presented 10 days late: only the 17 to 19 days left, 2 packs.
    assert (allowed["max_quantity"], allowed["reason"]) == (2, "quantity_exceeds_allowed_now")
    assert assert_problem(too_many, 409, "quantity_exceeds_allowed_now")["max_quantity"] == 2
    assert just_enough.status_code == 201, just_enough.text


# --- reconciliation ---------------------------------------------------------------------------

AMOXICILLINE_ALMUS = "3400937054393"  # another generic of Clamoxyl 500 mg in the sample


def amoxicilline_dispensed(client: Client, people: People, **handed: Any) -> str:
    created = prescribe(client, people, line(pack(CLAMOXYL), 6, 2), kind="standard")
    number: str = created.json()["prescription_id"]
    assert give(client, people, number, 1, **handed).status_code == 201
    return number


def billed_as(number: str, people: People, code: str, invoice_number: str) -> dict[str, Any]:
    return {
        "invoice_number": invoice_number,
        "finess": people.pharmacy,
        "prescription_id": number,
        "lines": [{"line_no": 1, "product": pack(code), "quantity": 1, "amount_cents": 153}],
    }


def test_reconciliation_takes_a_generic_of_the_prescribed_pack_when_none_was_named(
    with_catalogue: Client, people: People
) -> None:
    plain = amoxicilline_dispensed(with_catalogue, people)
    named = amoxicilline_dispensed(with_catalogue, people, product=pack(AMOXICILLINE_ARROW))
    other = amoxicilline_dispensed(with_catalogue, people)

    found = reconcile(
        with_catalogue,
        people,
        billed_as(plain, people, AMOXICILLINE_ARROW, "F-1"),  # a generic of what was recorded
        billed_as(named, people, AMOXICILLINE_ALMUS, "F-2"),  # not the generic recorded
        billed_as(other, people, SKENAN, "F-3"),  # not a substitute at all
    )

    assert [item["outcome"] for item in found] == [
        "matched",
        "product_mismatch",
        "product_mismatch",
    ]


def test_without_a_catalogue_only_the_recorded_pack_is_billed(
    client: Client, people: People
) -> None:
    plain = amoxicilline_dispensed(client, people)

    (item,) = reconcile(client, people, billed_as(plain, people, AMOXICILLINE_ARROW, "F-1"))

    assert item["outcome"] == "product_mismatch"
