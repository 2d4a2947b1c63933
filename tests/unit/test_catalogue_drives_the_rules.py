"""The medicines catalogue decides the rules for the packs it knows: prescribing, dispensing and
reconciliation, given its facts (built here, the way the import builds them)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
import pytest

from domain.catalogue import Catalogue, PackFacts, catalogued, catalogued_line
from domain.decisions.dispensing import Dispense, DispenseLine, dispense
from domain.decisions.issuing import IssuePrescription, RequestedLine, issue
from domain.errors import DomainError
from domain.events import (
    DispensationRecorded,
    DispensedLine,
    PrescribedLine,
    PrescriptionIssued,
    PrescriptionKind,
    Product,
    ProductSystem,
)
from domain.reconciliation.chunk import reconcile_chunk
from domain.reconciliation.decision import reconcile
from domain.reconciliation.invoices import Entry, ProductRef
from domain.reconciliation.records import catalogue_substitutes
from tests.unit.builders import NUMBER, PATIENT, PHARMACIST, PHARMACY_A, PRESCRIBER, moment
from tests.unit.counter import Counter, at, days, line, prescribed
from tests.unit.test_catalogue_rules import pack, substance
from tests.unit.test_reconciliation_rules import invoice, log

SKENAN_CODE, CLAMOXYL_CODE, ARROW_CODE = "3400933323523", "3400931587538", "3400935765680"
TOPALGIC_CODE, UNKNOWN_CODE = "3400933911881", "3400930000007"
ALMUS_CODE = "3400937054393"


class Packs:
    """A catalogue snapshot as the rules see it: facts per CIP13 (an immutable mapping)."""

    def __init__(self, facts: Mapping[str, PackFacts]) -> None:
        self._facts = dict(facts)

    def facts(self, cip13: str) -> PackFacts | None:
        return self._facts.get(cip13)


def sample() -> Packs:
    """Skenan (narcotic, 28 days), Clamoxyl and its generic Arrow (group 148), Topalgic
    (tramadol: assimilated, 84 days), and a fractioned fentanyl patch."""
    amoxicilline = (substance("AMOXICILLINE ANHYDRE", "FT"), substance("AMOXICILLINE TRIHYDRATÉE"))
    narcotic = ("stupéfiants", "prescription limitée à 4 semaines")
    return Packs(
        {
            SKENAN_CODE: pack(
                SKENAN_CODE, "61227030", substance("SULFATE DE MORPHINE"), conditions=narcotic
            ),
            CLAMOXYL_CODE: pack(CLAMOXYL_CODE, "67707794", *amoxicilline, group="148"),
            ARROW_CODE: pack(ARROW_CODE, "66082724", *amoxicilline, group="148"),
            ALMUS_CODE: pack(ALMUS_CODE, "64338986", *amoxicilline, group="148"),
            TOPALGIC_CODE: pack(TOPALGIC_CODE, "63435884", substance("CHLORHYDRATE DE TRAMADOL")),
            "3400934238307": pack(
                "3400934238307",
                "60914025",
                substance("FENTANYL"),
                conditions=(*narcotic, "délivrance fractionnée de 14 jours"),
            ),
        }
    )


def cip13(code: str, label: str = "as the LAP wrote it") -> Product:
    return Product(system="CIP13", code=code, label=label)


def written(
    product: Product,
    days_: int = 28,
    *,
    narcotic: bool | None = None,
    assimilated: bool | None = None,
    fraction_days: int | None = None,
) -> RequestedLine:
    return RequestedLine(
        product=product,
        quantity=4,
        dosage="x",
        duration_days=days_,
        narcotic=narcotic,
        assimilated=assimilated,
        fraction_days=fraction_days,
    )


def issued_line(
    *lines: RequestedLine, kind: PrescriptionKind = "secure", strict: bool = False
) -> tuple[PrescribedLine, ...]:
    command = IssuePrescription(
        prescriber=PRESCRIBER,
        patient=PATIENT,
        issued_on=moment().today,
        kind=kind,
        execution_view_consent=True,
        lines=lines,
    )
    return issue(command, NUMBER, moment(), Catalogue(sample(), strict=strict)).lines


def refusal_of(
    *lines: RequestedLine, kind: PrescriptionKind = "secure", strict: bool = False
) -> tuple[str, str | None, str]:
    with pytest.raises(DomainError) as refused:
        issued_line(*lines, kind=kind, strict=strict)
    return refused.value.code, refused.value.field, refused.value.detail


# --- prescribing ------------------------------------------------------------------------------


def test_the_catalogue_says_skenan_is_a_narcotic_when_the_lap_did_not() -> None:
    (line_,) = issued_line(written(cip13(SKENAN_CODE)))

    assert (line_.narcotic, line_.assimilated, line_.fraction_days) == (True, False, None)


def test_a_lap_that_contradicts_the_catalogue_is_refused_naming_the_field() -> None:
    assert refusal_of(written(cip13(SKENAN_CODE), narcotic=False)) == (
        "invalid_request",
        "lines[0].narcotic",
        "the medicines catalogue says medicine 61227030 is narcotic",
    )
    assert refusal_of(written(cip13(CLAMOXYL_CODE), 6, narcotic=True), kind="standard") == (
        "invalid_request",
        "lines[0].narcotic",
        "the medicines catalogue says medicine 67707794 is not narcotic",
    )
    assert refusal_of(written(cip13(TOPALGIC_CODE), 84, assimilated=False)) == (
        "invalid_request",
        "lines[0].assimilated",
        "the medicines catalogue says medicine 63435884 is not assimilated".replace("is not", "is"),
    )


def test_what_the_lap_says_in_agreement_with_the_catalogue_is_accepted() -> None:
    (skenan,) = issued_line(written(cip13(SKENAN_CODE), narcotic=True))
    (amoxicilline,) = issued_line(written(cip13(CLAMOXYL_CODE), 6, narcotic=False), kind="standard")

    assert (skenan.narcotic, amoxicilline.narcotic) == (True, False)


def test_a_secure_product_on_a_standard_prescription_is_refused_naming_kind() -> None:
    assert refusal_of(written(cip13(SKENAN_CODE)), kind="standard") == (
        "invalid_request",
        "kind",
        "medicine 61227030 is prescribed on a secure prescription (kind 'secure')",
    )


def test_the_longest_duration_is_the_catalogue_s() -> None:
    assert refusal_of(written(cip13(SKENAN_CODE), 29)) == (
        "invalid_request",
        "lines[0].duration_days",
        "medicine 61227030 is prescribed for 28 days at most",
    )
    (topalgic,) = issued_line(written(cip13(TOPALGIC_CODE), 84))
    assert (topalgic.assimilated, topalgic.narcotic, topalgic.duration_days) == (True, False, 84)
    assert refusal_of(written(cip13(TOPALGIC_CODE), 85))[1] == "lines[0].duration_days"


def test_the_product_s_fractioning_applies_when_the_prescriber_wrote_none() -> None:
    patch = cip13("3400934238307")

    (fractioned,) = issued_line(written(patch, 28))
    (own,) = issued_line(written(patch, 28, fraction_days=7))
    (short,) = issued_line(written(patch, 14))

    assert (fractioned.fraction_days, own.fraction_days, short.fraction_days) == (14, 7, None)


def test_the_label_written_by_the_lap_names_a_pack_the_catalogue_gives_no_name() -> None:
    nameless = pack(
        SKENAN_CODE, "61227030", substance("SULFATE DE MORPHINE"), conditions=("stupéfiants",)
    )
    packs = Packs({SKENAN_CODE: msgspec_replace(nameless, label="")})
    command = IssuePrescription(
        prescriber=PRESCRIBER,
        patient=PATIENT,
        issued_on=moment().today,
        kind="standard",
        execution_view_consent=True,
        lines=(written(cip13(SKENAN_CODE, "Skénan du LAP")),),
    )

    with pytest.raises(DomainError) as refused:
        issue(command, NUMBER, moment(), Catalogue(packs))

    assert (
        refused.value.detail
        == "Skénan du LAP is prescribed on a secure prescription (kind 'secure')"
    )


def msgspec_replace(facts: PackFacts, **changes: object) -> PackFacts:
    return msgspec.structs.replace(facts, **changes)


def test_a_pack_unknown_to_the_catalogue_is_taken_at_the_lap_s_word_unless_strict() -> None:
    (unknown,) = issued_line(written(cip13(UNKNOWN_CODE), 6, narcotic=False), kind="standard")

    assert unknown.narcotic is False
    assert refusal_of(written(cip13(UNKNOWN_CODE), 6), kind="standard", strict=True) == (
        "unknown_product",
        "lines[0].product.code",
        f"the medicines catalogue knows no pack {UNKNOWN_CODE}",
    )


def test_substances_and_units_are_not_looked_up_even_when_strict() -> None:
    dci = Product(system="DCI", label="amoxicilline 500 mg")
    ucd = Product(system="UCD", code="9000001", label="x")

    lines = issued_line(written(dci, 6), written(ucd, 6), kind="standard", strict=True)

    assert [line_.narcotic for line_ in lines] == [False, False]


# --- dispensing: substitutes ------------------------------------------------------------------


def handing(product: Product | None, *, strict: bool = False, prescribed_as: Product) -> object:
    issued = prescribed(line(2, 6, product=prescribed_as))
    state = Counter(issued).state(issued.prescription_id)
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=1, product=product),),
    )
    return dispense(state, command, "d1", moment(), catalogue=Catalogue(sample(), strict=strict))


def handing_refused(
    product: Product, *, strict: bool = False, prescribed_as: Product
) -> tuple[str, str | None, str]:
    with pytest.raises(DomainError) as refused:
        handing(product, strict=strict, prescribed_as=prescribed_as)
    return refused.value.code, refused.value.field, refused.value.detail


def test_a_generic_of_the_group_is_a_substitute_and_a_narcotic_is_not() -> None:
    clamoxyl = cip13(CLAMOXYL_CODE, "Clamoxyl 500 mg")

    assert handing(cip13(ARROW_CODE), prescribed_as=clamoxyl) is not None
    assert handing(clamoxyl, prescribed_as=clamoxyl) is not None
    assert handing(None, prescribed_as=clamoxyl) is not None
    assert handing_refused(cip13(SKENAN_CODE, "Skenan"), prescribed_as=clamoxyl) == (
        "substitution_not_allowed",
        "lines[0].product",
        "medicine 61227030 (3400933323523) may not be given for Clamoxyl 500 mg: neither the "
        "same medicine, nor its generic group, nor its substance",
    )


def test_a_substance_line_takes_packs_of_that_substance_alone() -> None:
    dci = Product(system="DCI", label="amoxicilline 500 mg")

    assert handing(cip13(ARROW_CODE), prescribed_as=dci) is not None
    assert handing_refused(cip13(SKENAN_CODE), prescribed_as=dci)[0] == "substitution_not_allowed"


def test_a_pack_the_catalogue_does_not_know_is_taken_at_the_pharmacist_s_word_unless_strict() -> (
    None
):
    clamoxyl = cip13(CLAMOXYL_CODE)
    unknown = cip13(UNKNOWN_CODE)

    assert handing(unknown, prescribed_as=clamoxyl) is not None
    assert handing(cip13(ARROW_CODE), prescribed_as=unknown) is not None
    assert handing_refused(unknown, prescribed_as=clamoxyl, strict=True) == (
        "unknown_product",
        "lines[0].product.code",
        f"the medicines catalogue knows no pack {UNKNOWN_CODE}",
    )
    # A prescribed pack unknown to a strict catalogue was written before it: not refused again.
    assert handing(cip13(ARROW_CODE), prescribed_as=unknown, strict=True) is not None


# --- lines written before the catalogue -------------------------------------------------------


def test_a_line_is_dispensed_as_the_catalogue_knows_its_pack() -> None:
    skenan_as_not_narcotic = line(4, 28, product=cip13(SKENAN_CODE))
    patch = line(4, 28, product=cip13("3400934238307"), narcotic=True, fraction_days=7)
    unknown = line(4, 28, product=cip13(UNKNOWN_CODE))
    dci = line(4, 28, product=Product(system="DCI", label="morphine"))
    tramadol = line(3, 84, product=cip13(TOPALGIC_CODE))

    assert catalogued_line(skenan_as_not_narcotic, sample()).narcotic is True
    assert catalogued_line(skenan_as_not_narcotic, sample()).fraction_days is None
    assert catalogued_line(patch, sample()).fraction_days == 7
    assert (
        catalogued_line(line(4, 28, product=cip13("3400934238307")), sample()).fraction_days == 14
    )
    assert (
        catalogued_line(line(4, 14, product=cip13("3400934238307")), sample()).fraction_days is None
    )
    assert catalogued_line(unknown, sample()) == unknown
    assert catalogued_line(dci, sample()) == dci
    assert catalogued_line(skenan_as_not_narcotic, None) == skenan_as_not_narcotic
    assert (
        catalogued_line(tramadol, sample()).assimilated,
        catalogued_line(tramadol, sample()).narcotic,
    ) == (True, False)


def test_the_whole_prescription_is_read_as_the_catalogue_knows_it() -> None:
    issued = prescribed(
        line(4, 28, product=cip13(SKENAN_CODE)), line(2, 6, product=cip13(CLAMOXYL_CODE))
    )
    state = Counter(issued).state(issued.prescription_id)

    seen = catalogued(state, sample())

    assert [line_.prescribed.narcotic for line_ in seen.lines] == [True, False]
    assert catalogued(state, None) is state
    assert seen.prescription_id == state.prescription_id and seen.version == state.version


def test_a_morphine_written_as_not_narcotic_is_dispensed_by_the_narcotic_rules() -> None:
    issued = prescribed(line(4, 28, product=cip13(SKENAN_CODE)))
    counter = Counter(issued)
    state = catalogued(counter.state(issued.prescription_id), sample())
    counter.states[issued.prescription_id] = state

    late = counter.allowed_on(issued.prescription_id, at(days(10)))

    assert (late.max_quantity, late.reason) == (2, "quantity_exceeds_allowed_now")


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


def test_more_packs_of_a_narcotic_line_cover_the_days_after_the_first_run_out() -> None:
    issued_ = prescribed(line(4, 28, narcotic=True))
    counter = Counter(issued_)
    counter.dispense(issued_.prescription_id, (1, 2), when=at(days(0)))  # days 0..13

    second = counter.dispense(issued_.prescription_id, (1, 1), when=at(days(1)))

    assert second.coverage is not None
    (period,) = second.coverage.periods
    assert (period.first_day, period.until) == (days(14), days(21))


def test_a_line_with_nothing_left_names_its_line() -> None:
    issued_ = prescribed(line(1, 8), line(3, 8))
    counter = Counter(issued_)
    counter.dispense(issued_.prescription_id, (1, 1), when=at(days(0)))

    first, second = counter.allowed(issued_.prescription_id, at(days(0)))

    assert (first.line_no, first.max_quantity, second.line_no) == (1, 0, 2)
