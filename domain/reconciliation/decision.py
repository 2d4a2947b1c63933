"""The outcome of one invoice: the checks in the contract's order, the first that applies."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from domain.reconciliation.details import (
    amount_problem,
    billed_text,
    describe,
    invoices,
    matched_detail,
    shown,
    unknown_detail,
)
from domain.reconciliation.invoices import (
    Invoice,
    LineBilled,
    Outcome,
    ProductRef,
    billed_per_line,
    product_key,
    same_product,
)
from domain.reconciliation.receipts import ReceiptCheck, receipt_problem
from domain.reconciliation.records import (
    NOTHING_PAID,
    Facts,
    PaidInvoices,
    PrescriptionRecord,
    SubstituteCheck,
    facts_of,
)


class Verdict(msgspec.Struct, frozen=True, gc=False):
    outcome: Outcome
    detail: str


class Previous(msgspec.Struct, frozen=True, gc=False):
    """Where an invoice number was first reconciled: its batch, its line there, its outcome."""

    batch_id: str
    line: int
    outcome: Outcome


def reconcile(
    invoice: Invoice,
    record: PrescriptionRecord | None,
    previous: Previous | None,
    paid: PaidInvoices = NOTHING_PAID,
    substitute: SubstituteCheck | None = None,
    *,
    receipts: ReceiptCheck | None = None,
) -> Verdict:
    """The outcome of an invoice whose prescription is `record` (None: no such prescription),
    given the prescription's invoices already paid; its receipt, if any, checked by `receipts`."""
    if record is None:
        return decide(invoice, None, previous)
    if invoice.receipt is not None and (problem := receipt_problem(invoice, receipts)):
        return Verdict("receipt_invalid", problem)
    facts = facts_of(record, invoice.finess, paid, invoice.invoice_number, substitute)
    return decide(invoice, facts, previous)


def decide(invoice: Invoice, facts: Facts | None, previous: Previous | None) -> Verdict:
    """Given the invoice, the prescription's facts (None: unknown) and where its number was
    already reconciled (None: never), the outcome and a detail a person can act on."""
    if facts is None:
        return Verdict("unknown_prescription", unknown_detail(invoice.prescription_id))
    if previous is not None:
        return Verdict(
            "duplicate_invoice",
            f"invoice {invoice.invoice_number} of pharmacy {invoice.finess} was already "
            f"reconciled: batch {previous.batch_id}, line {previous.line} ({previous.outcome})",
        )
    if not facts.given:
        others = ", ".join(facts.other_pharmacies) or "no pharmacy yet"
        return Verdict(
            "no_dispensation",
            f"pharmacy {invoice.finess} dispensed nothing of prescription "
            f"{shown(invoice.prescription_id)} (dispensed by: {others})",
        )
    return _billing_checked(invoice, facts)


def _billing_checked(invoice: Invoice, facts: Facts) -> Verdict:
    """What the invoice bills against what was dispensed, already paid, and recorded."""
    if problems := _product_problems(invoice, facts):
        return Verdict("product_mismatch", "; ".join(problems))
    billed = billed_per_line(invoice)
    if problems := _quantity_problems(invoice, billed, facts):
        return Verdict("quantity_mismatch", "; ".join(problems))
    if problems := _over_billing(invoice, billed, facts):
        return Verdict("over_billed", "; ".join(problems))
    if facts.recorded is not None and (problem := amount_problem(invoice, billed, facts)):
        return Verdict("amount_mismatch", problem)
    return Verdict("matched", matched_detail(invoice, facts))


def _product_problems(invoice: Invoice, facts: Facts) -> list[str]:
    problems = []
    for line in invoice.lines:
        prescribed = facts.prescribed.get(line.line_no)
        if prescribed is None:
            have = ", ".join(str(no) for no in sorted(facts.prescribed))
            problems.append(
                f"line {line.line_no}: the prescription has no line {line.line_no} "
                f"(its lines: {have})"
            )
            continue
        billed = line.product
        handed = facts.handed.get(line.line_no, ())
        if prescribed.system != "DCI" and same_product(billed, prescribed):
            continue  # the usual case, without a call more
        if _may_bill(billed, prescribed, handed):
            continue
        excluded = facts.non_substitutable.get(line.line_no)
        if excluded is not None:
            problems.append(
                f"line {line.line_no}: billed {describe(billed)}, prescribed "
                f"{describe(prescribed)}, a line written non substituable ({excluded})"
            )
            continue
        if _a_substitute_of_the_prescribed_pack(billed, prescribed, handed, facts.substitute):
            continue
        substitutes = {
            product_key(h): h for h in handed if not same_product(h, prescribed)
        }.values()
        problems.append(
            f"line {line.line_no}: billed {describe(billed)}, prescribed "
            f"{describe(prescribed)}, substitutes recorded by pharmacy {invoice.finess}: "
            + (", ".join(describe(p) for p in substitutes) or "none")
        )
    return problems


