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
    over_billed           with the invoices of that pharmacy already `matched` for the
                          prescription (in this batch or an earlier one), a line bills more
                          than it dispensed: the insurer would pay the same packs twice
    amount_mismatch       the pharmacy recorded billing under this invoice number (the billing
                          endpoint) and the invoice's quantities or amounts differ from it
    matched               everything billed was dispensed, by that pharmacy, as billed

An invoice counts as reconciled (and its number as used) once it got an outcome from
`no_dispensation` on: `invalid` and `unknown_prescription` never name a real invoice, so the
pharmacy may send it again, corrected, under the same number. Only `matched` invoices count
as paid: they are what later invoices of the same packs are `over_billed` against, in the
order the invoices arrive. Withdrawn dispensings count nowhere.

Everything here is pure: the adapters look the prescriptions up and record the results.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Literal, get_args

import msgspec

from domain.catalogue import PackLookup, substitute_allowed
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
    "over_billed",
    "amount_mismatch",
    "matched",
]
# Every outcome, in the contract's order: the order the checks apply in.
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
# The outcomes from `no_dispensation` on name a real invoice: its number is used.
RECONCILED: frozenset[Outcome] = frozenset(OUTCOMES[OUTCOMES.index("no_dispensation") :])
MAX_INVOICE_LINES = 200

InvoiceKey = tuple[str, str]  # (pharmacy FINESS, invoice number): an invoice number is per pharmacy
# (billed, prescribed) -> whether the billed pack may stand for the prescribed one.
SubstituteCheck = Callable[["ProductRef", "ProductRef"], bool]


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


# A prescription's invoices already reconciled as `matched` (paid), by (FINESS, number): the
# lines each paid, flat (line_no, quantity, amount_cents, line_no, …). Flat ints, not Structs:
# three quarters of the invoices of a batch are matched, and each is handed on as paid.
PaidLines = tuple[int, ...]
PaidInvoices = Mapping[InvoiceKey, PaidLines]
NOTHING_PAID: PaidInvoices = {}


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
    recorded: Recorded | None = None  # the billing recorded under the invoice's number
    # May a billed pack stand for the prescribed one (the medicines catalogue: same medicine
    # or generic group)? None: no catalogue, only the packs recorded count.
    substitute: SubstituteCheck | None = None


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
            else:
                given[no] = line.quantity
                handed[no] = (line.product,)
    paid_packs, paid_in = _paid_by(paid, finess) if paid else ({}, {})
    return Facts(
        prescribed={line.prescribed.line_no: line.prescribed.product for line in record.lines},
        given=given,
        handed=handed,
        other_pharmacies=tuple(dict.fromkeys(others)) if others else (),
        paid=paid_packs,
        paid_in=paid_in,
        recorded=recorded,
        substitute=substitute,
    )


def _paid_by(paid: PaidInvoices, finess: str) -> tuple[dict[int, int], dict[int, tuple[str, ...]]]:
    packs: dict[int, int] = {}
    invoices: dict[int, tuple[str, ...]] = {}
    for (payee, number), lines in paid.items():
        if payee != finess:
            continue  # another pharmacy's invoices pay for its own packs
        for at in range(0, len(lines), 3):
            line_no, quantity = lines[at], lines[at + 1]
            packs[line_no] = packs.get(line_no, 0) + quantity
            invoices[line_no] = (*invoices.get(line_no, ()), number)
    return packs, invoices


def reconcile(
    invoice: Invoice,
    record: PrescriptionRecord | None,
    previous: Previous | None,
    paid: PaidInvoices = NOTHING_PAID,
    substitute: SubstituteCheck | None = None,
) -> Verdict:
    """The outcome of an invoice whose prescription is `record` (None: no such prescription),
    given the prescription's invoices already paid."""
    if record is None:
        return decide(invoice, None, previous)
    facts = facts_of(record, invoice.finess, paid, invoice.invoice_number, substitute)
    return decide(invoice, facts, previous)


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
    if facts.recorded is not None and (problem := _amount_problem(invoice, billed, facts)):
        return Verdict("amount_mismatch", problem)
    return Verdict("matched", _matched_detail(invoice, facts))


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


