"""An invoice as the insurer sends it, and whether a line of its file is an invoice at all."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal, get_args

import msgspec

from domain.checks import canonical_number
from domain.checks import product_problem as shared_product_problem
from domain.events import ProductSystem
from domain.identifiers import Finess, InvalidIdentifier

Outcome = Literal[
    "invalid",
    "unknown_prescription",
    "receipt_invalid",
    "duplicate_invoice",
    "no_dispensation",
    "product_mismatch",
    "quantity_mismatch",
    "over_billed",
    "amount_mismatch",
    "matched",
]
# Every outcome, in the contract's order: the order the checks apply in.
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
# The outcomes from `no_dispensation` on name a real invoice: its number is used.
RECONCILED: frozenset[Outcome] = frozenset(OUTCOMES[OUTCOMES.index("no_dispensation") :])
MAX_INVOICE_LINES = 200
MAX_RECEIPT_LENGTH = 16_384

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
    # The dispensing's signed receipt (its `Ordo-Receipt`), when the pharmacy sent it.
    receipt: Annotated[str, msgspec.Meta(max_length=MAX_RECEIPT_LENGTH)] | None = None

    @property
    def key(self) -> InvoiceKey:
        return (self.finess, self.invoice_number)


class LineBilled(msgspec.Struct, gc=False):
    """What an invoice bills of one prescribed line, adding up its invoice lines."""

    quantity: int
    amount_cents: int
    products: tuple[ProductRef, ...]


def billed_per_line(invoice: Invoice) -> dict[int, LineBilled]:
    lines = invoice.lines
    if len(lines) == 1:  # most invoices: nothing to add up
        line = lines[0]
        return {line.line_no: LineBilled(line.quantity, line.amount_cents, (line.product,))}
    billed: dict[int, LineBilled] = {}
    for line in lines:
        so_far = billed.get(line.line_no)
        if so_far is None:
            billed[line.line_no] = LineBilled(line.quantity, line.amount_cents, (line.product,))
            continue
        so_far.quantity += line.quantity
        so_far.amount_cents += line.amount_cents
        if all(product_key(p) != product_key(line.product) for p in so_far.products):
            so_far.products += (line.product,)
    return billed


def same_product(billed: ProductRef, recorded: ProductRef) -> bool:
    """Products are the same by code; substance names (DCI) by their label, in any case."""
    if billed.code is not None or recorded.code is not None:
        return billed.code == recorded.code and billed.system == recorded.system
    return product_key(billed) == product_key(recorded)


def product_key(product: ProductRef) -> tuple[str, str]:
    return (product.system, product.code or product.label.strip().casefold())


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
    """The same rule as when prescribing (`domain.checks.product_problem`), in few words."""
    problem = shared_product_problem(product.system, product.code, product.label)
    if problem is not None:
        return problem.brief
    _remember_valid(product)
    return None


def _remember_valid(product: ProductRef) -> None:
    """A valid CIP13 is remembered for `invalid_reason`'s fast path."""
    if product.system == "CIP13" and len(_VALID_CIP13) < 100_000:  # about 15,000 reimbursed
        _VALID_CIP13.add(product.code)


_VALID_CIP13: set[str | None] = set()


class Entry(msgspec.Struct, frozen=True, gc=False):
    """An invoice of a batch: its line in the file, and its prescription's canonical number."""

    line: int
    invoice: Invoice
    number: str | None

    @classmethod
    def of(cls, line: int, invoice: Invoice) -> Entry:
        return cls(line, invoice, canonical_number(invoice.prescription_id))
