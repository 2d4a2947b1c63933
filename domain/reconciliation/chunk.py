"""A chunk of a batch's invoices, in order, with the duplicates and payments inside it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from domain.reconciliation.decision import Previous, Verdict, reconcile
from domain.reconciliation.invoices import RECONCILED, Entry, Invoice, InvoiceKey, InvoiceLine
from domain.reconciliation.receipts import ReceiptCheck
from domain.reconciliation.records import (
    NOTHING_PAID,
    UNITS_UNKNOWN,
    PaidInvoices,
    PaidLines,
    PrescriptionRecord,
    SubstituteCheck,
)


def reconcile_chunk(
    batch_id: str,
    entries: Iterable[Entry],
    records: Mapping[str, PrescriptionRecord],
    previous: Mapping[InvoiceKey, Previous],
    paid: Mapping[str, PaidInvoices] | None = None,
    *,
    substitute: SubstituteCheck | None = None,
    receipts: ReceiptCheck | None = None,
) -> list[Verdict]:
    """The verdict of each entry, in order. `records` holds the prescriptions found, by
    canonical number; `previous` the invoices reconciled before this chunk, and `paid` those of
    them that were `matched`, by prescription. Within the chunk, the first invoice reconciled
    under a number keeps it, and a later one with the same number is a `duplicate_invoice` of
    it; a `matched` invoice counts as paid for the ones after it."""
    verdicts = []
    seen: dict[InvoiceKey, Previous] = {}
    paid_now: dict[str, dict[InvoiceKey, PaidLines]] = {}
    for entry in entries:
        invoice = entry.invoice
        number = entry.number
        record = None if number is None else records.get(number)
        key = invoice.key
        already = NOTHING_PAID
        if record is not None and (paid or paid_now):  # most chunks of a first batch: neither
            already = _paid_for(number, paid, paid_now)
        earlier = previous.get(key) or seen.get(key)
        verdict = reconcile(invoice, record, earlier, already, substitute, receipts=receipts)
        if verdict.outcome in RECONCILED:
            seen[key] = Previous(batch_id, entry.line, verdict.outcome)
            if verdict.outcome == "matched" and number is not None:
                paid_now.setdefault(number, {})[key] = paid_lines(invoice, substitute)
        verdicts.append(verdict)
    return verdicts


def _paid_for(
    number: str | None,
    before: Mapping[str, PaidInvoices] | None,
    now: Mapping[str, PaidInvoices],
) -> PaidInvoices:
    earlier = before.get(number, NOTHING_PAID) if before and number else NOTHING_PAID
    here = now.get(number, NOTHING_PAID) if number else NOTHING_PAID
    if not here:
        return earlier
    return {**earlier, **here} if earlier else here


def paid_lines(invoice: Invoice, catalogue: SubstituteCheck | None = None) -> PaidLines:
    """What a matched invoice pays, line by line (flat): the units where `catalogue` states
    the units of the pack billed."""
    lines = invoice.lines
    if len(lines) == 1:  # most invoices
        line = lines[0]
        return (line.line_no, line.quantity, line.amount_cents, _units(line, catalogue))
    return tuple(
        v
        for line in lines
        for v in (line.line_no, line.quantity, line.amount_cents, _units(line, catalogue))
    )


def _units(line: InvoiceLine, catalogue: SubstituteCheck | None) -> int:
    size = None if catalogue is None else catalogue.units(line.product)
    return UNITS_UNKNOWN if size is None else line.quantity * size
