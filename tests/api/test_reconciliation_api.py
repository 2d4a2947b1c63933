"""Reconciliation batches through HTTP, on the embedded default and on PostgreSQL.

A batch reads the projections, which trail the log by up to a second; it waits for them to
reach the log's head before it starts, so what was dispensed before the upload is seen. The
tests only wait for the batch itself to be done, as an insurer polling it would.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.reconciliation.sqlite import SqliteBatches
from domain.identifiers import PrescriptionNumber
from tests.api.test_prescriptions_api import assert_problem, dispense, issue
from tests.conftest import Client, settings_for
from tools.cast import People

BATCHES = "/v1/reconciliation/batches"
NDJSON = {"content-type": "application/x-ndjson"}


def invoice(
    people: People,
    prescription_id: str,
    *lines: tuple[int, int],
    number: str = "F-0001",
    finess: str | None = None,
    product: str | None = None,
) -> dict[str, Any]:
    """Billing (line_no, quantity) of the prescribed paracetamol, or of `product`."""
    return {
        "invoice_number": number,
        "finess": finess or people.pharmacy,
        "prescription_id": prescription_id,
        "lines": [
            {
                "line_no": line_no,
                "product": {"system": "CIP13", "code": product or people.paracetamol, "label": "P"},
                "quantity": quantity,
                "amount_cents": 250 * quantity,
            }
            for line_no, quantity in lines or ((1, 1),)
        ],
    }


def ndjson(*lines: dict[str, Any] | str) -> bytes:
    return "".join((json.dumps(x) if isinstance(x, dict) else x) + "\n" for x in lines).encode()


def submit(client: Client, people: People, *lines: dict[str, Any] | str) -> str:
    response = client.post(
        BATCHES, content=ndjson(*lines), headers={**people.as_insurer(), **NDJSON}
    )
    assert response.status_code == 202, response.text
    batch_id: str = response.json()["batch_id"]
    return batch_id


def finished(client: Client, people: People, batch_id: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        response = client.get(f"{BATCHES}/{batch_id}", headers=people.as_insurer())
        assert response.status_code == 200, response.text
        batch = response.json()
        if batch["status"] == "done" or time.monotonic() > deadline:
            assert batch["status"] == "done", batch
            return batch
        time.sleep(0.02)


def items(client: Client, people: People, batch_id: str, **params: str) -> list[dict[str, Any]]:
    response = client.get(f"{BATCHES}/{batch_id}/items", params=params, headers=people.as_insurer())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def reconcile(client: Client, people: People, *lines: dict[str, Any] | str) -> list[Any]:
    batch_id = submit(client, people, *lines)
    finished(client, people, batch_id)
    return items(client, people, batch_id)


def dispensed(client: Client, people: People, *quantities: int, finess: str | None = None) -> str:
    """A prescription of paracetamol, `quantities` dispensed at once by `finess`."""
    number: str = issue(client, people, 3)["prescription_id"]
    for quantity in quantities:
        extra = {"finess": finess} if finess else {}
        assert dispense(client, people, number, (1, quantity), **extra).status_code == 201
    return number


def outcomes(found: list[dict[str, Any]]) -> list[str]:
    return [item["outcome"] for item in found]


# --- each outcome -------------------------------------------------------------------------------


def test_billing_what_was_dispensed_is_matched(client: Client, people: People) -> None:
    number = dispensed(client, people, 2)

    (item,) = reconcile(client, people, invoice(people, number, (1, 2)))

    assert item == {
        "line": 1,
        "invoice_number": "F-0001",
        "outcome": "matched",
        "detail": f"billed as dispensed by pharmacy {people.pharmacy} "
        f"(line 1: billed 2 of CIP13 {people.paracetamol} (500 cents), dispensed 2)",
    }


def test_billing_more_than_was_dispensed_is_quantity_mismatch(
    client: Client, people: People
) -> None:
    number = dispensed(client, people, 2)

    (item,) = reconcile(client, people, invoice(people, number, (1, 3)))

    assert item["outcome"] == "quantity_mismatch"
    assert item["detail"] == (
        f"line 1: billed 3 of CIP13 {people.paracetamol} (750 cents), "
        f"pharmacy {people.pharmacy} dispensed 2"
    )


def test_billing_another_product_is_product_mismatch(client: Client, people: People) -> None:
    number = dispensed(client, people, 2)

    (item,) = reconcile(client, people, invoice(people, number, (1, 1), product=people.generic))

    assert item["outcome"] == "product_mismatch"
    assert item["detail"].startswith(f"line 1: billed CIP13 {people.generic}, prescribed CIP13")


def test_billing_the_generic_substituted_at_dispensing_is_matched(
    client: Client, people: People
) -> None:
    number = issue(client, people, 3)["prescription_id"]
    generic = {"system": "CIP13", "code": people.generic, "label": "Paracétamol générique"}
    response = client.post(
        f"/v1/prescriptions/{number}/dispensations",
        json={"lines": [{"line_no": 1, "quantity": 2, "product": generic}]},
        headers=people.as_pharmacist(),
    )
    assert response.status_code == 201, response.text

    (item,) = reconcile(client, people, invoice(people, number, (1, 2), product=people.generic))

    assert item["outcome"] == "matched"


def test_billing_by_a_pharmacy_that_dispensed_nothing_is_no_dispensation(
    client: Client, people: People
) -> None:
    number = dispensed(client, people, 2, finess=people.other_pharmacy)

    (item,) = reconcile(client, people, invoice(people, number, (1, 1)))

    assert item["outcome"] == "no_dispensation"
    assert item["detail"].endswith(f"(dispensed by: {people.other_pharmacy})")


@pytest.mark.parametrize("how", ["never issued", "wrong check character"])
def test_an_invoice_for_no_prescription_is_unknown_prescription(
    client: Client, people: People, how: str
) -> None:
    number = dispensed(client, people, 2)
    if how == "never issued":
        number = PrescriptionNumber.generate().display()
    else:
        compact = number.replace("-", "")
        number = compact[:-1] + ("0" if compact[-1] != "0" else "1")

    (item,) = reconcile(client, people, invoice(people, number, (1, 1)))

    assert item["outcome"] == "unknown_prescription"


def test_the_number_may_be_written_in_any_case_with_or_without_dashes(
    client: Client, people: People
) -> None:
    number = dispensed(client, people, 3)

    found = reconcile(
        client,
        people,
        invoice(people, number.lower(), (1, 1), number="F-1"),
        invoice(people, number.replace("-", ""), (1, 1), number="F-2"),
    )

    assert outcomes(found) == ["matched", "matched"]


# --- invalid lines ------------------------------------------------------------------------------


def test_lines_that_are_not_invoices_are_invalid_with_their_line_and_the_rest_goes_on(
    client: Client, people: People
) -> None:
    number = dispensed(client, people, 3)
    missing = invoice(people, number, number="F-3")
    del missing["finess"]
    bad_finess = invoice(people, number, number="F-4", finess=people.pharmacy[:-1] + "0")
    bad_cip = invoice(people, number, number="F-5", product=people.paracetamol[:-1] + "0")
    zero = invoice(people, number, (1, 0), number="F-6")

    found = reconcile(
        client,
        people,
        invoice(people, number, number="F-1"),
        '{"invoice_number": "F-2", "finess": ',
        missing,
        bad_finess,
        "",  # a blank line is skipped, not an invoice
        bad_cip,
        zero,
        invoice(people, number, number="F-7"),
    )

    assert [(i["line"], i["outcome"]) for i in found] == [
        (1, "matched"),
        (2, "invalid"),
        (3, "invalid"),
        (4, "invalid"),
        (6, "invalid"),
        (7, "invalid"),
        (8, "matched"),
    ]
    details = {i["line"]: i["detail"] for i in found}
    assert details[2].startswith("not valid JSON")
    assert details[3] == "not a valid invoice: Object missing required field `finess`"
    assert details[4] == "not a valid invoice: finess: FINESS check digit does not match"
    assert details[6] == "not a valid invoice: lines[0].product: CIP13 check digit does not match"
    assert details[7] == "not a valid invoice: Expected `int` >= 1 - at `$.lines[0].quantity`"
    assert [i["invoice_number"] for i in found[2:]] == ["F-3", "F-4", "F-5", "F-6", "F-7"]


# --- duplicates ---------------------------------------------------------------------------------


def test_an_invoice_number_repeated_within_a_batch_is_a_duplicate(
    client: Client, people: People
) -> None:
    number = dispensed(client, people, 3)

    found = reconcile(
        client,
        people,
        invoice(people, number, (1, 1)),
        invoice(people, number, (1, 1), number="F-0002"),
        invoice(people, number, (1, 2)),  # F-0001 again
    )

    assert outcomes(found) == ["matched", "matched", "duplicate_invoice"]
    assert found[2]["detail"].endswith("line 1 (matched)")


def test_an_invoice_number_reconciled_by_an_earlier_batch_is_a_duplicate(
    client: Client, people: People
) -> None:
    number = dispensed(client, people, 3)
    first = submit(client, people, invoice(people, number, (1, 4)))  # quantity_mismatch
    finished(client, people, first)

    found = reconcile(client, people, invoice(people, number, (1, 1)))

    assert outcomes(found) == ["duplicate_invoice"]
    assert found[0]["detail"].endswith(f"batch {first}, line 1 (quantity_mismatch)")


def test_the_same_invoice_number_from_another_pharmacy_is_another_invoice(
    client: Client, people: People
) -> None:
    number = dispensed(client, people, 1)
    assert dispense(client, people, number, (1, 1), finess=people.other_pharmacy).status_code == 201

    found = reconcile(
        client,
        people,
        invoice(people, number, (1, 1)),
        invoice(people, number, (1, 1), finess=people.other_pharmacy),
    )

    assert outcomes(found) == ["matched", "matched"]


def test_a_batch_sent_again_is_all_duplicates_and_never_matched_twice(
    client: Client, people: People
) -> None:
    number = dispensed(client, people, 2)
    lines = (
        invoice(people, number, (1, 2), number="F-1"),
        invoice(people, number, (1, 3), number="F-2"),
        invoice(people, number, (1, 1), number="F-3", finess=people.other_pharmacy),
        "not json",
        invoice(people, PrescriptionNumber.generate().value, number="F-4"),
    )
    first = reconcile(client, people, *lines)

    again = reconcile(client, people, *lines)

    assert outcomes(first) == [
        "matched",
        "quantity_mismatch",
        "no_dispensation",
        "invalid",
        "unknown_prescription",
    ]
    assert outcomes(again) == [
        "duplicate_invoice",
        "duplicate_invoice",
        "duplicate_invoice",
        "invalid",
        "unknown_prescription",
    ]


def test_two_batches_sent_at_once_never_both_reconcile_a_number(
    client: Client, people: People
) -> None:
    number = dispensed(client, people, 3)
    lines = [invoice(people, number, (1, 1), number=f"F-{n}") for n in range(50)]

    batches = [submit(client, people, *lines), submit(client, people, *lines)]
    for batch_id in batches:
        finished(client, people, batch_id)
    first, second = (items(client, people, batch_id) for batch_id in batches)

    for one, other in zip(first, second, strict=True):
        assert "duplicate_invoice" in {one["outcome"], other["outcome"]}
        assert {one["outcome"], other["outcome"]} & {"matched", "over_billed"}
    assert outcomes(first + second).count("matched") == 3  # 3 packs dispensed, 3 paid


def test_two_batches_sent_at_once_never_pay_the_same_packs_twice(
    client: Client, people: People
) -> None:
    number = dispensed(client, people, 3)
    ours = [invoice(people, number, (1, 1), number=f"A-{n}") for n in range(50)]
    theirs = [invoice(people, number, (1, 1), number=f"B-{n}") for n in range(50)]

    batches = [submit(client, people, *ours), submit(client, people, *theirs)]
    for batch_id in batches:
        finished(client, people, batch_id)
    found = [item for batch_id in batches for item in items(client, people, batch_id)]

    assert outcomes(found).count("matched") == 3  # 3 packs dispensed, 3 paid, whoever first
    assert outcomes(found).count("over_billed") == 97


# --- a mixed batch, its status and its items ------------------------------------------------------


def test_a_mixed_batch_runs_to_done_with_the_counts_and_amounts_of_each_outcome(
    client: Client, people: People
) -> None:
    number = dispensed(client, people, 2)
    elsewhere = dispensed(client, people, 1, finess=people.other_pharmacy)
    recorded = billed_through_the_api(client, people, "F-7", amount_cents=450)
    lines: list[dict[str, Any] | str] = [
        invoice(people, number, (1, 2), number="F-1"),  # matched
        invoice(people, number, (1, 3), number="F-2"),  # quantity_mismatch
        invoice(people, number, (1, 1), number="F-3", product=people.generic),  # product
        invoice(people, elsewhere, (1, 1), number="F-4"),  # no_dispensation
        invoice(people, number, (1, 1), number="F-1"),  # duplicate_invoice
        invoice(people, PrescriptionNumber.generate().value, number="F-5"),  # unknown
        "{",  # invalid
        invoice(people, number, (1, 1), number="F-6"),  # over_billed: F-1 paid both packs
        invoice(people, recorded, (1, 2), number="F-7"),  # amount_mismatch: 500, not 450
    ]
    batch_id = submit(client, people, *lines)

    first = client.get(f"{BATCHES}/{batch_id}", headers=people.as_insurer()).json()
    batch = finished(client, people, batch_id)

    assert first["status"] in {"running", "done"}
    assert 0 <= first["lines_done"] <= first["lines_total"] == 9
    assert batch["counts"] == {
        "invalid": 1,
        "unknown_prescription": 1,
        "receipt_invalid": 0,
        "duplicate_invoice": 1,
        "no_dispensation": 1,
        "product_mismatch": 1,
        "quantity_mismatch": 1,
        "over_billed": 1,
        "amount_mismatch": 1,
        "matched": 1,
    }
    assert batch["amounts_cents"] == {
        "invalid": 0,
        "unknown_prescription": 250,
        "receipt_invalid": 0,
        "duplicate_invoice": 250,
        "no_dispensation": 250,
        "product_mismatch": 250,
        "quantity_mismatch": 750,
        "over_billed": 250,
        "amount_mismatch": 500,
        "matched": 500,
    }
    assert (batch["lines_total"], batch["lines_done"], batch["progress"]) == (9, 9, 1.0)
    assert batch["finished_at"] is not None
    assert outcomes(items(client, people, batch_id)) == [
        "matched",
        "quantity_mismatch",
        "product_mismatch",
        "no_dispensation",
        "duplicate_invoice",
        "unknown_prescription",
        "invalid",
        "over_billed",
        "amount_mismatch",
    ]


def billed_through_the_api(
    client: Client, people: People, invoice_number: str, amount_cents: int
) -> str:
    """A prescription of which 2 packs were dispensed and billed by the pharmacy's LGO."""
    number: str = issue(client, people, 3)["prescription_id"]
    dispensation = dispense(client, people, number, (1, 2)).json()["dispensation_id"]
    answer = client.post(
        f"/v1/prescriptions/{number}/dispensations/{dispensation}/billing",
        json={
            "invoice_number": invoice_number,
            "lines": [{"line_no": 1, "quantity": 2, "amount_cents": amount_cents}],
        },
        headers=people.as_pharmacist(),
    )
    assert answer.status_code == 201, answer.text
    return number


