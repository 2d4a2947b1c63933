"""Billing integrity (domain.md): the insurer never pays the same packs twice.

Given the log and the invoices already paid, when invoices are reconciled in the order they
arrive, then a pharmacy's paid total for a line never exceeds what it dispensed (net of
withdrawals): the invoice that would cross it is `over_billed`; an invoice that differs from the
billing the pharmacy recorded under its number is `amount_mismatch`.
"""

from __future__ import annotations

import msgspec

from domain.events import (
    BilledLine,
    BillingRecorded,
    DispensationWithdrawn,
    PrescriptionIssued,
    Product,
)
from domain.identifiers import Finess
from domain.reconciliation.chunk import reconcile_chunk
from domain.reconciliation.decision import reconcile
from domain.reconciliation.invoices import Entry, Invoice
from domain.reconciliation.records import UNITS_UNKNOWN, PaidInvoices, PrescriptionRecord
from tests.domain.builders import (
    GENERIC,
    NUMBER,
    PARACETAMOL,
    PHARMACIST,
    PHARMACY_A,
    PHARMACY_B,
    dispensed,
    issued,
    moment,
)
from tests.domain.reconciliation.test_decision import invoice, log, substituted


def withdrawn(
    version: int, dispensation_id: str = "d1", finess: Finess = PHARMACY_A
) -> DispensationWithdrawn:
    """The pharmacy withdrew a dispensing it recorded in error (issue 9): it counts nowhere."""
    return DispensationWithdrawn(
        prescription_id=NUMBER.value,
        version=version,
        at=moment().at,
        dispensation_id=dispensation_id,
        finess=finess.value,
        pharmacist_rpps=PHARMACIST.value,
        reason="recorded in error",
    )


def billed(
    version: int,
    *lines: tuple[int, int, int],
    number: str = "F-1",
    dispensation_id: str = "d1",
    finess: Finess = PHARMACY_A,
) -> BillingRecorded:
    """The pharmacy recorded billing through the API: (line_no, quantity, amount_cents)."""
    return BillingRecorded(
        prescription_id=NUMBER.value,
        version=version,
        at=moment().at,
        dispensation_id=dispensation_id,
        finess=finess.value,
        pharmacist_rpps=PHARMACIST.value,
        invoice_number=number,
        lines=tuple(BilledLine(line_no=no, quantity=q, amount_cents=a) for no, q, a in lines),
    )


def in_order(
    record: PrescriptionRecord, *invoices: Invoice, paid: PaidInvoices | None = None
) -> list[str]:
    """Reconcile the invoices as one batch, in this order; their outcomes."""
    entries = [Entry.of(line, inv) for line, inv in enumerate(invoices, start=1)]
    paid_before = {NUMBER.value: paid} if paid else None
    verdicts = reconcile_chunk("b", entries, {NUMBER.value: record}, {}, paid_before)
    return [verdict.outcome for verdict in verdicts]


# --- over_billed ---------------------------------------------------------------------------------


def test_three_invoices_of_2_packs_for_2_dispensed_pay_only_the_first() -> None:
    record = log(issued(3), dispensed(2, (1, 2)))
    invoices = [invoice((1, 2), number=f"F-{n}") for n in (1, 2, 3)]

    outcomes = in_order(record, *invoices)

    assert outcomes == ["matched", "over_billed", "over_billed"]


def test_the_over_billed_detail_says_what_was_billed_dispensed_and_already_paid_where() -> None:
    record = log(issued(3), dispensed(2, (1, 2)))
    entries = [Entry.of(n, invoice((1, 2), number=f"F-{n}")) for n in (1, 2)]

    _, second = reconcile_chunk("b", entries, {NUMBER.value: record}, {})

    assert second.detail == (
        f"line 1: billed 2 of CIP13 {PARACETAMOL.code} (500 cents), pharmacy "
        f"{PHARMACY_A.value} dispensed 2 and was already paid for 2 (invoice F-1)"
    )


def test_invoices_add_up_until_what_was_dispensed() -> None:
    record = log(issued(3), dispensed(2, (1, 3)))
    invoices = [invoice((1, 1), number=f"F-{n}") for n in (1, 2, 3, 4)]

    assert in_order(record, *invoices) == ["matched", "matched", "matched", "over_billed"]


def test_what_an_earlier_batch_paid_counts() -> None:
    record = log(issued(3), dispensed(2, (1, 2)))
    earlier: PaidInvoices = {(PHARMACY_A.value, "F-1"): (1, 1, 250, UNITS_UNKNOWN)}  # 1 pack

    outcomes = in_order(
        record, invoice((1, 1), number="F-2"), invoice((1, 1), number="F-3"), paid=earlier
    )

    assert outcomes == ["matched", "over_billed"]


def test_only_matched_invoices_count_as_paid() -> None:
    record = log(issued(3), dispensed(2, (1, 2)))
    too_many = invoice((1, 3), number="F-1")
    over = invoice((1, 2), number="F-3")

    outcomes = in_order(
        record, too_many, invoice((1, 1), number="F-2"), over, invoice((1, 1), number="F-4")
    )

    assert outcomes == ["quantity_mismatch", "matched", "over_billed", "matched"]


