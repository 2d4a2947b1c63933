"""Assurance Maladie reconciliation: an invoice checked against what the log says happened.

The insurer sends every invoice a pharmacy transmitted; each one gets exactly one outcome, the
first that applies in the contract's order:

    invalid               the line is not an invoice (bad JSON, missing fields, wrong types,
                          a FINESS or CIP13 whose check key fails, no lines, a quantity < 1)
    unknown_prescription  no prescription has that number (a wrong check character included)
    duplicate_invoice     this pharmacy's invoice number was already reconciled, in this batch
                          or an earlier one
    no_dispensation       the invoice's pharmacy dispensed nothing of the prescription
    product_mismatch      a billed product is neither the prescribed one nor a substitute that
                          pharmacy recorded when dispensing that line
    quantity_mismatch     a line bills more than that pharmacy dispensed of it
    matched               everything billed was dispensed, by that pharmacy, as billed

An invoice counts as reconciled (and its number as used) once it got an outcome from
`no_dispensation` on: `invalid` and `unknown_prescription` never name a real invoice, so the
pharmacy may send it again, corrected, under the same number.

Everything here is pure: the adapters look the prescriptions up and record the results.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Literal

import msgspec

from domain.events import ProductSystem
from domain.identifiers import Cip13, Finess, InvalidIdentifier, PrescriptionNumber
from domain.prescription import Prescription

Outcome = Literal[
    "invalid",
    "unknown_prescription",
    "duplicate_invoice",
    "no_dispensation",
    "product_mismatch",
    "quantity_mismatch",
    "matched",
]
OUTCOMES: tuple[Outcome, ...] = (
    "invalid",
    "unknown_prescription",
    "duplicate_invoice",
    "no_dispensation",
    "product_mismatch",
    "quantity_mismatch",
    "matched",
)
RECONCILED: frozenset[Outcome] = frozenset(
    {"no_dispensation", "product_mismatch", "quantity_mismatch", "matched"}
)
MAX_INVOICE_LINES = 200

InvoiceKey = tuple[str, str]  # (pharmacy FINESS, invoice number): an invoice number is per pharmacy


# The structs below hold no references back to themselves, so they are left out of the cyclic
# garbage collector (`gc=False`): a chunk keeps tens of thousands of them alive at once, and
# tracking them made the collector cost more than the reconciliation itself.


class ProductRef(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """A product as billed or as recorded in the log (`domain.events.Product`'s fields)."""

    system: ProductSystem
    code: str | None = None
    label: str


class InvoiceLine(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    line_no: Annotated[int, msgspec.Meta(ge=1)]
    product: ProductRef
    quantity: Annotated[int, msgspec.Meta(ge=1)]
    amount_cents: Annotated[int, msgspec.Meta(ge=0)]


class Invoice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, gc=False):
    """One invoice (facture) a pharmacy transmitted, as the insurer sends it: one NDJSON line."""

    invoice_number: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    finess: str
    prescription_id: Annotated[str, msgspec.Meta(max_length=64)]
    lines: Annotated[
        tuple[InvoiceLine, ...], msgspec.Meta(min_length=1, max_length=MAX_INVOICE_LINES)
    ]

    @property
    def key(self) -> InvoiceKey:
        return (self.finess, self.invoice_number)


# What reconciliation needs of a prescription's folded state (`domain.prescription`): the
# field names are the state's, so these decode straight from the stored state, skipping the
# rest of it (see `record_of`).


class PrescribedRef(msgspec.Struct, frozen=True, gc=False):
    line_no: int
    product: ProductRef


class LineRef(msgspec.Struct, frozen=True, gc=False):
    prescribed: PrescribedRef


class HandedOver(msgspec.Struct, frozen=True, gc=False):
    line_no: int
    quantity: int
    product: ProductRef


class DispensationRef(msgspec.Struct, frozen=True, gc=False):
    finess: str
    lines: tuple[HandedOver, ...]
    withdrawn_at: datetime | None = None


class PrescriptionRecord(msgspec.Struct, frozen=True, gc=False):
    """A prescription as the log says it was written and dispensed."""

    prescription_id: str
    lines: tuple[LineRef, ...]
    dispensations: tuple[DispensationRef, ...] = ()


def record_of(state: Prescription) -> PrescriptionRecord:
    return msgspec.convert(msgspec.to_builtins(state), PrescriptionRecord)


class Verdict(msgspec.Struct, frozen=True, gc=False):
    outcome: Outcome
    detail: str


class Previous(msgspec.Struct, frozen=True, gc=False):
    """Where an invoice number was first reconciled: its batch, its line there, its outcome."""

    batch_id: str
    line: int
    outcome: Outcome


class Facts(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the log says about one prescription, seen from the invoice's pharmacy."""

    prescribed: Mapping[int, ProductRef]  # line_no -> the product the prescriber wrote
    given: Mapping[int, int]  # line_no -> how much this pharmacy handed over, in all
    handed: Mapping[int, tuple[ProductRef, ...]]  # line_no -> the products it handed over
    other_pharmacies: tuple[str, ...] = ()  # who else dispensed some of it


# --- is the line an invoice at all ------------------------------------------------------------


def invalid_reason(invoice: Invoice) -> str | None:
    """What makes a well-typed invoice invalid (check keys, empty labels), or None."""
    if invoice.invoice_number.isspace():
        return "invoice_number: must not be blank"
    if (problem := _finess_problem(invoice.finess)) is not None:
        return f"finess: {problem}"
    for index, line in enumerate(invoice.lines):
        product = line.product
        if product.code in _VALID_CIP13 and product.system == "CIP13" and product.label.strip():
            continue  # the usual case, without hashing the product
        if (problem := product_problem(product)) is not None:
            return f"lines[{index}].product: {problem}"
    return None


@lru_cache(maxsize=65536)  # about 20,000 pharmacies: each is checked once
def _finess_problem(text: str) -> str | None:
    try:
        Finess(text)
    except InvalidIdentifier as error:
        return str(error)
    return None


@lru_cache(maxsize=65536)  # billed products repeat: each is checked once
def product_problem(product: ProductRef) -> str | None:
    """The same rule as when prescribing: a pack (CIP13 with its key), a unit (UCD7/UCD13) or a
    substance name (DCI, no code); every product has a label."""
    if not product.label.strip():
        return "a product needs a label"
    if product.system == "DCI":
        return "a DCI product has no code" if product.code is not None else None
    if product.code is None:
        return f"a {product.system} product needs a code"
    if product.system == "CIP13":
        return _cip13_problem(product.code)
    code = product.code
    return None if code.isascii() and code.isdigit() and len(code) in (7, 13) else "bad UCD code"


def _cip13_problem(code: str) -> str | None:
    try:
        Cip13(code)
    except InvalidIdentifier as error:
        return str(error)
    if len(_VALID_CIP13) < 100_000:  # bounded: about 15,000 packs are reimbursed
        _VALID_CIP13.add(code)
    return None


_VALID_CIP13: set[str | None] = set()


def canonical_number(text: str) -> str | None:
    """The prescription number as stored, or None when the text cannot be one.

    Only the form is normalised here (any case, spaces, dashes, the look-alikes I, L and O):
    a number with a wrong check character normalises to a text no prescription has, so it is
    looked up and not found, which is what the contract asks (`unknown_prescription`)."""
    if len(text) == _NUMBER_LENGTH:  # the usual case: as stored, maybe in lower case
        upper = text.upper()
        if "I" not in upper and "L" not in upper and "O" not in upper:
            return upper
    compact = text.translate(_NUMBER_FORM)
    if len(compact) == _NUMBER_LENGTH:
        return compact
    try:  # an unusual form (other Unicode spaces): the domain's own, slower parser
        return PrescriptionNumber.parse(text).value
    except InvalidIdentifier:
        return None


_NUMBER_LENGTH = 20
_NUMBER_FORM = str.maketrans(
    {
        **{c: c.upper() for c in string.ascii_lowercase},
        **dict.fromkeys("iIlL", "1"),
        **dict.fromkeys("oO", "0"),
        **dict.fromkeys("- \t\u00a0\u202f", None),
    }
)


# --- the checks, in the contract's order ------------------------------------------------------


def facts_of(record: PrescriptionRecord, finess: str) -> Facts:
    given: dict[int, int] = {}
    handed: dict[int, tuple[ProductRef, ...]] = {}
    others: list[str] = []
    for dispensation in record.dispensations:
        if dispensation.withdrawn_at is not None:
            continue  # a dispensing withdrawn as recorded in error counts nowhere
        if dispensation.finess != finess:
            others.append(dispensation.finess)
            continue
        for line in dispensation.lines:
            no = line.line_no
            if no in given:
                given[no] += line.quantity
                handed[no] += (line.product,)
            else:
                given[no] = line.quantity
                handed[no] = (line.product,)
    return Facts(
        prescribed={line.prescribed.line_no: line.prescribed.product for line in record.lines},
        given=given,
        handed=handed,
        other_pharmacies=tuple(dict.fromkeys(others)) if others else (),
    )


def reconcile(
    invoice: Invoice, record: PrescriptionRecord | None, previous: Previous | None
) -> Verdict:
    """The outcome of an invoice whose prescription is `record` (None: no such prescription)."""
    return decide(invoice, None if record is None else facts_of(record, invoice.finess), previous)


def decide(invoice: Invoice, facts: Facts | None, previous: Previous | None) -> Verdict:
    """Given the invoice, the prescription's facts (None: unknown) and where its number was
    already reconciled (None: never), the outcome and a detail a person can act on."""
    if facts is None:
        return Verdict("unknown_prescription", _unknown_detail(invoice.prescription_id))
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
            f"{_shown(invoice.prescription_id)} (dispensed by: {others})",
        )
    if problems := _product_problems(invoice, facts):
        return Verdict("product_mismatch", "; ".join(problems))
    if problems := _quantity_problems(invoice, facts):
        return Verdict("quantity_mismatch", "; ".join(problems))
    return Verdict("matched", _matched_detail(invoice))


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
        if same_product(billed, prescribed) or any(same_product(billed, h) for h in handed):
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


def _quantity_problems(invoice: Invoice, facts: Facts) -> list[str]:
    lines = invoice.lines
    if len(lines) == 1:  # most invoices: no line to add up
        line = lines[0]
        given = facts.given.get(line.line_no, 0)
        if line.quantity <= given:
            return []
        return [_too_many(invoice, line.line_no, line.quantity, [line.product], given)]
    billed: dict[int, int] = {}
    products: dict[int, dict[tuple[str, str], ProductRef]] = {}
    for line in lines:
        billed[line.line_no] = billed.get(line.line_no, 0) + line.quantity
        products.setdefault(line.line_no, {})[product_key(line.product)] = line.product
    return [
        _too_many(invoice, no, quantity, products[no].values(), facts.given.get(no, 0))
        for no, quantity in billed.items()
        if quantity > facts.given.get(no, 0)
    ]


def _too_many(
    invoice: Invoice, line_no: int, quantity: int, products: Iterable[ProductRef], given: int
) -> str:
    return (
        f"line {line_no}: billed {quantity} of {', '.join(describe(p) for p in products)}, "
        f"pharmacy {invoice.finess} dispensed {given}"
    )


def _matched_detail(invoice: Invoice) -> str:
    if len(invoice.lines) == 1:  # most invoices: one f-string
        line = invoice.lines[0]
        return (
            f"billed as dispensed by pharmacy {invoice.finess} "
            f"(line {line.line_no}: {line.quantity} of {describe(line.product)})"
        )
    lines = ", ".join(
        f"line {line.line_no}: {line.quantity} of {describe(line.product)}"
        for line in invoice.lines
    )
    return f"billed as dispensed by pharmacy {invoice.finess} ({lines})"


def _unknown_detail(text: str) -> str:
    try:
        number = PrescriptionNumber.parse(text)
    except InvalidIdentifier as error:
        return f"no prescription has the number {text!r}: {error}"
    return f"no prescription has the number {number.display()}"


def _shown(text: str) -> str:
    try:
        return PrescriptionNumber.parse(text).display()
    except InvalidIdentifier:
        return text


def same_product(billed: ProductRef, recorded: ProductRef) -> bool:
    """Products are the same by code; substance names (DCI) by their label, in any case."""
    if billed.code is not None or recorded.code is not None:
        return billed.code == recorded.code and billed.system == recorded.system
    return product_key(billed) == product_key(recorded)


def product_key(product: ProductRef) -> tuple[str, str]:
    return (product.system, product.code or product.label.strip().casefold())


def describe(product: ProductRef) -> str:
    return f"{product.system} {product.code}" if product.code else f"DCI {product.label!r}"


# --- a chunk of invoices, with the duplicates inside it ---------------------------------------


class Entry(msgspec.Struct, frozen=True, gc=False):
    """An invoice of a batch: its line in the file, and its prescription's canonical number."""

    line: int
    invoice: Invoice
    number: str | None

    @classmethod
    def of(cls, line: int, invoice: Invoice) -> Entry:
        return cls(line, invoice, canonical_number(invoice.prescription_id))


def reconcile_chunk(
    batch_id: str,
    entries: Iterable[Entry],
    records: Mapping[str, PrescriptionRecord],
    previous: Mapping[InvoiceKey, Previous],
) -> list[Verdict]:
    """The verdict of each entry, in order. `records` holds the prescriptions found, by
    canonical number; `previous` the invoices reconciled before this chunk. Within the chunk,
    the first invoice reconciled under a number keeps it, and a later one with the same number
    is a `duplicate_invoice` of it."""
    verdicts = []
    seen: dict[InvoiceKey, Previous] = {}
    for entry in entries:
        invoice = entry.invoice
        record = None if entry.number is None else records.get(entry.number)
        key = invoice.key
        verdict = reconcile(invoice, record, previous.get(key) or seen.get(key))
        if verdict.outcome in RECONCILED:
            seen[key] = Previous(batch_id, entry.line, verdict.outcome)
        verdicts.append(verdict)
    return verdicts
