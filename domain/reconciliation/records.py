"""The facts an invoice is checked against: what a prescription's state says was written,
dispensed by each pharmacy, billed, and already paid."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Protocol

import msgspec

from domain.catalogue import PackLookup, substitute_allowed
from domain.prescription import Prescription
from domain.reconciliation.invoices import InvoiceKey, ProductRef


class SubstituteCheck(Protocol):
    """What reconciliation asks the medicines catalogue: whether a billed pack may stand for
    the prescribed one, and the units a pack holds (None when it does not say)."""

    def __call__(self, billed: ProductRef, prescribed: ProductRef, /) -> bool: ...

    def units(self, product: ProductRef, /) -> int | None: ...


# What reconciliation needs of a prescription's folded state (`domain.prescription`): the
# field names are the state's, so these decode straight from the stored state, skipping the
# rest of it (see `record_of`). Left out of the cyclic garbage collector, as the invoices are
# (`domain.reconciliation.invoices`).


class MentionRef(msgspec.Struct, frozen=True, gc=False):
    reason: str


class PrescribedRef(msgspec.Struct, frozen=True, gc=False):
    line_no: int
    product: ProductRef
    non_substitutable: MentionRef | None = None


class LineRef(msgspec.Struct, frozen=True, gc=False):
    prescribed: PrescribedRef


class HandedOver(msgspec.Struct, frozen=True, gc=False):
    line_no: int
    quantity: int
    product: ProductRef


class Billed(msgspec.Struct, frozen=True, gc=False):
    """One line of a billing: as the pharmacy recorded it, or as an invoice already paid."""

    line_no: int
    quantity: int
    amount_cents: int


class DispensationRef(msgspec.Struct, frozen=True, gc=False):
    finess: str
    lines: tuple[HandedOver, ...]
    dispensation_id: str = ""
    invoice_number: str | None = None
    billed_lines: tuple[Billed, ...] = ()
    withdrawn_at: datetime | None = None
    procedure: str | None = None  # the pharmacist's own procedure it was given under


class PrescriptionRecord(msgspec.Struct, frozen=True, gc=False):
    """A prescription as the log says it was written and dispensed."""

    prescription_id: str
    lines: tuple[LineRef, ...]
    dispensations: tuple[DispensationRef, ...] = ()


def record_of(state: Prescription) -> PrescriptionRecord:
    return msgspec.convert(msgspec.to_builtins(state), PrescriptionRecord)


# A prescription's invoices already reconciled as `matched` (paid), by (FINESS, number): the
# lines each paid, flat (line_no, quantity, amount_cents, units, line_no, …), units being
# UNITS_UNKNOWN where the catalogue did not state them. Flat ints, not Structs: three quarters
# of the invoices of a batch are matched, and each is handed on as paid.
PaidLines = tuple[int, ...]
PaidInvoices = Mapping[InvoiceKey, PaidLines]
NOTHING_PAID: PaidInvoices = {}
PAID_FIELDS = 4  # line_no, quantity, amount_cents, units
UNITS_UNKNOWN = -1


class Recorded(msgspec.Struct, frozen=True, gc=False):
    """The billing a pharmacy recorded through the API under the invoice's number."""

    dispensation_id: str
    lines: tuple[Billed, ...]