def test_a_withdrawn_dispensing_pays_nothing() -> None:
    record = log(
        issued(3),
        dispensed(2, (1, 2)),
        withdrawn(3),
        dispensed(4, (1, 1), dispensation_id="d2"),
    )

    outcomes = in_order(
        record,
        invoice((1, 2), number="F-1"),
        invoice((1, 1), number="F-2"),
        invoice((1, 1), number="F-3"),
    )

    assert outcomes == ["quantity_mismatch", "matched", "over_billed"]


def test_two_pharmacies_on_one_prescription_are_paid_each_for_its_own_packs() -> None:
    record = log(
        issued(3),
        dispensed(2, (1, 1)),
        dispensed(3, (1, 2), finess=PHARMACY_B, dispensation_id="d2"),
    )

    outcomes = in_order(
        record,
        invoice((1, 1), number="F-1"),
        invoice((1, 2), number="F-1", finess=PHARMACY_B),
        invoice((1, 1), number="F-2"),
        invoice((1, 1), number="F-2", finess=PHARMACY_B),
    )

    assert outcomes == ["matched", "matched", "over_billed", "over_billed"]


def test_quantity_mismatch_comes_before_over_billed() -> None:
    record = log(issued(3), dispensed(2, (1, 2)))

    assert in_order(record, invoice((1, 2), number="F-1"), invoice((1, 3), number="F-2")) == [
        "matched",
        "quantity_mismatch",
    ]


# --- amount_mismatch -----------------------------------------------------------------------------


def test_an_invoice_that_differs_from_the_recorded_billing_is_amount_mismatch() -> None:
    record = log(issued(3), dispensed(2, (1, 2)), billed(3, (1, 2, 450), number="F-1"))

    verdict = reconcile(invoice((1, 2), number="F-1"), record, None)

    assert verdict.outcome == "amount_mismatch"
    assert verdict.detail == (
        f"invoice F-1 bills line 1: 2 packs, 500 cents; pharmacy {PHARMACY_A.value} recorded "
        "under this number (dispensation d1): line 1: 2 packs, 450 cents"
    )


def test_an_invoice_that_bills_fewer_packs_than_recorded_is_amount_mismatch() -> None:
    record = log(issued(3), dispensed(2, (1, 2)), billed(3, (1, 2, 500), number="F-1"))

    assert reconcile(invoice((1, 1), number="F-1"), record, None).outcome == "amount_mismatch"


def test_an_invoice_as_recorded_matches() -> None:
    record = log(issued(3), dispensed(2, (1, 2)), billed(3, (1, 2, 500), number="F-1"))

    assert reconcile(invoice((1, 2), number="F-1"), record, None).outcome == "matched"


def test_without_a_recorded_billing_under_its_number_amounts_are_not_compared() -> None:
    record = log(issued(3), dispensed(2, (1, 2)), billed(3, (1, 2, 450), number="F-1"))

    assert reconcile(invoice((1, 2), number="F-9"), record, None).outcome == "matched"


def test_another_pharmacys_recorded_billing_is_not_compared() -> None:
    record = log(
        issued(3),
        dispensed(2, (1, 1)),
        dispensed(3, (1, 1), finess=PHARMACY_B, dispensation_id="d2"),
        billed(4, (1, 1, 999), number="F-1", finess=PHARMACY_B, dispensation_id="d2"),
    )

    assert reconcile(invoice((1, 1), number="F-1"), record, None).outcome == "matched"


def test_over_billed_comes_before_amount_mismatch() -> None:
    record = log(issued(3), dispensed(2, (1, 2)), billed(3, (1, 2, 450), number="F-2"))

    assert in_order(record, invoice((1, 2), number="F-1"), invoice((1, 2), number="F-2")) == [
        "matched",
        "over_billed",
    ]


# --- substance (DCI) lines -----------------------------------------------------------------------

DCI = Product(system="DCI", label="Paracétamol")


def dci_prescription() -> PrescriptionIssued:
    event = issued(2)
    line = msgspec.structs.replace(event.lines[0], product=DCI)
    return msgspec.structs.replace(event, lines=(line,))


def test_a_dci_line_matches_the_pack_recorded_at_dispensing() -> None:
    record = log(dci_prescription(), substituted(2, 1, 1, GENERIC))

    assert reconcile(invoice((1, 1, GENERIC)), record, None).outcome == "matched"


def test_a_dci_line_billed_with_another_pack_is_product_mismatch() -> None:
    record = log(dci_prescription(), substituted(2, 1, 1, GENERIC))

    verdict = reconcile(invoice((1, 1, PARACETAMOL)), record, None)

    assert verdict.outcome == "product_mismatch"
    assert verdict.detail.endswith(
        f"substitutes recorded by pharmacy {PHARMACY_A.value}: CIP13 {GENERIC.code}"
    )


def test_a_dci_line_is_billed_by_its_pack_not_by_the_substance_once_a_pack_was_recorded() -> None:
    record = log(dci_prescription(), substituted(2, 1, 1, GENERIC))

    assert reconcile(invoice((1, 1, DCI)), record, None).outcome == "product_mismatch"
