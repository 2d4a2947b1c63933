"""The medicines catalogue in reconciliation (`catalogue_substitutes`, in
`domain.reconciliation.records`): which billed pack may stand for the prescribed one, and
invoices reconciled with it."""

from __future__ import annotations

import msgspec

from domain.events import (
    DispensationRecorded,
    DispensedLine,
    NonSubstitutable,
    PrescribedLine,
    PrescriptionIssued,
    Product,
    ProductSystem,
)
from domain.reconciliation.chunk import reconcile_chunk
from domain.reconciliation.decision import reconcile
from domain.reconciliation.invoices import Entry, ProductRef
from domain.reconciliation.records import catalogue_substitutes
from tests.domain.builders import NUMBER, PATIENT, PHARMACIST, PHARMACY_A, PRESCRIBER, moment
from tests.domain.decisions.test_issuing_with_catalogue import (
    ALMUS_CODE,
    ARROW_CODE,
    CLAMOXYL_CODE,
    SKENAN_CODE,
    UNKNOWN_CODE,
    cip13,
    sample,
)
from tests.domain.reconciliation.test_decision import invoice, log

# --- reconciliation ---------------------------------------------------------------------------


def ref(code: str, system: ProductSystem = "CIP13") -> ProductRef:
    return ProductRef(system=system, code=code, label="x")


def test_the_catalogue_says_which_billed_pack_may_stand_for_the_prescribed_one() -> None:
    may_stand_for = catalogue_substitutes(sample)
    nothing = catalogue_substitutes(lambda: None)

    assert may_stand_for(ref(ARROW_CODE), ref(CLAMOXYL_CODE))
    assert may_stand_for(ref(CLAMOXYL_CODE), ref(CLAMOXYL_CODE))
    assert not may_stand_for(ref(SKENAN_CODE), ref(CLAMOXYL_CODE))
    assert not may_stand_for(ref(UNKNOWN_CODE), ref(CLAMOXYL_CODE))
    assert not may_stand_for(ref(ARROW_CODE), ref(UNKNOWN_CODE))
    assert not may_stand_for(ref("9000001", "UCD"), ref(CLAMOXYL_CODE))
    assert not nothing(ref(ARROW_CODE), ref(CLAMOXYL_CODE))


def test_a_generic_billed_for_the_recorded_prescribed_pack_matches_only_with_the_catalogue() -> (
    None
):
    """The pharmacy recorded Clamoxyl itself (its LGO named no substitute) and bills Arrow."""
    clamoxyl, arrow = cip13(CLAMOXYL_CODE), cip13(ARROW_CODE)
    record = log(issued(2, product=clamoxyl), dispensed_as(2, 1, clamoxyl))
    billed = invoice((1, 1, arrow))

    with_catalogue = reconcile(billed, record, None, substitute=catalogue_substitutes(sample))
    without = reconcile(billed, record, None)

    assert (with_catalogue.outcome, without.outcome) == ("matched", "product_mismatch")


def test_a_pharmacy_that_recorded_a_substitute_bills_that_one_not_another_generic() -> None:
    clamoxyl, arrow = cip13(CLAMOXYL_CODE), cip13(ARROW_CODE)
    record = log(issued(2, product=clamoxyl), dispensed_as(2, 1, arrow))
    substitutes = catalogue_substitutes(sample)

    another = reconcile(invoice((1, 1, cip13(ALMUS_CODE))), record, None, substitute=substitutes)
    recorded = reconcile(invoice((1, 1, arrow)), record, None, substitute=substitutes)

    assert (another.outcome, recorded.outcome) == ("product_mismatch", "matched")


def test_the_generic_rule_is_for_packs_only() -> None:
    dci = Product(system="DCI", label="amoxicilline 500 mg")
    clamoxyl = cip13(CLAMOXYL_CODE)
    record = log(issued(2, product=dci), dispensed_as(2, 1, clamoxyl))

    verdict = reconcile(
        invoice((1, 1, cip13(ARROW_CODE))), record, None, substitute=catalogue_substitutes(sample)
    )

    assert verdict.outcome == "product_mismatch"