class Facts(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the log says about one prescription, seen from the invoice's pharmacy."""

    prescribed: Mapping[int, ProductRef]  # line_no -> the product the prescriber wrote
    given: Mapping[int, int]  # line_no -> how much this pharmacy handed over, in all
    handed: Mapping[int, tuple[ProductRef, ...]]  # line_no -> the products it handed over
    other_pharmacies: tuple[str, ...] = ()  # who else dispensed some of it
    # line_no -> the packs of this pharmacy's invoices already paid, and those invoices
    paid: Mapping[int, int] = msgspec.field(default_factory=dict)
    paid_in: Mapping[int, tuple[str, ...]] = msgspec.field(default_factory=dict)
    # line_no -> the units those invoices paid, where every one of them states its units
    paid_units: Mapping[int, int] = msgspec.field(default_factory=dict)
    recorded: Recorded | None = None  # the billing recorded under the invoice's number
    # May a billed pack stand for the prescribed one (the medicines catalogue: same medicine
    # or generic group)? None: no catalogue, only the packs recorded count.
    substitute: SubstituteCheck | None = None
    # line_no -> the reason of the prescriber's "non substituable" (MTE, EFG, CIF): on such a
    # line no generic stands for the prescribed pack.
    non_substitutable: Mapping[int, str] = msgspec.field(default_factory=dict)
    # line_no -> (quantity, product) of each pack this pharmacy handed over, for units
    handed_quantities: Mapping[int, tuple[tuple[int, ProductRef], ...]] = msgspec.field(
        default_factory=dict
    )
    # line_no -> procedure -> how much of `given` this pharmacy gave under that procedure
    by_procedure: Mapping[int, Mapping[str, int]] = msgspec.field(default_factory=dict)

    def units(self, quantities: Iterable[tuple[int, ProductRef]]) -> int | None:
        """The units of these packs (quantity, product), None unless the catalogue states
        the units of every one of them."""
        if self.substitute is None:
            return None
        total = 0
        for quantity, product in quantities:
            size = self.substitute.units(product)
            if size is None:
                return None
            total += quantity * size
        return total

    def units_given(self, line_no: int) -> int | None:
        """The units this pharmacy handed over of the line (None: not all known)."""
        return self.units(self.handed_quantities.get(line_no, ()))


def facts_of(
    record: PrescriptionRecord,
    finess: str,
    paid: PaidInvoices = NOTHING_PAID,
    invoice_number: str | None = None,
    substitute: SubstituteCheck | None = None,
) -> Facts:
    """The facts an invoice of pharmacy `finess` is checked against: what it handed over, what
    of it was already paid (`paid`: the prescription's matched invoices), and the billing it
    recorded under `invoice_number`."""
    given: dict[int, int] = {}
    handed: dict[int, tuple[ProductRef, ...]] = {}
    handed_quantities: dict[int, tuple[tuple[int, ProductRef], ...]] = {}
    others: list[str] = []
    recorded = None
    for dispensation in record.dispensations:
        if dispensation.withdrawn_at is not None:
            continue  # a dispensing withdrawn as recorded in error counts nowhere
        if dispensation.finess != finess:
            others.append(dispensation.finess)
            continue
        if invoice_number is not None and dispensation.invoice_number == invoice_number:
            recorded = Recorded(dispensation.dispensation_id, dispensation.billed_lines)
        for line in dispensation.lines:
            no = line.line_no
            if no in given:
                given[no] += line.quantity
                handed[no] += (line.product,)
                handed_quantities[no] += ((line.quantity, line.product),)
            else:
                given[no] = line.quantity
                handed[no] = (line.product,)
                handed_quantities[no] = ((line.quantity, line.product),)
    paid_packs, paid_in, paid_units = _paid_by(paid, finess) if paid else ({}, {}, {})
    return Facts(
        prescribed={line.prescribed.line_no: line.prescribed.product for line in record.lines},
        given=given,
        handed=handed,
        other_pharmacies=tuple(dict.fromkeys(others)) if others else (),
        paid=paid_packs,
        paid_in=paid_in,
        paid_units=paid_units,
        recorded=recorded,
        substitute=substitute,
        non_substitutable={
            line.prescribed.line_no: line.prescribed.non_substitutable.reason
            for line in record.lines
            if line.prescribed.non_substitutable is not None
        },
        handed_quantities=handed_quantities,
        by_procedure=_by_procedure(record, finess),
    )


def _by_procedure(record: PrescriptionRecord, finess: str) -> dict[int, dict[str, int]]:
    """Per line, how much the standing dispensings of pharmacy `finess` gave under each of
    the pharmacist's own procedures."""
    given: dict[int, dict[str, int]] = {}
    for dispensation in record.dispensations:
        procedure = dispensation.procedure
        if procedure is None or dispensation.withdrawn_at is not None:
            continue
        if dispensation.finess != finess:
            continue
        for line in dispensation.lines:
            of_line = given.setdefault(line.line_no, {})
            of_line[procedure] = of_line.get(procedure, 0) + line.quantity
    return given


def _paid_by(
    paid: PaidInvoices, finess: str
) -> tuple[dict[int, int], dict[int, tuple[str, ...]], dict[int, int]]:
    """Per line, this pharmacy's packs paid, the invoices that paid them, and the units paid
    (left out where one of those invoices did not state its units)."""
    packs: dict[int, int] = {}
    invoices: dict[int, tuple[str, ...]] = {}
    units: dict[int, int | None] = {}
    for (payee, number), lines in paid.items():
        if payee != finess:
            continue  # another pharmacy's invoices pay for its own packs
        for at in range(0, len(lines), PAID_FIELDS):
            line_no, quantity, line_units = lines[at], lines[at + 1], lines[at + 3]
            packs[line_no] = packs.get(line_no, 0) + quantity
            invoices[line_no] = (*invoices.get(line_no, ()), number)
            so_far = units.get(line_no, 0)
            known = so_far is not None and line_units != UNITS_UNKNOWN
            units[line_no] = so_far + line_units if so_far is not None and known else None
    return packs, invoices, {no: n for no, n in units.items() if n is not None}


def catalogue_substitutes(packs: Callable[[], PackLookup | None]) -> SubstituteCheck:
    """The catalogue's answer to "may this billed pack stand for the prescribed one?": both
    packs known, and the billed one the same medicine or in the same generic group; and to
    "how many units does this pack hold?"."""
    return _CatalogueAnswers(packs)


class _CatalogueAnswers:
    def __init__(self, packs: Callable[[], PackLookup | None]) -> None:
        self._packs = packs

    def __call__(self, billed: ProductRef, prescribed: ProductRef, /) -> bool:
        lookup = self._packs()
        if lookup is None or billed.system != "CIP13" or not billed.code or not prescribed.code:
            return False
        handed, written = lookup.facts(billed.code), lookup.facts(prescribed.code)
        return (
            handed is not None and written is not None and substitute_allowed(written, None, handed)
        )

    def units(self, product: ProductRef, /) -> int | None:
        lookup = self._packs()
        if lookup is None or product.system != "CIP13" or not product.code:
            return None
        facts = lookup.facts(product.code)
        return None if facts is None else facts.units