# --- billing integrity --------------------------------------------------------------------------


def test_over_billing_across_two_batches_is_caught(client: Client, people: People) -> None:
    number = dispensed(client, people, 2)
    first = reconcile(client, people, invoice(people, number, (1, 2), number="F-1"))

    second = reconcile(client, people, invoice(people, number, (1, 1), number="F-2"))

    assert outcomes(first + second) == ["matched", "over_billed"]
    assert second[0]["detail"] == (
        f"line 1: billed 1 of CIP13 {people.paracetamol} (250 cents), pharmacy "
        f"{people.pharmacy} dispensed 2 and was already paid for 2 (invoice F-1)"
    )


def test_an_invoice_as_the_pharmacy_recorded_it_matches(client: Client, people: People) -> None:
    number = billed_through_the_api(client, people, "F-8", amount_cents=500)

    (item,) = reconcile(client, people, invoice(people, number, (1, 2), number="F-8"))

    assert item["outcome"] == "matched"


def test_a_dci_line_dispensed_with_a_pack_is_billed_by_that_pack(
    client: Client, people: People
) -> None:
    body = people.prescription_body(2)
    body["lines"][0]["product"] = {"system": "DCI", "label": "Paracétamol"}
    created = client.post("/v1/prescriptions", json=body, headers=people.as_prescriber())
    number = created.json()["prescription_id"]
    pack = {"system": "CIP13", "code": people.generic, "label": "Paracétamol Biogaran 1 g"}
    handed = client.post(
        f"/v1/prescriptions/{number}/dispensations",
        json={"lines": [{"line_no": 1, "quantity": 2, "product": pack}]},
        headers=people.as_pharmacist(),
    )
    assert handed.status_code == 201, handed.text

    found = reconcile(
        client,
        people,
        invoice(people, number, (1, 1), number="F-1", product=people.generic),
        invoice(people, number, (1, 1), number="F-2"),  # the prescriber's pack: not handed over
    )

    assert outcomes(found) == ["matched", "product_mismatch"]


