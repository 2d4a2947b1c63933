"""The details a person acts on: what each outcome says of the invoice and the facts."""

from __future__ import annotations

from collections.abc import Mapping

from domain.identifiers import InvalidIdentifier, PrescriptionNumber
from domain.reconciliation.invoices import Invoice, LineBilled, ProductRef
from domain.reconciliation.records import Facts


def amount_problem(invoice: Invoice, billed: Mapping[int, LineBilled], facts: Facts) -> str:
    """How the invoice differs from the billing recorded under its number ("" if it does not)."""
    recorded = facts.recorded
    assert recorded is not None
    expected = {line.line_no: (line.quantity, line.amount_cents) for line in recorded.lines}
    if expected == {no: (line.quantity, line.amount_cents) for no, line in billed.items()}:
        return ""
    as_recorded = "; ".join(
        f"line {no}: {q} packs, {a} cents" for no, (q, a) in sorted(expected.items())
    )
    return (
        f"invoice {invoice.invoice_number} bills "
        + "; ".join(
            f"line {no}: {line.quantity} packs, {line.amount_cents} cents"
            for no, line in sorted(billed.items())
        )
        + f"; pharmacy {invoice.finess} recorded under this number (dispensation "
        f"{recorded.dispensation_id}): {as_recorded or 'no line'}"
    )


def billed_text(line: LineBilled) -> str:
    products = ", ".join(describe(p) for p in line.products)
    return f"billed {line.quantity} of {products} ({line.amount_cents} cents)"


def invoices(numbers: tuple[str, ...]) -> str:
    return ("invoice " if len(numbers) == 1 else "invoices ") + ", ".join(numbers)


def matched_detail(invoice: Invoice, facts: Facts) -> str:
    lines = "; ".join(
        f"line {line.line_no}: billed {line.quantity} of {describe(line.product)} "
        f"({line.amount_cents} cents), dispensed {facts.given.get(line.line_no, 0)}"
        + _by_procedure(facts, line.line_no)
        + (
            f", already paid {facts.paid[line.line_no]} ({invoices(facts.paid_in[line.line_no])})"
            if line.line_no in facts.paid
            else ""
        )
        for line in invoice.lines
    )
    return f"billed as dispensed by pharmacy {invoice.finess} ({lines})"


def _by_procedure(facts: Facts, line_no: int) -> str:
    """ " (1 by exceptional_supply)": what of the line a procedure gave, "" when none did."""
    given = facts.by_procedure.get(line_no)
    if not given:
        return ""
    return " (" + ", ".join(f"{n} by {procedure}" for procedure, n in sorted(given.items())) + ")"


def unknown_detail(text: str) -> str:
    try:
        number = PrescriptionNumber.parse(text)
    except InvalidIdentifier as error:
        return f"no prescription has the number {text!r}: {error}"
    return f"no prescription has the number {number.display()}"


def shown(text: str) -> str:
    try:
        return PrescriptionNumber.parse(text).display()
    except InvalidIdentifier:
        return text


def describe(product: ProductRef) -> str:
    return f"{product.system} {product.code}" if product.code else f"DCI {product.label!r}"
