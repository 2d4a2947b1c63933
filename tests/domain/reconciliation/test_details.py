"""What the insurer reads in each outcome's detail when an invoice has several lines, several
problems, several payers: given the log and the invoices before it, then this outcome and this
detail, word for word. A person acts on the detail, so nothing in it may be dropped or merged."""

from __future__ import annotations

import pytest

from domain.checks import canonical_number
from domain.events import Product
from domain.identifiers import Cip13, Finess
from domain.reconciliation.chunk import reconcile_chunk
from domain.reconciliation.decision import reconcile
from domain.reconciliation.invoices import Entry
from domain.reconciliation.records import (
    DispensationRef,
    HandedOver,
    LineRef,
    PrescribedRef,
    PrescriptionRecord,
)
from tests.domain.builders import (
    AMOXICILLINE,
    GENERIC,
    NUMBER,
    PARACETAMOL,
    PHARMACY_A,
    PHARMACY_B,
    dispensed,
    issued,
)
from tests.domain.reconciliation.test_chunk import DCI, billed, dci_prescription
from tests.domain.reconciliation.test_decision import invoice, log, ref, substituted

PHARMACY_C = Finess.from_body("69000123")
OTHER_PACK = Product(
    system="CIP13", code=Cip13.from_body("340093222222").value, label="Doliprane 1 g"
)
A, B, C = PHARMACY_A.value, PHARMACY_B.value, PHARMACY_C.value


# --- no_dispensation ---------------------------------------------------------------------------


def test_no_dispensation_names_each_pharmacy_that_dispensed_it_once() -> None:
    record = log(
        issued(3),
        dispensed(2, (1, 1), finess=PHARMACY_B),
        dispensed(3, (1, 1), finess=PHARMACY_C, dispensation_id="d2"),
        dispensed(4, (1, 1), finess=PHARMACY_B, dispensation_id="d3"),
    )

    verdict = reconcile(invoice((1, 1)), record, None)

    assert (verdict.outcome, verdict.detail) == (
        "no_dispensation",
        f"pharmacy {A} dispensed nothing of prescription {NUMBER.display()} "
        f"(dispensed by: {B}, {C})",
    )


# --- product_mismatch --------------------------------------------------------------------------


def test_every_product_problem_of_an_invoice_is_listed() -> None:
    record = log(issued(3, 2), substituted(2, 1, 1, GENERIC), substituted(3, 2, 1, AMOXICILLINE))
    # Line 1 bills the substitute handed over (fine), line 9 does not exist, line 2 bills a
    # product that was neither prescribed nor handed over for it.
    billing = invoice((1, 1, GENERIC), (9, 1), (2, 1, GENERIC))

    verdict = reconcile(billing, record, None)

    assert (verdict.outcome, verdict.detail) == (
        "product_mismatch",
        "line 9: the prescription has no line 9 (its lines: 1, 2); "
        f"line 2: billed CIP13 {GENERIC.code}, prescribed CIP13 {AMOXICILLINE.code}, "
        f"substitutes recorded by pharmacy {A}: none",
    )


def test_a_line_the_pharmacy_never_handed_over_billed_as_another_product() -> None:
    record = log(issued(3, 2), dispensed(2, (1, 1)))

    verdict = reconcile(invoice((1, 1), (2, 1, GENERIC)), record, None)

    assert (verdict.outcome, verdict.detail) == (
        "product_mismatch",
        f"line 2: billed CIP13 {GENERIC.code}, prescribed CIP13 {AMOXICILLINE.code}, "
        f"substitutes recorded by pharmacy {A}: none",
    )


def test_the_detail_names_each_substitute_recorded_for_the_line_once() -> None:
    record = log(
        issued(6),
        substituted(2, 1, 1, GENERIC),
        substituted(3, 1, 1, AMOXICILLINE),
        substituted(4, 1, 1, GENERIC),
    )

    verdict = reconcile(invoice((1, 1, OTHER_PACK)), record, None)

    assert verdict.detail == (
        f"line 1: billed CIP13 {OTHER_PACK.code}, prescribed CIP13 {PARACETAMOL.code}, "
        f"substitutes recorded by pharmacy {A}: CIP13 {GENERIC.code}, CIP13 {AMOXICILLINE.code}"
    )


def test_a_substance_line_billed_under_another_substance_name_is_product_mismatch() -> None:
    record = log(dci_prescription(), substituted(2, 1, 1, DCI))  # a v1 dispensing: no pack
    ibuprofen = Product(system="DCI", label="Ibuprofène")

    verdict = reconcile(invoice((1, 1, ibuprofen)), record, None)

    assert (verdict.outcome, verdict.detail) == (
        "product_mismatch",
        "line 1: billed DCI 'Ibuprofène', prescribed DCI 'Paracétamol', "
        f"substitutes recorded by pharmacy {A}: none",
    )