def test_items_are_filtered_by_outcome(client: Client, people: People) -> None:
    number = dispensed(client, people, 2)
    batch_id = submit(
        client,
        people,
        invoice(people, number, (1, 3), number="F-1"),
        invoice(people, number, (1, 1), number="F-2"),
        invoice(people, number, (1, 3), number="F-3"),
    )
    finished(client, people, batch_id)

    mismatched = items(client, people, batch_id, outcome="quantity_mismatch")
    assert [(i["line"], i["invoice_number"]) for i in mismatched] == [(1, "F-1"), (3, "F-3")]
    assert items(client, people, batch_id, outcome="product_mismatch") == []

    response = client.get(
        f"{BATCHES}/{batch_id}/items", params={"outcome": "fine"}, headers=people.as_insurer()
    )
    assert_problem(response, 400, "invalid_request")


def test_a_batch_larger_than_the_usual_body_limit_is_accepted(
    client: Client, people: People
) -> None:
    number = dispensed(client, people, 3)
    lines = [invoice(people, number, (1, 1), number=f"F-{n:05d}") for n in range(600)]
    assert len(ndjson(*lines)) > 64 * 1024

    batch = finished(client, people, submit(client, people, *lines))

    assert (batch["counts"]["matched"], batch["counts"]["over_billed"]) == (3, 597)


