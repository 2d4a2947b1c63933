"""An invoice's receipt: given the log and what a receipt says once its signature is checked,
when the invoice is reconciled, then `receipt_invalid` (right after `unknown_prescription`), or
the checks that follow as if it had none."""

from __future__ import annotations

from domain.events import Product
from domain.reconciliation.chunk import reconcile_chunk
from domain.reconciliation.decision import reconcile
from domain.reconciliation.invoices import Entry, Invoice
from domain.reconciliation.receipts import Receipt, ReceiptCheck, ReceiptLine
from tests.domain.builders import (
    GENERIC,
    NUMBER,
    PARACETAMOL,
    PHARMACY_A,
    PHARMACY_B,
    dispensed,
    issued,
)
from tests.domain.reconciliation.test_decision import EARLIER, invoice, log, ref

TOKEN = "header.claims.signature"


def said(
    *lines: tuple[int, int, Product],
    action: str = "dispensing",
    prescription_id: str = NUMBER.display(),
    finess: str | None = PHARMACY_A.value,
) -> ReceiptCheck:
    """A check under which `TOKEN` verifies and says this; any other text does not verify."""
    receipt = Receipt(
        action=action,
        prescription_id=prescription_id,
        finess=finess,
        lines=tuple(ReceiptLine(line_no=n, product=ref(p), quantity=q) for n, q, p in lines),
    )
    return lambda token: receipt if token == TOKEN else None


def with_receipt(billed: Invoice, receipt: str = TOKEN) -> Invoice:
    return Invoice(
        invoice_number=billed.invoice_number,
        finess=billed.finess,
        prescription_id=billed.prescription_id,
        lines=billed.lines,
        receipt=receipt,
    )


RECORD = log(issued(3), dispensed(2, (1, 2)))


def test_an_invoice_with_the_receipt_of_what_it_bills_is_checked_as_usual() -> None:
    verdict = reconcile(
        with_receipt(invoice((1, 2))), RECORD, None, receipts=said((1, 2, PARACETAMOL))
    )

    assert verdict.outcome == "matched"


def test_an_invoice_without_a_receipt_needs_no_check() -> None:
    assert reconcile(invoice((1, 2)), RECORD, None).outcome == "matched"


def test_a_receipt_whose_signature_does_not_hold_is_receipt_invalid() -> None:
    forged = with_receipt(invoice((1, 2)), "header.claims.forged")

    verdict = reconcile(forged, RECORD, None, receipts=said((1, 2, PARACETAMOL)))

    assert verdict.outcome == "receipt_invalid"
    assert verdict.detail == "the receipt's signature does not verify with ordo's published keys"


def test_a_receipt_nobody_can_check_is_receipt_invalid() -> None:
    verdict = reconcile(with_receipt(invoice((1, 2))), RECORD, None)

    assert verdict.outcome == "receipt_invalid"


def test_a_receipt_naming_another_pack_than_the_invoice_is_receipt_invalid() -> None:
    verdict = reconcile(with_receipt(invoice((1, 2))), RECORD, None, receipts=said((1, 2, GENERIC)))

    assert verdict.outcome == "receipt_invalid"
    assert verdict.detail == (
        f"line 1: billed CIP13 {PARACETAMOL.code}, the receipt names CIP13 {GENERIC.code}"
    )


def test_a_receipt_naming_no_pack_for_a_billed_line_is_receipt_invalid() -> None:
    billed = with_receipt(invoice((1, 1), (2, 1)))

    verdict = reconcile(billed, RECORD, None, receipts=said((1, 2, PARACETAMOL)))

    assert verdict.outcome == "receipt_invalid"
    assert verdict.detail == f"line 2: billed CIP13 {PARACETAMOL.code}, the receipt names no pack"


def test_the_receipt_of_another_prescription_is_receipt_invalid() -> None:
    other = "ABCDE-FGHJK-MNPQR-STVW0"
    receipts = said((1, 2, PARACETAMOL), prescription_id=other)

    verdict = reconcile(with_receipt(invoice((1, 2))), RECORD, None, receipts=receipts)

    assert verdict.outcome == "receipt_invalid"
    assert verdict.detail == (
        f"the receipt is of prescription {other}, the invoice of {NUMBER.display()}"
    )


def test_another_pharmacys_receipt_is_receipt_invalid() -> None:
    receipts = said((1, 2, PARACETAMOL), finess=PHARMACY_B.value)

    verdict = reconcile(with_receipt(invoice((1, 2))), RECORD, None, receipts=receipts)

    assert verdict.outcome == "receipt_invalid"
    assert verdict.detail == (
        f"the receipt is of pharmacy {PHARMACY_B.value}, the invoice of {PHARMACY_A.value}"
    )


def test_the_receipt_of_a_billing_is_not_a_dispensings() -> None:
    receipts = said((1, 2, PARACETAMOL), action="billing")

    verdict = reconcile(with_receipt(invoice((1, 2))), RECORD, None, receipts=receipts)

    assert verdict.outcome == "receipt_invalid"
    assert verdict.detail == "the receipt is of a billing, not of a dispensing"


def test_the_number_of_the_receipt_is_compared_in_any_form() -> None:
    receipts = said((1, 2, PARACETAMOL), prescription_id=NUMBER.value.lower())

    verdict = reconcile(with_receipt(invoice((1, 2))), RECORD, None, receipts=receipts)

    assert verdict.outcome == "matched"


def test_unknown_prescription_comes_before_receipt_invalid() -> None:
    assert reconcile(with_receipt(invoice((1, 2)), "forged"), None, None).outcome == (
        "unknown_prescription"
    )


def test_receipt_invalid_comes_before_duplicate_invoice() -> None:
    forged = with_receipt(invoice((1, 2)), "forged")

    assert reconcile(forged, RECORD, EARLIER, receipts=said()).outcome == "receipt_invalid"


def test_each_line_a_receipt_does_not_stand_for_is_named_with_the_packs_it_names() -> None:
    billed = with_receipt(invoice((1, 1), (2, 1)))
    receipts = said((1, 1, GENERIC), (1, 1, GENERIC), (2, 1, GENERIC))

    verdict = reconcile(billed, RECORD, None, receipts=receipts)

    assert verdict.detail == (
        f"line 1: billed CIP13 {PARACETAMOL.code}, the receipt names CIP13 {GENERIC.code}, "
        f"CIP13 {GENERIC.code}; line 2: billed CIP13 {PARACETAMOL.code}, the receipt names "
        f"CIP13 {GENERIC.code}"
    )


def test_a_chunk_checks_each_invoices_receipt() -> None:
    entries = [
        Entry.of(1, with_receipt(invoice((1, 2)))),
        Entry.of(2, with_receipt(invoice((1, 1)), "header.claims.forged")),
    ]

    verdicts = reconcile_chunk(
        "b", entries, {NUMBER.value: RECORD}, {}, receipts=said((1, 2, PARACETAMOL))
    )

    assert [verdict.outcome for verdict in verdicts] == ["matched", "receipt_invalid"]
