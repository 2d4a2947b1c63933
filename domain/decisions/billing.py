"""Billing a dispensing (second step of exécution en 2 temps): the invoice's number and lines,
attached to one dispensation of the pharmacy that dispensed it."""

from __future__ import annotations

import msgspec

from domain.calendar import Moment
from domain.checks import (
    MAX_PACKS_PER_LINE,
    check_line_count,
    check_range,
    check_unique_line_numbers,
)
from domain.errors import DomainError, invalid
from domain.events import BilledLine, BillingRecorded
from domain.identifiers import Finess, Rpps
from domain.prescription import Dispensation, Prescription

# Per line of an invoice: a pack costs at most a few thousand euros; 100,000 EUR per line is far
# beyond any real invoice, and keeps every sum of a batch's amounts an exact 64-bit integer.
MAX_AMOUNT_CENTS = 10_000_000


class Bill(msgspec.Struct, frozen=True, kw_only=True):
    pharmacy: Finess
    pharmacist: Rpps
    dispensation_id: str
    invoice_number: str
    lines: tuple[BilledLine, ...]


def bill(
    state: Prescription, command: Bill, now: Moment, *, invoice_number_used: bool = False
) -> BillingRecorded:
    """Attach billing data to one dispensation (second step of exécution en 2 temps).

    `invoice_number_used`: the pharmacy already used this invoice number, on any prescription
    (the adapter knows it from the invoice number's claim; the state only knows its own).
    """
    dispensation = _billable(state, command)
    _check_bill_request(command)
    if dispensation.withdrawn:
        raise DomainError(
            "dispensation_withdrawn", "this dispensation was withdrawn: there is nothing to bill"
        )
    if dispensation.billed:
        raise DomainError("already_billed", "this dispensation was already billed")
    if invoice_number_used or _invoice_number_in(state, command):
        raise DomainError(
            "invoice_number_used",
            f"pharmacy {command.pharmacy.value} already used invoice number "
            f"{command.invoice_number!r}",
            field="invoice_number",
        )
    for line in command.lines:
        given = dispensation.quantity_of(line.line_no)
        if line.quantity > given:
            raise DomainError(
                "billing_exceeds_dispensed",
                f"line {line.line_no}: {line.quantity} billed but {given} dispensed",
            )
    return BillingRecorded(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        dispensation_id=command.dispensation_id,
        finess=command.pharmacy.value,
        pharmacist_rpps=command.pharmacist.value,
        invoice_number=command.invoice_number,
        lines=command.lines,
    )


def _billable(state: Prescription, command: Bill) -> Dispensation:
    dispensation = state.dispensation(command.dispensation_id)
    if dispensation is None:
        raise DomainError("not_found", "no such dispensation on this prescription")
    if dispensation.finess != command.pharmacy.value:
        raise DomainError("forbidden", "only the pharmacy that dispensed may bill it")
    return dispensation


def _check_bill_request(command: Bill) -> None:
    if not command.invoice_number.strip():
        raise invalid("an invoice number is needed", "invoice_number")
    check_line_count(command.lines, "lines")
    check_unique_line_numbers(line.line_no for line in command.lines)
    for index, line in enumerate(command.lines):
        check_range(line.quantity, 1, MAX_PACKS_PER_LINE, f"lines[{index}].quantity")
        check_range(line.amount_cents, 0, MAX_AMOUNT_CENTS, f"lines[{index}].amount_cents")


def _invoice_number_in(state: Prescription, command: Bill) -> bool:
    return any(
        d.finess == command.pharmacy.value and d.invoice_number == command.invoice_number
        for d in state.dispensations
    )
