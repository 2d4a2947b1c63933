"""Billing, issuing, consent and transmission rules, given/when/then."""

from __future__ import annotations

from datetime import date

import pytest

from domain.decisions.billing import Bill, bill
from domain.decisions.issuing import IssuePrescription, RequestedLine, issue
from domain.decisions.lifecycle import cancel, change_consent
from domain.decisions.sending import transmit
from domain.errors import DomainError
from domain.events import (
    BilledLine,
    BillingRecorded,
    ExecutionViewConsentChanged,
    PrescriptionKind,
    Product,
)
from domain.identifiers import Finess
from tests.unit.builders import (
    ISSUED_ON,
    NUMBER,
    PARACETAMOL,
    PATIENT,
    PHARMACIST,
    PHARMACY_A,
    PHARMACY_B,
    PRESCRIBER,
    dispensed,
    given,
    issued,
    moment,
)
from tests.unit.test_billing_integrity import withdrawn


def billing(
    *lines: tuple[int, int],
    pharmacy: Finess = PHARMACY_A,
    dispensation_id: str = "d1",
    invoice_number: str = "F-2026-0001",
    amount_cents: int | None = None,
) -> Bill:
    return Bill(
        pharmacy=pharmacy,
        pharmacist=PHARMACIST,
        dispensation_id=dispensation_id,
        invoice_number=invoice_number,
        lines=tuple(
            BilledLine(
                line_no=no,
                quantity=q,
                amount_cents=250 * q if amount_cents is None else amount_cents,
            )
            for no, q in lines
        ),
    )


def code_of(refusal: pytest.ExceptionInfo[DomainError]) -> str:
    return refusal.value.code


# --- billing ---------------------------------------------------------------------------------


def test_the_dispensing_pharmacy_bills_what_it_gave() -> None:
    state = given(issued(3), dispensed(2, (1, 2)))

    event = bill(state, billing((1, 2)), moment(date(2026, 11, 30)))

    assert event == BillingRecorded(
        prescription_id=NUMBER.value,
        version=3,
        at=moment(date(2026, 11, 30)).at,
        dispensation_id="d1",
        finess=PHARMACY_A.value,
        pharmacist_rpps=PHARMACIST.value,
        invoice_number="F-2026-0001",
        lines=(BilledLine(line_no=1, quantity=2, amount_cents=500),),
    )
    after = given(issued(3), dispensed(2, (1, 2)), event)
    assert after.dispensations[0].billed


def test_only_the_pharmacy_that_dispensed_may_bill() -> None:
    state = given(issued(3), dispensed(2, (1, 2)))

    with pytest.raises(DomainError) as refusal:
        bill(state, billing((1, 1), pharmacy=PHARMACY_B), moment())

    assert code_of(refusal) == "forbidden"


def test_a_dispensation_is_billed_once() -> None:
    state = given(issued(3), dispensed(2, (1, 2)))
    state = given(issued(3), dispensed(2, (1, 2)), bill(state, billing((1, 2)), moment()))

    with pytest.raises(DomainError) as refusal:
        bill(state, billing((1, 1)), moment())

    assert code_of(refusal) == "already_billed"


@pytest.mark.parametrize("lines", [((1, 3),), ((2, 1),)], ids=["more-than-given", "line-not-given"])
def test_billing_never_exceeds_what_the_dispensation_gave(
    lines: tuple[tuple[int, int], ...],
) -> None:
    state = given(issued(3, 2), dispensed(2, (1, 2)))

    with pytest.raises(DomainError) as refusal:
        bill(state, billing(*lines), moment())

    assert code_of(refusal) == "billing_exceeds_dispensed"


def test_billing_an_unknown_dispensation_is_not_found() -> None:
    state = given(issued(3), dispensed(2, (1, 2)))

    with pytest.raises(DomainError) as refusal:
        bill(state, billing((1, 1), dispensation_id="nope"), moment())

    assert code_of(refusal) == "not_found"


def test_the_billed_lines_are_kept_in_the_state() -> None:
    state = given(issued(3, 2), dispensed(2, (1, 2), (2, 1)))

    event = bill(state, billing((1, 2), (2, 1)), moment())

    after = given(issued(3, 2), dispensed(2, (1, 2), (2, 1)), event)
    assert after.dispensations[0].billed_lines == (
        BilledLine(line_no=1, quantity=2, amount_cents=500),
        BilledLine(line_no=2, quantity=1, amount_cents=250),
    )