def test_an_empty_batch_is_done_at_once(client: Client, people: People) -> None:
    batch = finished(client, people, submit(client, people))

    assert (batch["lines_total"], batch["lines_done"], sum(batch["counts"].values())) == (0, 0, 0)


# --- who may, and what does not exist -------------------------------------------------------------


@pytest.mark.parametrize("role", ["pharmacist", "prescriber", "patient"])
def test_only_the_insurer_reconciles(client: Client, people: People, role: str) -> None:
    headers = {
        "pharmacist": people.as_pharmacist(),
        "prescriber": people.as_prescriber(),
        "patient": people.as_patient(),
    }[role]
    batch_id = submit(client, people, "{}")

    assert_problem(
        client.post(BATCHES, content=b"{}\n", headers={**headers, **NDJSON}), 403, "forbidden"
    )
    assert_problem(client.get(f"{BATCHES}/{batch_id}", headers=headers), 403, "forbidden")
    assert_problem(client.get(f"{BATCHES}/{batch_id}/items", headers=headers), 403, "forbidden")
    finished(client, people, batch_id)


def test_an_unknown_batch_is_not_found(client: Client, people: People) -> None:
    assert_problem(client.get(f"{BATCHES}/nope", headers=people.as_insurer()), 404, "not_found")
    assert_problem(
        client.get(f"{BATCHES}/nope/items", headers=people.as_insurer()), 404, "not_found"
    )


def test_a_body_that_is_not_ndjson_is_refused(client: Client, people: People) -> None:
    response = client.post(
        BATCHES,
        content=b"<invoices/>",
        headers={**people.as_insurer(), "content-type": "application/xml"},
    )

    assert_problem(response, 415, "unsupported_media_type")


def test_a_stopping_server_closes_its_reconciliation_store(tmp_path: Path) -> None:
    """Given a server on the embedded default, when it stops, then the batch store it opened
    with its read models is closed (not left open until the process ends)."""
    app = build_app(settings_for(tmp_path))
    with TestClient(app):
        store = app.state.reconciliation.store
    assert isinstance(store, SqliteBatches)
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        asyncio.run(store.db.run(lambda cur: cur.execute("SELECT 1").fetchall()))
