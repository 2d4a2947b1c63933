"""Over-billing in units (`domain.reconciliation`): the invoices already paid remember the units
they paid where the catalogue states them, so an invoice that would take the units paid beyond
the units the pharmacy handed over of a line is `over_billed`, whatever the box sizes, across
invoices and batches; paid lines without their units (stored before units were) count packs."""

from __future__ import annotations

from domain.reconciliation.chunk import paid_lines, reconcile_chunk
from domain.reconciliation.decision import reconcile
from domain.reconciliation.invoices import Entry, Invoice
from domain.reconciliation.records import (
    NOTHING_PAID,
    UNITS_UNKNOWN,
    PaidInvoices,
    PrescriptionRecord,
)
from tests.domain.builders import AMOXICILLINE, NUMBER, PHARMACY_A, PHARMACY_B, dispensed, issued
from tests.domain.real_packs import LEVOTHYROX_30
from tests.domain.reconciliation.test_decision import invoice, log, substituted
from tests.domain.reconciliation.test_units import (
    B30,
    B90,
    CATALOGUE,
    written_as_three_boxes_of_30,
)


def in_order(
    record: PrescriptionRecord, *invoices: Invoice, paid: PaidInvoices = NOTHING_PAID
) -> list[str]:
    """Reconcile the invoices as one batch, in this order, with the catalogue; their outcomes."""
    entries = [Entry.of(line, inv) for line, inv in enumerate(invoices, start=1)]
    verdicts = reconcile_chunk(
        "b", entries, {NUMBER.value: record}, {}, {NUMBER.value: paid}, substitute=CATALOGUE
    )
    return [verdict.outcome for verdict in verdicts]


def test_boxes_of_30_billed_one_invoice_at_a_time_for_a_box_of_90_are_paid_until_90_units() -> None:
    record = log(written_as_three_boxes_of_30(), substituted(2, 1, 1, B90))
    invoices = [
        invoice((1, 1, B30), number="F-1"),
        invoice((1, 2, B30), number="F-2"),
        invoice((1, 1, B30), number="F-3"),
    ]

    assert in_order(record, *invoices) == ["matched", "matched", "over_billed"]


def test_a_box_of_30_billed_after_a_box_of_90_paid_for_three_of_30_handed_over_is_over_billed() -> (
    None
):
    record = log(written_as_three_boxes_of_30(), substituted(2, 1, 3, B30))
    entries = [Entry.of(1, invoice((1, 1, B90), number="F-1"))]
    entries.append(Entry.of(2, invoice((1, 1, B30), number="F-2")))

    first, second = reconcile_chunk("b", entries, {NUMBER.value: record}, {}, substitute=CATALOGUE)

    assert (first.outcome, second.outcome) == ("matched", "over_billed")
    assert second.detail == (
        f"line 1: billed 1 of CIP13 {LEVOTHYROX_30} (250 cents), 30 units; pharmacy "
        f"{PHARMACY_A.value} dispensed 3, 90 units, and was already paid for 1 (invoice F-1), "
        "90 units"
    )


def test_the_units_an_earlier_batch_paid_count() -> None:
    record = log(written_as_three_boxes_of_30(), substituted(2, 1, 3, B30))
    earlier: PaidInvoices = {(PHARMACY_A.value, "F-1"): (1, 1, 750, 60)}

    outcomes = in_order(
        record, invoice((1, 1, B30), number="F-2"), invoice((1, 1, B30), number="F-3"), paid=earlier
    )

    assert outcomes == ["matched", "over_billed"]


def test_a_paid_line_stored_without_its_units_counts_packs() -> None:
    record = log(written_as_three_boxes_of_30(), substituted(2, 1, 1, B90))
    in_units: PaidInvoices = {(PHARMACY_A.value, "F-1"): (1, 1, 250, 30)}
    in_packs: PaidInvoices = {(PHARMACY_A.value, "F-1"): (1, 1, 250, UNITS_UNKNOWN)}
    without_units = {(PHARMACY_A.value, "F-0"): (1, 1, 250, UNITS_UNKNOWN)}
    known_first: PaidInvoices = {**in_units, **without_units}
    unknown_first: PaidInvoices = {**without_units, **in_units}
    again = invoice((1, 1, B30), number="F-2")

    assert in_order(record, again, paid=in_units) == ["matched"]
    assert in_order(record, again, paid=in_packs) == ["over_billed"]
    assert in_order(record, again, paid=known_first) == ["over_billed"]
    assert in_order(record, again, paid=unknown_first) == ["over_billed"]


def test_another_pharmacys_units_paid_do_not_count() -> None:
    record = log(written_as_three_boxes_of_30(), substituted(2, 1, 1, B90))
    theirs: PaidInvoices = {(PHARMACY_B.value, "F-1"): (1, 3, 750, 90)}

    assert in_order(record, invoice((1, 3, B30), number="F-2"), paid=theirs) == ["matched"]


def test_without_the_catalogue_an_invoice_paid_in_units_still_counts_packs() -> None:
    record = log(written_as_three_boxes_of_30(), substituted(2, 1, 1, B90))
    paid: PaidInvoices = {(PHARMACY_A.value, "F-1"): (1, 1, 250, 30)}

    verdict = reconcile(invoice((1, 1, B30), number="F-2"), record, None, paid)

    assert verdict.outcome == "over_billed"
    assert verdict.detail.endswith("dispensed 1 and was already paid for 1 (invoice F-1)")


def test_an_invoice_paid_remembers_the_units_of_each_line_the_catalogue_knows() -> None:
    two_lines = invoice((1, 2, B30), (2, 1, B90))
    one_line = invoice((1, 3, B30))

    assert paid_lines(two_lines, CATALOGUE) == (1, 2, 500, 60, 2, 1, 250, 90)
    assert paid_lines(one_line, CATALOGUE) == (1, 3, 750, 90)
    assert paid_lines(one_line) == (1, 3, 750, UNITS_UNKNOWN)
    assert paid_lines(two_lines) == (1, 2, 500, UNITS_UNKNOWN, 2, 1, 250, UNITS_UNKNOWN)


def test_a_line_paid_before_is_over_billed_after_a_line_never_paid() -> None:
    record = log(issued(3, 3), dispensed(2, (1, 2), (2, 2)))
    paid: PaidInvoices = {(PHARMACY_A.value, "F-1"): (2, 2, 500, UNITS_UNKNOWN)}

    verdict = reconcile(invoice((1, 1), (2, 1, AMOXICILLINE), number="F-2"), record, None, paid)

    assert verdict.outcome == "over_billed"
    assert verdict.detail.startswith("line 2: billed 1 of CIP13")