def _may_bill(billed: ProductRef, prescribed: ProductRef, handed: tuple[ProductRef, ...]) -> bool:
    """A pack (or unit) line bills what was prescribed or the substitute handed over. A line
    written by substance (DCI) names no pack: it bills the pack recorded at dispensing (or the
    substance itself when the dispensing recorded none, as v1 dispensings may)."""
    if prescribed.system != "DCI" and same_product(billed, prescribed):
        return True
    return any(same_product(billed, h) for h in handed)


def _a_substitute_of_the_prescribed_pack(
    billed: ProductRef,
    prescribed: ProductRef,
    handed: tuple[ProductRef, ...],
    substitute: SubstituteCheck | None,
) -> bool:
    """A pharmacy that recorded the prescribed pack itself (the LGO named no substitute) may
    bill a pack the catalogue allows for it: a generic of the same group, usually cheaper. One
    that recorded a substitute bills that substitute, not another."""
    if substitute is None or prescribed.system != "CIP13" or not handed:
        return False
    if not all(same_product(h, prescribed) for h in handed):
        return False
    return substitute(billed, prescribed)


def _quantity_problems(
    invoice: Invoice, billed: Mapping[int, LineBilled], facts: Facts
) -> list[str]:
    """A line bills more than that pharmacy handed over of it: in units where the catalogue
    states the units of every pack billed and handed over (three boxes of 90 billed for three
    boxes of 30 handed over are 270 units for 90), else in packs."""
    problems = []
    for no, line in billed.items():
        given_units = facts.units_given(no)
        billed_units = facts.units(
            (x.quantity, x.product) for x in invoice.lines if x.line_no == no
        )
        if given_units is not None and billed_units is not None:
            if billed_units > given_units:
                problems.append(
                    f"line {no}: {billed_text(line)}, {billed_units} units; pharmacy "
                    f"{invoice.finess} dispensed {facts.given.get(no, 0)}, {given_units} units"
                )
        elif line.quantity > facts.given.get(no, 0):
            problems.append(
                f"line {no}: {billed_text(line)}, pharmacy {invoice.finess} dispensed "
                f"{facts.given.get(no, 0)}"
            )
    return problems


def _over_billing(invoice: Invoice, billed: Mapping[int, LineBilled], facts: Facts) -> list[str]:
    """With this pharmacy's invoices already paid, a line bills more than it handed over: in
    units where the catalogue states the units of the packs handed over, billed and paid (paid
    lines stored without their units count packs), else in packs."""
    if not facts.paid:
        return []
    problems = []  # every billed line is in `given`: quantity_mismatch was decided first
    for no, line in billed.items():
        if no not in facts.paid:
            continue
        already = f"{facts.paid[no]} ({invoices(facts.paid_in[no])})"
        given_units = facts.units_given(no)
        billed_units = facts.units(
            (x.quantity, x.product) for x in invoice.lines if x.line_no == no
        )
        paid_units = facts.paid_units.get(no)
        if given_units is not None and billed_units is not None and paid_units is not None:
            if paid_units + billed_units > given_units:
                problems.append(
                    f"line {no}: {billed_text(line)}, {billed_units} units; pharmacy "
                    f"{invoice.finess} dispensed {facts.given[no]}, {given_units} units, "
                    f"and was already paid for {already}, {paid_units} units"
                )
        elif facts.paid[no] + line.quantity > facts.given[no]:
            problems.append(
                f"line {no}: {billed_text(line)}, pharmacy {invoice.finess} dispensed "
                f"{facts.given[no]} and was already paid for {already}"
            )
    return problems
