"""An invoice's receipt: the dispensing's signed receipt, checked against what it bills.

The pharmacy may send the dispensing's `Ordo-Receipt` with its invoice. Whether the signature
holds is the caller's business (`ReceiptCheck`: the adapters verify it with the published
keys, no I/O here); given what a verified receipt says, the invoice must bill that pharmacy's
dispensing of that prescription, and on each line a pack the receipt names for that line.
Otherwise the outcome is `receipt_invalid`, checked right after `unknown_prescription`.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from domain.checks import canonical_number
from domain.reconciliation.details import describe, shown
from domain.reconciliation.invoices import Invoice, ProductRef, same_product


class ReceiptLine(msgspec.Struct, frozen=True, kw_only=True):
    line_no: int
    product: ProductRef
    quantity: int


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """What a receipt whose signature holds says (the fields reconciliation reads)."""

    action: str
    prescription_id: str
    finess: str | None
    lines: tuple[ReceiptLine, ...] = ()


# A receipt's compact JWS -> what it says, or None when its signature does not hold.
ReceiptCheck = Callable[[str], Receipt | None]


def receipt_problem(invoice: Invoice, check: ReceiptCheck | None) -> str | None:
    """Why the invoice's receipt does not stand for it (None: it does, or there is none)."""
    if invoice.receipt is None:
        return None
    receipt = None if check is None else check(invoice.receipt)
    if receipt is None:
        return "the receipt's signature does not verify with ordo's published keys"
    if receipt.action != "dispensing":
        return f"the receipt is of a {receipt.action}, not of a dispensing"
    if canonical_number(receipt.prescription_id) != canonical_number(invoice.prescription_id):
        return (
            f"the receipt is of prescription {shown(receipt.prescription_id)}, the invoice "
            f"of {shown(invoice.prescription_id)}"
        )
    if receipt.finess != invoice.finess:
        return f"the receipt is of pharmacy {receipt.finess}, the invoice of {invoice.finess}"
    problems = []
    for line in invoice.lines:
        named = [given.product for given in receipt.lines if given.line_no == line.line_no]
        if not any(same_product(line.product, product) for product in named):
            problems.append(
                f"line {line.line_no}: billed {describe(line.product)}, the receipt names "
                + (", ".join(describe(product) for product in named) or "no pack")
            )
    return "; ".join(problems) or None


__all__ = ["Receipt", "ReceiptCheck", "ReceiptLine", "receipt_problem"]