# --- quantity_mismatch -------------------------------------------------------------------------


def test_every_line_billed_beyond_what_was_dispensed_is_listed() -> None:
    record = log(issued(3, 2), dispensed(2, (1, 1)), substituted(3, 2, 1, AMOXICILLINE))

    verdict = reconcile(invoice((1, 2), (2, 2, AMOXICILLINE)), record, None)

    assert (verdict.outcome, verdict.detail) == (
        "quantity_mismatch",
        f"line 1: billed 2 of CIP13 {PARACETAMOL.code} (500 cents), pharmacy {A} dispensed 1; "
        f"line 2: billed 2 of CIP13 {AMOXICILLINE.code} (500 cents), pharmacy {A} dispensed 1",
    )


# --- what was paid: matched, then over_billed --------------------------------------------------


def test_a_two_line_invoice_pays_both_lines_and_each_later_detail_names_its_payers() -> None:
    record = log(issued(3, 2), dispensed(2, (1, 2)), substituted(3, 2, 2, AMOXICILLINE))
    invoices = [
        invoice((1, 1), (2, 1, AMOXICILLINE), number="F-1"),
        invoice((1, 1), number="F-2"),
        invoice((1, 1), (2, 2, AMOXICILLINE), number="F-3"),
        invoice((2, 1, AMOXICILLINE), number="F-4"),
    ]
    entries = [Entry.of(n, inv) for n, inv in enumerate(invoices, start=1)]

    verdicts = reconcile_chunk("b", entries, {NUMBER.value: record}, {})

    assert [(v.outcome, v.detail) for v in verdicts[1:]] == [
        (
            "matched",
            f"billed as dispensed by pharmacy {A} (line 1: billed 1 of CIP13 {PARACETAMOL.code} "
            "(250 cents), dispensed 2, already paid 1 (invoice F-1))",
        ),
        (
            "over_billed",
            f"line 1: billed 1 of CIP13 {PARACETAMOL.code} (250 cents), pharmacy {A} dispensed 2 "
            "and was already paid for 2 (invoices F-1, F-2); "
            f"line 2: billed 2 of CIP13 {AMOXICILLINE.code} (500 cents), pharmacy {A} "
            "dispensed 2 and was already paid for 1 (invoice F-1)",
        ),
        (
            "matched",
            f"billed as dispensed by pharmacy {A} (line 2: billed 1 of CIP13 "
            f"{AMOXICILLINE.code} (250 cents), dispensed 2, already paid 1 (invoice F-1))",
        ),
    ]
    assert verdicts[0].outcome == "matched"


# --- amount_mismatch ---------------------------------------------------------------------------


def test_amount_mismatch_shows_both_billings_line_by_line() -> None:
    record = log(
        issued(3, 2),
        dispensed(2, (1, 2), (2, 1)),
        billed(3, (1, 2, 400), (2, 1, 250), number="F-1"),
    )

    verdict = reconcile(invoice((1, 2), (2, 1, AMOXICILLINE), number="F-1"), record, None)

    assert (verdict.outcome, verdict.detail) == (
        "amount_mismatch",
        "invoice F-1 bills line 1: 2 packs, 500 cents; line 2: 1 packs, 250 cents; "
        f"pharmacy {A} recorded under this number (dispensation d1): "
        "line 1: 2 packs, 400 cents; line 2: 1 packs, 250 cents",
    )


def test_a_billing_recorded_without_lines_is_shown_as_such() -> None:
    # The API never records a billing without lines, but the log is read as it is.
    record = PrescriptionRecord(
        prescription_id=NUMBER.value,
        lines=(LineRef(PrescribedRef(1, ref(PARACETAMOL))),),
        dispensations=(
            DispensationRef(
                finess=A,
                lines=(HandedOver(1, 1, ref(PARACETAMOL)),),
                dispensation_id="d1",
                invoice_number="F-0001",
            ),
        ),
    )

    verdict = reconcile(invoice((1, 1)), record, None)

    assert (verdict.outcome, verdict.detail) == (
        "amount_mismatch",
        f"invoice F-0001 bills line 1: 1 packs, 250 cents; pharmacy {A} recorded under this "
        "number (dispensation d1): no line",
    )


# --- the number, as the insurer typed it -------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        NUMBER.value.replace("0", "O"),
        NUMBER.value.replace("0", "o"),
        NUMBER.value.replace("1", "I"),
        NUMBER.value.replace("1", "i"),
        NUMBER.value.replace("1", "L"),
        NUMBER.value.replace("1", "l"),
    ],
)
def test_a_number_typed_with_a_look_alike_is_found(typed: str) -> None:
    assert len(typed) == 20 and typed != NUMBER.value

    assert canonical_number(typed) == NUMBER.value
