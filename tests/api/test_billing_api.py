"""Billing through HTTP (contract v1.1, "Billing (additions)"), on SQLite and on PostgreSQL:
retries with an `Idempotency-Key`, invoice numbers used once per pharmacy, amounts in range."""

from __future__ import annotations

from typing import Any

from tests.api.test_prescriptions_api import assert_problem, dispense, issue
from tests.conftest import Client
from tools.cast import People


def dispensed(client: Client, people: People, packs: int = 2, finess: str | None = None) -> str:
    """A prescription of 3 packs of which `packs` were dispensed; '<number>/<dispensation>'."""
    number = issue(client, people, 3)["prescription_id"]
    answer = dispense(client, people, number, (1, packs), **({"finess": finess} if finess else {}))
    assert answer.status_code == 201, answer.text
    return f"{number}/{answer.json()['dispensation_id']}"


def bill(
    client: Client,
    people: People,
    where: str,
    *,
    invoice_number: str = "F-2026-0001",
    quantity: int = 2,
    amount_cents: int = 500,
    finess: str | None = None,
    key: str | None = None,
) -> Any:
    number, dispensation_id = where.split("/")
    headers = people.as_pharmacist(finess)
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(
        f"/v1/prescriptions/{number}/dispensations/{dispensation_id}/billing",
        json={
            "invoice_number": invoice_number,
            "lines": [{"line_no": 1, "quantity": quantity, "amount_cents": amount_cents}],
        },
        headers=headers,
    )


def billings(client: Client, people: People, where: str) -> list[dict[str, Any]]:
    number = where.split("/", maxsplit=1)[0]
    history = client.get(f"/v1/prescriptions/{number}/events", headers=people.as_insurer())
    return [e["data"] for e in history.json()["events"] if e["type"] == "BillingRecorded"]


# --- retries -------------------------------------------------------------------------------------


def test_a_billing_retried_with_its_key_gets_the_first_answer_and_records_nothing(
    client: Client, people: People
) -> None:
    where = dispensed(client, people)

    first = bill(client, people, where, key="lgo-bill-1")
    retry = bill(client, people, where, key="lgo-bill-1")

    assert first.status_code == retry.status_code == 201
    assert retry.content == first.content
    assert first.json()["billed"] is True
    assert len(billings(client, people, where)) == 1


def test_a_billing_retried_without_a_key_is_already_billed(client: Client, people: People) -> None:
    where = dispensed(client, people)
    assert bill(client, people, where).status_code == 201

    assert_problem(bill(client, people, where), 409, "already_billed")


def test_the_same_key_with_another_body_is_refused(client: Client, people: People) -> None:
    where = dispensed(client, people)
    assert bill(client, people, where, key="lgo-bill-2").status_code == 201

    other = bill(client, people, where, key="lgo-bill-2", amount_cents=450)

    assert_problem(other, 422, "idempotency_key_reused")
    assert [b["lines"][0]["amount_cents"] for b in billings(client, people, where)] == [500]


def test_a_key_belongs_to_its_caller(client: Client, people: People) -> None:
    here = dispensed(client, people)
    there = dispensed(client, people, finess=people.other_pharmacy)
    assert bill(client, people, here, key="k").status_code == 201

    other = bill(client, people, there, key="k", finess=people.other_pharmacy)

    assert other.status_code == 201
    assert len(billings(client, people, there)) == 1


# --- invoice numbers -----------------------------------------------------------------------------


def test_an_invoice_number_is_used_once_per_pharmacy_across_prescriptions(
    client: Client, people: People
) -> None:
    first, second = dispensed(client, people), dispensed(client, people)
    elsewhere = dispensed(client, people, finess=people.other_pharmacy)
    assert bill(client, people, first, invoice_number="F-77").status_code == 201

    reused = bill(client, people, second, invoice_number="F-77")
    other_pharmacy = bill(
        client, people, elsewhere, invoice_number="F-77", finess=people.other_pharmacy
    )

    problem = assert_problem(reused, 409, "invoice_number_used")
    assert problem["field"] == "invoice_number" and "F-77" in problem["detail"]
    assert billings(client, people, second) == []
    assert other_pharmacy.status_code == 201
    assert bill(client, people, second, invoice_number="F-78").status_code == 201


def test_a_retry_with_its_key_is_not_refused_for_its_own_invoice_number(
    client: Client, people: People
) -> None:
    where = dispensed(client, people)
    first = bill(client, people, where, invoice_number="F-90", key="lgo-bill-3")

    retry = bill(client, people, where, invoice_number="F-90", key="lgo-bill-3")

    assert (first.status_code, retry.status_code) == (201, 201)


# --- amounts -------------------------------------------------------------------------------------


def test_amounts_beyond_10_million_cents_are_refused_naming_the_field(
    client: Client, people: People
) -> None:
    where = dispensed(client, people)

    for cents in (2**62, 10_000_001, -1):
        refused = bill(client, people, where, amount_cents=cents)
        problem = assert_problem(refused, 422, "invalid_request")
        assert problem["field"] == "lines[0].amount_cents"
    assert bill(client, people, where, amount_cents=10_000_000).status_code == 201


def test_the_billed_amounts_are_in_the_history(client: Client, people: People) -> None:
    where = dispensed(client, people)

    bill(client, people, where, invoice_number="F-5", amount_cents=612)

    (recorded,) = billings(client, people, where)
    assert recorded["invoice_number"] == "F-5"
    assert recorded["lines"] == [{"line_no": 1, "quantity": 2, "amount_cents": 612}]