def issued(quantity: int, *, product: Product) -> PrescriptionIssued:
    return PrescriptionIssued(
        prescription_id=NUMBER.value,
        version=1,
        at=moment().at,
        prescriber_rpps=PRESCRIBER.value,
        patient_ins=PATIENT.value,
        issued_on=moment().today,
        kind="standard",
        execution_view_consent=True,
        lines=(
            PrescribedLine(
                line_no=1,
                product=product,
                quantity=quantity,
                dosage="x",
                duration_days=6,
                narcotic=False,
            ),
        ),
    )


def dispensed_as(version: int, quantity: int, product: Product) -> DispensationRecorded:
    return DispensationRecorded(
        prescription_id=NUMBER.value,
        version=version,
        at=moment().at,
        dispensation_id=f"d{version}",
        finess=PHARMACY_A.value,
        pharmacist_rpps=PHARMACIST.value,
        dispensed_at=moment().at,
        lines=(DispensedLine(line_no=1, quantity=quantity, product=product),),
    )


def test_a_chunk_of_invoices_is_reconciled_with_the_catalogue_s_substitutes() -> None:
    clamoxyl, arrow = cip13(CLAMOXYL_CODE), cip13(ARROW_CODE)
    records = {NUMBER.value: log(issued(2, product=clamoxyl), dispensed_as(2, 1, clamoxyl))}
    entries = [Entry(line=1, invoice=invoice((1, 1, arrow)), number=NUMBER.value)]

    with_catalogue = reconcile_chunk(
        "b", entries, records, {}, substitute=catalogue_substitutes(sample)
    )
    without = reconcile_chunk("b", entries, records, {})

    assert [v.outcome for v in with_catalogue] == ["matched"]
    assert [v.outcome for v in without] == ["product_mismatch"]


def test_a_generic_billed_for_a_line_the_pharmacy_never_dispensed_is_a_product_mismatch() -> None:
    clamoxyl = cip13(CLAMOXYL_CODE)
    two_lines = msgspec.structs.replace(
        issued(2, product=clamoxyl),
        lines=(
            PrescribedLine(
                line_no=1, product=clamoxyl, quantity=2, dosage="x", duration_days=6, narcotic=False
            ),
            PrescribedLine(
                line_no=2, product=clamoxyl, quantity=2, dosage="x", duration_days=6, narcotic=False
            ),
        ),
    )
    record = log(two_lines, dispensed_as(2, 1, clamoxyl))  # line 1 only

    verdict = reconcile(
        invoice((2, 1, cip13(ARROW_CODE))), record, None, substitute=catalogue_substitutes(sample)
    )

    assert verdict.outcome == "product_mismatch"


def test_every_line_of_an_invoice_is_checked_after_one_passes_as_a_generic() -> None:
    clamoxyl = cip13(CLAMOXYL_CODE)
    record = log(issued(2, product=clamoxyl), dispensed_as(2, 1, clamoxyl))

    verdict = reconcile(
        invoice((1, 1, cip13(ARROW_CODE)), (1, 1, cip13(SKENAN_CODE))),
        record,
        None,
        substitute=catalogue_substitutes(sample),
    )

    assert verdict.outcome == "product_mismatch"
    assert SKENAN_CODE in verdict.detail


def test_a_generic_billed_on_a_non_substitutable_line_is_a_product_mismatch() -> None:
    """Clamoxyl written "non substituable (CIF)", recorded as Clamoxyl, billed as its generic."""
    clamoxyl, arrow = cip13(CLAMOXYL_CODE, "Clamoxyl 500 mg"), cip13(ARROW_CODE, "Arrow 500 mg")
    written = issued(2, product=clamoxyl)
    mention = NonSubstitutable(reason="CIF")
    excluded = msgspec.structs.replace(
        written, lines=(msgspec.structs.replace(written.lines[0], non_substitutable=mention),)
    )
    record = log(excluded, dispensed_as(2, 1, clamoxyl))
    substitutes = catalogue_substitutes(sample)

    generic = reconcile(invoice((1, 1, arrow), (2, 1, arrow)), record, None, substitute=substitutes)
    itself = reconcile(invoice((1, 1, clamoxyl)), record, None, substitute=substitutes)

    assert (generic.outcome, generic.detail) == (
        "product_mismatch",
        f"line 1: billed CIP13 {ARROW_CODE}, prescribed CIP13 {CLAMOXYL_CODE}, a line written "
        "non substituable (CIF); line 2: the prescription has no line 2 (its lines: 1)",
    )
    assert itself.outcome == "matched"