def _quantity_problems(
    invoice: Invoice, billed: Mapping[int, LineBilled], facts: Facts
) -> list[str]:
    return [
        f"line {no}: {_billed_text(line)}, pharmacy {invoice.finess} dispensed "
        f"{facts.given.get(no, 0)}"
        for no, line in billed.items()
        if line.quantity > facts.given.get(no, 0)
    ]


def _over_billing(invoice: Invoice, billed: Mapping[int, LineBilled], facts: Facts) -> list[str]:
    if not facts.paid:
        return []
    return [
        f"line {no}: {_billed_text(line)}, pharmacy {invoice.finess} dispensed "
        f"{facts.given.get(no, 0)} and was already paid for {facts.paid[no]} "
        f"({_invoices(facts.paid_in[no])})"
        for no, line in billed.items()
        if no in facts.paid and facts.paid[no] + line.quantity > facts.given.get(no, 0)
    ]


def _amount_problem(invoice: Invoice, billed: Mapping[int, LineBilled], facts: Facts) -> str:
    """How the invoice differs from the billing recorded under its number ("" if it does not)."""
    recorded = facts.recorded
    assert recorded is not None
    expected = {line.line_no: (line.quantity, line.amount_cents) for line in recorded.lines}
    if expected == {no: (line.quantity, line.amount_cents) for no, line in billed.items()}:
        return ""
    shown = "; ".join(f"line {no}: {q} packs, {a} cents" for no, (q, a) in sorted(expected.items()))
    return (
        f"invoice {invoice.invoice_number} bills "
        + "; ".join(
            f"line {no}: {line.quantity} packs, {line.amount_cents} cents"
            for no, line in sorted(billed.items())
        )
        + f"; pharmacy {invoice.finess} recorded under this number (dispensation "
        f"{recorded.dispensation_id}): {shown or 'no line'}"
    )


def _billed_text(line: LineBilled) -> str:
    products = ", ".join(describe(p) for p in line.products)
    return f"billed {line.quantity} of {products} ({line.amount_cents} cents)"


def _invoices(numbers: tuple[str, ...]) -> str:
    return ("invoice " if len(numbers) == 1 else "invoices ") + ", ".join(numbers)


def _matched_detail(invoice: Invoice, facts: Facts) -> str:
    lines = "; ".join(
        f"line {line.line_no}: billed {line.quantity} of {describe(line.product)} "
        f"({line.amount_cents} cents), dispensed {facts.given.get(line.line_no, 0)}"
        + (
            f", already paid {facts.paid[line.line_no]} ({_invoices(facts.paid_in[line.line_no])})"
            if line.line_no in facts.paid
            else ""
        )
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
    paid: Mapping[str, PaidInvoices] | None = None,
    *,
    substitute: SubstituteCheck | None = None,
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
        verdict = reconcile(invoice, record, earlier, already, substitute)
        if verdict.outcome in RECONCILED:
            seen[key] = Previous(batch_id, entry.line, verdict.outcome)
            if verdict.outcome == "matched" and number is not None:
                paid_now.setdefault(number, {})[key] = paid_lines(invoice)
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


def paid_lines(invoice: Invoice) -> PaidLines:
    """What a matched invoice pays, line by line (flat)."""
    lines = invoice.lines
    if len(lines) == 1:
        line = lines[0]
        return (line.line_no, line.quantity, line.amount_cents)
    return tuple(v for line in lines for v in (line.line_no, line.quantity, line.amount_cents))


def catalogue_substitutes(packs: Callable[[], PackLookup | None]) -> SubstituteCheck:
    """The catalogue's answer to "may this billed pack stand for the prescribed one?": both
    packs known, and the billed one the same medicine or in the same generic group."""

    def may_stand_for(billed: ProductRef, prescribed: ProductRef) -> bool:
        lookup = packs()
        if lookup is None or billed.system != "CIP13" or not billed.code or not prescribed.code:
            return False
        handed, written = lookup.facts(billed.code), lookup.facts(prescribed.code)
        return (
            handed is not None and written is not None and substitute_allowed(written, None, handed)
        )

    return may_stand_for