@pytest.mark.parametrize("cents", [0, 10_000_000])
def test_an_amount_from_0_to_10_million_cents_per_line_is_accepted(cents: int) -> None:
    state = given(issued(3), dispensed(2, (1, 2)))

    event = bill(state, billing((1, 2), amount_cents=cents), moment())

    assert event.lines[0].amount_cents == cents


@pytest.mark.parametrize("cents", [-1, 10_000_001, 2**62])
def test_an_amount_out_of_range_is_refused_naming_the_field(cents: int) -> None:
    state = given(issued(3), dispensed(2, (1, 2)))

    with pytest.raises(DomainError) as refusal:
        bill(state, billing((1, 2), amount_cents=cents), moment())

    assert (code_of(refusal), refusal.value.field) == ("invalid_request", "lines[0].amount_cents")


def test_an_invoice_number_the_pharmacy_used_on_this_prescription_is_refused() -> None:
    events = (issued(3), dispensed(2, (1, 1)), dispensed(3, (1, 1), dispensation_id="d2"))
    first = bill(given(*events), billing((1, 1)), moment())

    with pytest.raises(DomainError) as refusal:
        bill(given(*events, first), billing((1, 1), dispensation_id="d2"), moment())

    assert (code_of(refusal), refusal.value.field) == ("invoice_number_used", "invoice_number")


def test_an_invoice_number_the_pharmacy_used_elsewhere_is_refused() -> None:
    state = given(issued(3), dispensed(2, (1, 2)))

    with pytest.raises(DomainError) as refusal:
        bill(state, billing((1, 2)), moment(), invoice_number_used=True)

    assert code_of(refusal) == "invoice_number_used"


def test_another_pharmacy_may_use_the_same_invoice_number() -> None:
    events = (
        issued(3),
        dispensed(2, (1, 1)),
        dispensed(3, (1, 1), finess=PHARMACY_B, dispensation_id="d2"),
    )
    first = bill(given(*events), billing((1, 1)), moment())

    second = bill(
        given(*events, first), billing((1, 1), pharmacy=PHARMACY_B, dispensation_id="d2"), moment()
    )

    assert (second.finess, second.invoice_number) == (PHARMACY_B.value, first.invoice_number)


def test_a_second_billing_of_a_dispensation_is_already_billed_before_its_number_is_used() -> None:
    state = given(issued(3), dispensed(2, (1, 2)))
    state = given(issued(3), dispensed(2, (1, 2)), bill(state, billing((1, 2)), moment()))

    with pytest.raises(DomainError) as refusal:
        bill(state, billing((1, 2)), moment(), invoice_number_used=True)

    assert code_of(refusal) == "already_billed"


def test_a_withdrawn_dispensation_cannot_be_billed() -> None:
    state = given(issued(3), dispensed(2, (1, 2)), withdrawn(3))

    with pytest.raises(DomainError) as refusal:
        bill(state, billing((1, 2)), moment())

    assert code_of(refusal) == "dispensation_withdrawn"


# --- issuing ---------------------------------------------------------------------------------


def prescription(
    *lines: RequestedLine, kind: PrescriptionKind = "standard", on: date = ISSUED_ON
) -> IssuePrescription:
    return IssuePrescription(
        prescriber=PRESCRIBER,
        patient=PATIENT,
        issued_on=on,
        kind=kind,
        execution_view_consent=True,
        lines=lines,
    )


def line(
    product: Product = PARACETAMOL, quantity: int = 3, days: int = 8, narcotic: bool = False
) -> RequestedLine:
    return RequestedLine(
        product=product,
        quantity=quantity,
        dosage="1 par jour",
        duration_days=days,
        narcotic=narcotic,
    )


def test_issuing_numbers_the_lines_from_one() -> None:
    event = issue(prescription(line(), line(quantity=1)), NUMBER, moment())

    assert [(x.line_no, x.quantity) for x in event.lines] == [(1, 3), (2, 1)]
    assert (event.version, event.prescription_id, event.patient_ins) == (
        1,
        NUMBER.value,
        PATIENT.value,
    )


