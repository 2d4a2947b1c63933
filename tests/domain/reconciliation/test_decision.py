"""Reconciliation rules: given the log, when an invoice is checked, then its outcome and detail.

The outcomes are checked in the contract's order (unknown_prescription, duplicate_invoice,
no_dispensation, product_mismatch, quantity_mismatch, matched); each rule has its own test,
and the order between neighbours is pinned by an invoice that breaks both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from domain.checks import canonical_number
from domain.events import DispensationRecorded, DispensedLine, Event, Product
from domain.identifiers import Cip13, Finess, PrescriptionNumber
from domain.reconciliation import invoices
from domain.reconciliation.chunk import reconcile_chunk
from domain.reconciliation.decision import Previous, reconcile
from domain.reconciliation.invoices import Entry, Invoice, InvoiceLine, ProductRef, invalid_reason
from domain.reconciliation.records import PrescriptionRecord, record_of
from tests.domain.builders import (
    AMOXICILLINE,
    GENERIC,
    NUMBER,
    PARACETAMOL,
    PHARMACIST,
    PHARMACY_A,
    PHARMACY_B,
    dispensed,
    given,
    issued,
    moment,
)


def ref(product: Product) -> ProductRef:
    return ProductRef(system=product.system, code=product.code, label=product.label)


def invoice(
    *lines: tuple[int, int] | tuple[int, int, Product],
    finess: Finess = PHARMACY_A,
    number: str = "F-0001",
    prescription_id: str = NUMBER.value,
) -> Invoice:
    """Billed (line_no, quantity[, product]); the product is the prescribed one by default."""
    return Invoice(
        invoice_number=number,
        finess=finess.value,
        prescription_id=prescription_id,
        lines=tuple(
            InvoiceLine(
                line_no=line[0],
                product=ref(line[2] if len(line) == 3 else PARACETAMOL),
                quantity=line[1],
                amount_cents=250 * line[1],
            )
            for line in lines or ((1, 1),)
        ),
    )


def log(*events: Event) -> PrescriptionRecord:
    return record_of(given(*events))


def substituted(
    version: int, line_no: int, quantity: int, product: Product, finess: Finess = PHARMACY_A
) -> DispensationRecorded:
    return DispensationRecorded(
        prescription_id=NUMBER.value,
        version=version,
        at=moment().at,
        dispensation_id=f"s{version}",
        finess=finess.value,
        pharmacist_rpps=PHARMACIST.value,
        dispensed_at=moment().at,
        lines=(DispensedLine(line_no=line_no, quantity=quantity, product=product),),
    )


EARLIER = Previous("20261123-batch", 7, "matched")


# --- unknown_prescription ------------------------------------------------------------------------


def test_an_invoice_for_a_prescription_the_log_does_not_have_is_unknown_prescription() -> None:
    verdict = reconcile(invoice((1, 1)), None, None)

    assert verdict.outcome == "unknown_prescription"
    assert NUMBER.display() in verdict.detail


def test_a_number_with_a_wrong_check_character_is_unknown_not_another_prescription() -> None:
    typo = NUMBER.value[:-1] + ("0" if NUMBER.value[-1] != "0" else "1")
    records = {NUMBER.value: log(issued(3), dispensed(2, (1, 1)))}
    entry = Entry.of(1, invoice((1, 1), prescription_id=typo))

    (verdict,) = reconcile_chunk("b", [entry], records, {})

    assert verdict.outcome == "unknown_prescription"
    assert "check character does not match" in verdict.detail


def test_the_number_is_found_whatever_its_case_spaces_and_dashes() -> None:
    assert canonical_number(NUMBER.display().lower()) == NUMBER.value
    assert canonical_number(" ".join(NUMBER.display().split("-"))) == NUMBER.value
    assert canonical_number("too short") is None


def test_unknown_prescription_comes_before_duplicate_invoice() -> None:
    assert reconcile(invoice((1, 1)), None, EARLIER).outcome == "unknown_prescription"


# --- duplicate_invoice ---------------------------------------------------------------------------


def test_an_invoice_number_already_reconciled_is_duplicate_invoice_with_where() -> None:
    record = log(issued(3), dispensed(2, (1, 1)))

    verdict = reconcile(invoice((1, 1)), record, EARLIER)

    assert verdict.outcome == "duplicate_invoice"
    assert verdict.detail == (
        f"invoice F-0001 of pharmacy {PHARMACY_A.value} was already reconciled: "
        "batch 20261123-batch, line 7 (matched)"
    )


def test_duplicate_invoice_comes_before_no_dispensation() -> None:
    record = log(issued(3))

    assert reconcile(invoice((1, 1)), record, EARLIER).outcome == "duplicate_invoice"


def test_within_a_chunk_the_second_invoice_with_a_number_is_a_duplicate_of_the_first() -> None:
    records = {NUMBER.value: log(issued(3), dispensed(2, (1, 2)))}
    entries = [Entry.of(1, invoice((1, 1))), Entry.of(2, invoice((1, 1)))]

    first, second = reconcile_chunk("batch-1", entries, records, {})

    assert (first.outcome, second.outcome) == ("matched", "duplicate_invoice")
    assert "batch batch-1, line 1 (matched)" in second.detail


def test_the_same_number_at_another_pharmacy_is_another_invoice() -> None:
    records = {
        NUMBER.value: log(
            issued(3),
            dispensed(2, (1, 1)),
            dispensed(3, (1, 1), finess=PHARMACY_B, dispensation_id="d2"),
        )
    }
    entries = [Entry.of(1, invoice((1, 1))), Entry.of(2, invoice((1, 1), finess=PHARMACY_B))]

    verdicts = reconcile_chunk("b", entries, records, {})

    assert [v.outcome for v in verdicts] == ["matched", "matched"]


def test_an_invoice_that_named_no_prescription_does_not_use_up_its_number() -> None:
    records = {NUMBER.value: log(issued(3), dispensed(2, (1, 1)))}
    unknown = PrescriptionNumber.generate(lambda bits: 42).value
    entries = [
        Entry.of(1, invoice((1, 1), prescription_id=unknown)),
        Entry.of(2, invoice((1, 1))),  # corrected, same invoice number
    ]

    verdicts = reconcile_chunk("b", entries, records, {})

    assert [v.outcome for v in verdicts] == ["unknown_prescription", "matched"]


def test_numbers_reconciled_by_earlier_batches_are_duplicates() -> None:
    records = {NUMBER.value: log(issued(3), dispensed(2, (1, 1)))}
    previous = {(PHARMACY_A.value, "F-0001"): EARLIER}

    (verdict,) = reconcile_chunk("b", [Entry.of(3, invoice((1, 1)))], records, previous)

    assert verdict.outcome == "duplicate_invoice"


# --- no_dispensation -----------------------------------------------------------------------------


def test_an_invoice_from_a_pharmacy_that_dispensed_nothing_of_it_is_no_dispensation() -> None:
    record = log(issued(3), dispensed(2, (1, 1), finess=PHARMACY_B))

    verdict = reconcile(invoice((1, 1), finess=PHARMACY_A), record, None)

    assert verdict.outcome == "no_dispensation"
    assert verdict.detail == (
        f"pharmacy {PHARMACY_A.value} dispensed nothing of prescription {NUMBER.display()} "
        f"(dispensed by: {PHARMACY_B.value})"
    )


def test_a_prescription_never_dispensed_is_no_dispensation() -> None:
    verdict = reconcile(invoice((1, 1)), log(issued(3)), None)

    assert verdict.outcome == "no_dispensation"
    assert verdict.detail.endswith("(dispensed by: no pharmacy yet)")


def test_no_dispensation_comes_before_product_mismatch() -> None:
    record = log(issued(3))

    assert reconcile(invoice((1, 1, GENERIC)), record, None).outcome == "no_dispensation"


# --- product_mismatch ----------------------------------------------------------------------------


def test_billing_a_product_neither_prescribed_nor_substituted_is_product_mismatch() -> None:
    record = log(issued(3), dispensed(2, (1, 2)))

    verdict = reconcile(invoice((1, 1, GENERIC)), record, None)

    assert verdict.outcome == "product_mismatch"
    assert verdict.detail == (
        f"line 1: billed CIP13 {GENERIC.code}, prescribed CIP13 {PARACETAMOL.code}, "
        f"substitutes recorded by pharmacy {PHARMACY_A.value}: none"
    )


def test_billing_the_substitute_that_pharmacy_recorded_for_that_line_matches() -> None:
    record = log(issued(3), substituted(2, 1, 2, GENERIC))

    assert reconcile(invoice((1, 2, GENERIC)), record, None).outcome == "matched"


def test_a_substitute_recorded_by_another_pharmacy_does_not_count() -> None:
    record = log(issued(3), dispensed(2, (1, 1)), substituted(3, 1, 1, GENERIC, PHARMACY_B))

    verdict = reconcile(invoice((1, 1, GENERIC)), record, None)

    assert verdict.outcome == "product_mismatch"


def test_a_substitute_recorded_for_another_line_does_not_count() -> None:
    record = log(issued(3, 2), dispensed(2, (1, 1)), substituted(3, 2, 1, GENERIC))

    verdict = reconcile(invoice((1, 1, GENERIC)), record, None)

    assert verdict.outcome == "product_mismatch"
    assert verdict.detail.endswith(
        "substitutes recorded by pharmacy " + PHARMACY_A.value + ": none"
    )


def test_the_detail_lists_the_substitutes_the_pharmacy_recorded_for_the_line() -> None:
    record = log(issued(3), substituted(2, 1, 1, GENERIC))

    verdict = reconcile(invoice((1, 1, AMOXICILLINE)), record, None)

    assert verdict.detail.endswith(f": CIP13 {GENERIC.code}")


def test_billing_a_line_the_prescription_does_not_have_is_product_mismatch() -> None:
    record = log(issued(3), dispensed(2, (1, 1)))

    verdict = reconcile(invoice((1, 1), (3, 1)), record, None)

    assert verdict.outcome == "product_mismatch"
    assert verdict.detail == "line 3: the prescription has no line 3 (its lines: 1)"


def test_a_substance_name_is_compared_by_its_label_in_any_case() -> None:
    dci = Product(system="DCI", label="Paracétamol")
    event = issued(2)
    line = msgspec.structs.replace(event.lines[0], product=dci)
    record = log(msgspec.structs.replace(event, lines=(line,)), substituted(2, 1, 1, dci))

    billed = Product(system="DCI", label=" paracétamol ")
    assert reconcile(invoice((1, 1, billed)), record, None).outcome == "matched"


def test_product_mismatch_comes_before_quantity_mismatch() -> None:
    record = log(issued(3), dispensed(2, (1, 1)))

    assert reconcile(invoice((1, 3, GENERIC)), record, None).outcome == "product_mismatch"


# --- quantity_mismatch ---------------------------------------------------------------------------


def test_billing_more_than_the_pharmacy_dispensed_of_a_line_is_quantity_mismatch() -> None:
    record = log(issued(3), dispensed(2, (1, 2)))

    verdict = reconcile(invoice((1, 3)), record, None)

    assert verdict.outcome == "quantity_mismatch"
    assert verdict.detail == (
        f"line 1: billed 3 of CIP13 {PARACETAMOL.code} (750 cents), "
        f"pharmacy {PHARMACY_A.value} dispensed 2"
    )


def test_what_another_pharmacy_dispensed_does_not_count_for_this_one() -> None:
    record = log(
        issued(3),
        dispensed(2, (1, 1)),
        dispensed(3, (1, 2), finess=PHARMACY_B, dispensation_id="d2"),
    )

    assert reconcile(invoice((1, 2)), record, None).outcome == "quantity_mismatch"


def test_several_visits_to_the_same_pharmacy_add_up() -> None:
    record = log(issued(3), dispensed(2, (1, 1)), dispensed(3, (1, 2), dispensation_id="d2"))

    assert reconcile(invoice((1, 3)), record, None).outcome == "matched"


def test_two_invoice_lines_for_one_prescription_line_add_up() -> None:
    record = log(
        issued(3), substituted(2, 1, 1, GENERIC), dispensed(3, (1, 1), dispensation_id="d2")
    )

    assert reconcile(invoice((1, 1, GENERIC), (1, 1)), record, None).outcome == "matched"
    verdict = reconcile(invoice((1, 2, GENERIC), (1, 1)), record, None)
    assert verdict.outcome == "quantity_mismatch"
    assert verdict.detail == (
        f"line 1: billed 3 of CIP13 {GENERIC.code}, CIP13 {PARACETAMOL.code} (750 cents), "
        f"pharmacy {PHARMACY_A.value} dispensed 2"
    )


def test_billing_a_prescribed_line_this_pharmacy_never_dispensed_is_quantity_mismatch() -> None:
    record = log(issued(3, 2), dispensed(2, (1, 1)))

    verdict = reconcile(invoice((1, 1), (2, 1, AMOXICILLINE)), record, None)

    assert verdict.outcome == "quantity_mismatch"
    assert verdict.detail.startswith("line 2: billed 1 of CIP13")
    assert verdict.detail.endswith("dispensed 0")


# --- matched -------------------------------------------------------------------------------------


def test_billing_what_the_pharmacy_dispensed_matches() -> None:
    record = log(issued(3, 2), dispensed(2, (1, 2), (2, 1)))

    verdict = reconcile(invoice((1, 2), (2, 1, AMOXICILLINE)), record, None)

    assert verdict.outcome == "matched"
    assert verdict.detail == (
        f"billed as dispensed by pharmacy {PHARMACY_A.value} "
        f"(line 1: billed 2 of CIP13 {PARACETAMOL.code} (500 cents), dispensed 2; "
        f"line 2: billed 1 of CIP13 {AMOXICILLINE.code} (250 cents), dispensed 1)"
    )


def test_billing_less_than_was_dispensed_matches() -> None:
    record = log(issued(3), dispensed(2, (1, 3)))

    assert reconcile(invoice((1, 1)), record, None).outcome == "matched"


# --- not an invoice ------------------------------------------------------------------------------


def _with(**changes: Any) -> Invoice:
    return msgspec.structs.replace(invoice((1, 1)), **changes)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"finess": PHARMACY_A.value[:-1] + "0"}, "finess: FINESS check digit does not match"),
        ({"finess": "75071218"}, "finess: FINESS must be 9 characters, got 8"),
        ({"invoice_number": "  "}, "invoice_number: must not be blank"),
    ],
)
def test_an_invoice_with_a_bad_identifier_is_invalid(changes: dict[str, Any], reason: str) -> None:
    assert PHARMACY_A.value[-1] != "0"
    assert invalid_reason(_with(**changes)) == reason


@pytest.mark.parametrize(
    ("product", "reason"),
    [
        (
            ProductRef(
                system="CIP13", code=Cip13.from_body("340093000000").value[:-1] + "0", label="x"
            ),
            "lines[0].product: CIP13 check digit does not match",
        ),
        (ProductRef(system="CIP13", label="x"), "lines[0].product: a CIP13 product needs a code"),
        (
            ProductRef(system="DCI", code="1", label="x"),
            "lines[0].product: a DCI product has no code",
        ),
        (ProductRef(system="UCD", code="12", label="x"), "lines[0].product: bad UCD code"),
        (
            ProductRef(system="UCD", code="1234567", label=" "),
            "lines[0].product: a product needs a label",
        ),
    ],
)
@pytest.mark.usefixtures("fresh_process")
def test_an_invoice_billing_a_malformed_product_is_invalid(
    product: ProductRef, reason: str
) -> None:
    line = InvoiceLine(line_no=1, product=product, quantity=1, amount_cents=1)

    assert invalid_reason(_with(lines=(line,))) == reason


def test_a_well_formed_invoice_is_valid() -> None:
    assert invalid_reason(invoice((1, 1), (2, 1, AMOXICILLINE))) is None


# --- not an invoice, in a process that has seen other invoices ---------------------------------


@pytest.fixture
def fresh_process() -> Iterator[None]:
    """The checks remember the valid packs and products they saw for the process's life: each
    test below starts as a freshly started `ordo reconcile` does, and ends leaving none."""
    invoices.product_problem.cache_clear()
    invoices._VALID_CIP13.clear()
    yield
    invoices.product_problem.cache_clear()
    invoices._VALID_CIP13.clear()


def _billing(*products: ProductRef) -> Invoice:
    lines = tuple(
        InvoiceLine(line_no=n, product=p, quantity=1, amount_cents=1)
        for n, p in enumerate(products, start=1)
    )
    return msgspec.structs.replace(invoice((1, 1)), lines=lines)


BAD_KEY = ProductRef(system="CIP13", code=f"{PARACETAMOL.code}"[:-1] + "0", label="x")


@pytest.mark.usefixtures("fresh_process")
def test_a_pack_with_a_wrong_check_digit_is_invalid_from_the_first_invoice() -> None:
    assert PARACETAMOL.code is not None and PARACETAMOL.code[-1] != "0"

    assert invalid_reason(_billing(BAD_KEY)) == "lines[0].product: CIP13 check digit does not match"


@pytest.mark.usefixtures("fresh_process")
def test_a_pack_already_seen_valid_does_not_excuse_the_next_line() -> None:
    both = _billing(ref(PARACETAMOL), BAD_KEY)

    first, again = invalid_reason(both), invalid_reason(both)

    assert first == again == "lines[1].product: CIP13 check digit does not match"


@pytest.mark.usefixtures("fresh_process")
def test_a_code_seen_on_a_valid_pack_does_not_make_another_product_valid() -> None:
    assert invalid_reason(_billing(ref(PARACETAMOL))) is None

    substance_with_a_code = ProductRef(system="DCI", code=PARACETAMOL.code, label="paracétamol")
    pack_without_a_code = ProductRef(system="CIP13", label="Paracétamol 1 g")
    assert invalid_reason(_billing(substance_with_a_code)) == (
        "lines[0].product: a DCI product has no code"
    )
    assert invalid_reason(_billing(pack_without_a_code)) == (
        "lines[0].product: a CIP13 product needs a code"
    )


@pytest.mark.usefixtures("fresh_process")
def test_a_valid_substance_does_not_make_a_pack_without_a_code_valid() -> None:
    substance = ProductRef(system="DCI", label="paracétamol")
    assert invalid_reason(_billing(substance)) is None

    pack_without_a_code = ProductRef(system="CIP13", label="Paracétamol 1 g")
    assert invalid_reason(_billing(pack_without_a_code)) == (
        "lines[0].product: a CIP13 product needs a code"
    )