MORPHINE = Product(system="CIP13", code=PARACETAMOL.code, label="Morphine LP 10 mg")


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (prescription(line(), on=date(2026, 11, 24)), "issued_on"),
        (prescription(), "lines"),
        (prescription(line(quantity=0)), "lines[0].quantity"),
        (prescription(line(days=0)), "lines[0].duration_days"),
        (
            prescription(line(Product(system="CIP13", code="3400930000008", label="x"))),
            "lines[0].product.code",
        ),
        (
            prescription(line(Product(system="CIP13", code=None, label="x"))),
            "lines[0].product.code",
        ),
        (
            prescription(line(Product(system="DCI", code="123", label="paracétamol"))),
            "lines[0].product",
        ),
        (prescription(line(Product(system="UCD", code="12", label="x"))), "lines[0].product.code"),
        (prescription(line(Product(system="DCI", label="  "))), "lines[0].product.label"),
        (prescription(line(MORPHINE, narcotic=True)), "lines[0]"),
        (
            prescription(line(MORPHINE, days=29, narcotic=True), kind="secure"),
            "lines[0].duration_days",
        ),
    ],
    ids=[
        "issued-in-the-future",
        "no-line",
        "zero-packs",
        "zero-days",
        "bad-cip13-check-digit",
        "cip13-without-code",
        "dci-with-a-code",
        "ucd-too-short",
        "blank-label",
        "narcotic-on-a-standard-prescription",
        "narcotic-beyond-28-days",
    ],
)
def test_an_invalid_prescription_is_refused_naming_the_field(
    command: IssuePrescription, field: str
) -> None:
    with pytest.raises(DomainError) as refusal:
        issue(command, NUMBER, moment())

    assert (refusal.value.code, refusal.value.field) == ("invalid_request", field)


def test_a_narcotic_goes_on_a_secure_prescription_for_28_days_at_most() -> None:
    event = issue(
        prescription(line(MORPHINE, days=28, narcotic=True), kind="secure"), NUMBER, moment()
    )

    assert event.kind == "secure" and event.lines[0].narcotic


def test_substances_and_units_are_accepted() -> None:
    dci = Product(system="DCI", label="paracétamol")
    ucd = Product(system="UCD", code="9000001", label="Paracétamol 1 g, comprimé")

    event = issue(prescription(line(dci), line(ucd)), NUMBER, moment())

    assert [x.product.system for x in event.lines] == ["DCI", "UCD"]


# --- consent and transmission ----------------------------------------------------------------


def test_the_patient_opposes_the_prescriber_view() -> None:
    state = given(issued(3))

    event = change_consent(state, False, "patient", moment())

    assert event == ExecutionViewConsentChanged(
        prescription_id=NUMBER.value, version=2, at=moment().at, consent=False, changed_by="patient"
    )
    assert not given(issued(3), event).execution_view_consent


def test_repeating_the_recorded_answer_records_nothing() -> None:
    assert change_consent(given(issued(3)), True, "insurer", moment()) is None


def test_the_patient_transmits_a_prescription_to_a_pharmacy() -> None:
    state = given(issued(3))

    event = transmit(state, PHARMACY_B, "Je passe demain matin", moment())

    after = given(issued(3), event)
    assert after.transmissions[0].finess == PHARMACY_B.value


@pytest.mark.parametrize(
    ("history", "today", "code"),
    [
        ("cancelled", ISSUED_ON, "prescription_cancelled"),
        ("dispensed", ISSUED_ON, "already_dispensed"),
        ("issued", date(2027, 3, 1), "prescription_expired"),
    ],
)
def test_nothing_left_to_prepare_cannot_be_transmitted(
    history: str, today: date, code: str
) -> None:
    state = given(issued(1))
    if history == "cancelled":
        state = given(issued(1), cancel(state, "erreur", moment()))
    elif history == "dispensed":
        state = given(issued(1), dispensed(2, (1, 1)))

    with pytest.raises(DomainError) as refusal:
        transmit(state, PHARMACY_B, "", moment(today))

    assert code_of(refusal) == code
