"""Dispensing rules: given these events, when this command, then these events or this refusal."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from domain.calendar import Moment
from domain.coverage import CoveredPeriod, NarcoticPeriodsCovered, coverage_stream_of
from domain.decisions.dispensing import Dispense, DispenseLine, dispense
from domain.decisions.lifecycle import cancel
from domain.errors import DomainError
from domain.events import (
    DispensationRecorded,
    DispensedLine,
    Product,
)
from domain.identifiers import Cip13
from domain.prescription import evolve
from tests.domain.builders import (
    GENERIC,
    ISSUED_ON,
    NUMBER,
    PARACETAMOL,
    PATIENT,
    PHARMACIST,
    PHARMACY_A,
    PHARMACY_B,
    dispensed,
    given,
    issued,
    moment,
    request,
)
from tests.domain.counter import MORPHINE, Counter, at, days, line, prescribed
from tests.domain.test_dispensable import refusal_of
from tests.domain.test_dispensable_word_for_word import _moment


def days_after(n: int) -> date:
    return ISSUED_ON + timedelta(days=n)


def test_a_pharmacy_records_what_it_hands_over() -> None:
    state = given(issued(3))

    event = dispense(state, request((1, 2)), "d1", moment()).recorded

    assert event == DispensationRecorded(
        prescription_id=NUMBER.value,
        version=2,
        at=moment().at,
        dispensation_id="d1",
        finess=PHARMACY_A.value,
        pharmacist_rpps=PHARMACIST.value,
        dispensed_at=moment().at,
        lines=(DispensedLine(line_no=1, quantity=2, product=PARACETAMOL),),
    )


def test_the_rest_of_a_line_can_be_dispensed_later_in_another_pharmacy() -> None:
    state = given(issued(3), dispensed(2, (1, 2)))

    event = dispense(state, request((1, 1), finess=PHARMACY_B), "d2", moment()).recorded

    after = given(issued(3), dispensed(2, (1, 2)), event)
    assert after.remaining(1) == 0
    assert after.status(ISSUED_ON) == "dispensed"
    assert after.dispensed_by_other_than(PHARMACY_A.value)


def test_more_than_remains_on_a_line_is_refused() -> None:
    state = given(issued(3), dispensed(2, (1, 2)))

    with pytest.raises(DomainError) as refusal:
        dispense(state, request((1, 2)), "d2", moment())

    assert refusal.value.code == "quantity_exceeds_remaining"
    assert "1 left, 2 asked" in refusal.value.detail


def test_a_line_with_nothing_remaining_is_already_dispensed() -> None:
    state = given(issued(3, 2), dispensed(2, (1, 3)))

    with pytest.raises(DomainError) as refusal:
        dispense(state, request((1, 1)), "d2", moment())

    assert refusal.value.code == "already_dispensed"


def test_a_fully_dispensed_prescription_is_already_dispensed() -> None:
    state = given(issued(1), dispensed(2, (1, 1)))

    with pytest.raises(DomainError) as refusal:
        dispense(state, request((1, 1)), "d2", moment())

    assert refusal.value.code == "already_dispensed"


def test_nothing_is_dispensed_on_a_cancelled_prescription() -> None:
    state = given(issued(3))
    state = given(issued(3), cancel(state, "erreur de posologie", moment()))

    with pytest.raises(DomainError) as refusal:
        dispense(state, request((1, 1)), "d1", moment())

    assert refusal.value.code == "prescription_cancelled"


def test_handed_over_the_instant_it_was_registered_is_accepted() -> None:
    state = given(issued(3))
    registered = state.issued_at
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=1),),
        dispensed_at=registered,
    )

    done = dispense(state, command, "d1", moment(days_after(1)))

    assert done.recorded.dispensed_at == registered


@pytest.mark.parametrize(
    ("today", "allowed"),
    [(date(2027, 2, 23), True), (date(2027, 2, 24), False)],
    ids=["last-day-of-the-3-months", "the-day-after"],
)
def test_a_first_dispensing_must_come_within_three_months(today: date, allowed: bool) -> None:
    state = given(issued(3))

    if allowed:
        assert dispense(state, request((1, 1)), "d1", moment(today)).recorded.version == 2
    else:
        with pytest.raises(DomainError) as refusal:
            dispense(state, request((1, 1)), "d1", moment(today))
        assert refusal.value.code == "prescription_expired"
        assert state.status(today) == "expired"


def test_a_started_prescription_may_go_on_until_twelve_months() -> None:
    state = given(issued(6), dispensed(2, (1, 1)))

    assert dispense(state, request((1, 1)), "d2", moment(date(2027, 11, 23))).recorded.version == 3
    with pytest.raises(DomainError) as refusal:
        dispense(state, request((1, 1)), "d2", moment(date(2027, 11, 24)))
    assert refusal.value.code == "prescription_expired"


def test_a_substitute_is_recorded_as_the_product_handed_over() -> None:
    state = given(issued(3))
    substituted = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=1, product=GENERIC),),
    )

    event = dispense(state, substituted, "d1", moment()).recorded

    assert event.lines[0].product == GENERIC
    assert given(issued(3), event).dispensations[0].lines[0].product == GENERIC


@pytest.mark.parametrize(
    ("lines", "field", "detail"),
    [
        (((9, 1),), "lines[0].line_no", "no line 9"),
        (((1, 0),), "lines[0].quantity", "at least 1"),
        (((1, -2),), "lines[0].quantity", "at least 1"),
        (((1, 1), (1, 1)), "lines", "appears twice"),
        ((), "lines", "at least one line"),
    ],
    ids=["unknown-line", "zero-quantity", "negative-quantity", "same-line-twice", "no-line"],
)
def test_an_impossible_request_is_invalid(
    lines: tuple[tuple[int, int], ...], field: str, detail: str
) -> None:
    state = given(issued(3))

    with pytest.raises(DomainError) as refusal:
        dispense(state, request(*lines), "d1", moment())

    assert (refusal.value.code, refusal.value.field) == ("invalid_request", field)
    assert detail in refusal.value.detail


def test_a_line_the_prescription_does_not_have_has_nothing_to_dispense() -> None:
    state = given(issued(3))

    assert (state.remaining(1), state.remaining(2)) == (3, 0)


def test_nothing_happens_to_a_prescription_before_it_is_issued() -> None:
    with pytest.raises(ValueError) as refused:
        evolve(dispensed(2, (1, 1)), None)

    assert str(refused.value) == (
        f"DispensationRecorded before PrescriptionIssued for {NUMBER.value}"
    )


# --- dispensed_at: after an outage, within bounds ---------------------------------------------


def _request(dispensed_at: datetime | None, product: Product | None = None) -> Dispense:
    return Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=1, product=product),),
        dispensed_at=dispensed_at,
    )


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [
        (timedelta(hours=-72), True),
        (timedelta(hours=-72, seconds=-1), False),
        (timedelta(minutes=5), True),
        (timedelta(minutes=5, seconds=1), False),
    ],
    ids=["72h-behind", "just-over-72h", "5min-ahead", "just-over-5min"],
)
def test_dispensed_at_within_its_bounds(offset: timedelta, accepted: bool) -> None:
    issued = prescribed(line(3, 8))
    state = Counter(issued).state(issued.prescription_id)
    now = at(days(10))
    moment = Moment(at=now, today=now.date())

    if accepted:
        recorded = dispense(state, _request(now + offset), "d1", moment).recorded
        assert (recorded.dispensed_at, recorded.at) == (now + offset, now)
    else:
        with pytest.raises(DomainError) as refused:
            dispense(state, _request(now + offset), "d1", moment)
        assert (refused.value.code, refused.value.field) == ("invalid_request", "dispensed_at")


def test_a_dispensing_recorded_after_an_outage_is_decided_on_the_day_it_was_handed_over() -> None:
    issued = prescribed(line(3, 8))  # last day of the 3 months: 2027-02-23
    state = Counter(issued).state(issued.prescription_id)
    handed_over = at(date(2027, 2, 23), 18)
    recorded_now = at(date(2027, 2, 24), 9)

    recorded = dispense(
        state, _request(handed_over), "d1", Moment(at=recorded_now, today=recorded_now.date())
    ).recorded

    assert recorded.dispensed_at == handed_over
    with pytest.raises(DomainError) as refused:
        dispense(state, _request(None), "d1", Moment(at=recorded_now, today=recorded_now.date()))
    assert refused.value.code == "prescription_expired"


def test_dispensed_at_needs_its_offset() -> None:
    issued = prescribed(line(3, 8))
    state = Counter(issued).state(issued.prescription_id)
    now = at(days(1))

    with pytest.raises(DomainError) as refused:
        dispense(state, _request(now.replace(tzinfo=None)), "d1", Moment(at=now, today=now.date()))

    assert refused.value.field == "dispensed_at"


# --- DCI lines --------------------------------------------------------------------------------

AMOXICILLINE_DCI = Product(system="DCI", label="amoxicilline 500 mg")


AMOXICILLINE_ARROW = Product(
    system="CIP13", code=Cip13.from_body("340093576568").value, label="Amoxicilline Arrow 500 mg"
)


def test_a_substance_line_needs_the_pack_handed_over() -> None:
    issued = prescribed(line(2, 6, product=AMOXICILLINE_DCI))
    counter = Counter(issued)
    number = issued.prescription_id

    refused = refusal_of(counter, number, (1, 1), when=at(days(0)))
    done = counter.dispense(number, (1, 1), when=at(days(0)), product=AMOXICILLINE_ARROW)

    assert (refused.code, refused.field) == ("invalid_request", "lines[0].product")
    assert done.recorded.lines[0].product == AMOXICILLINE_ARROW


def test_a_narcotic_dispensing_extends_the_patient_coverage_in_the_same_decision() -> None:
    issued = prescribed(line(4, 28, narcotic=True))
    counter = Counter(issued)

    done = counter.dispense(issued.prescription_id, (1, 2), when=at(days(1)))

    assert done.coverage == NarcoticPeriodsCovered(
        stream_id=coverage_stream_of(PATIENT.value),
        version=1,
        at=at(days(1)),
        periods=(
            CoveredPeriod(
                prescription_id=issued.prescription_id,
                dispensation_id=done.recorded.dispensation_id,
                line_no=1,
                first_day=days(1),
                until=days(15),
            ),
        ),
    )
    assert MORPHINE.code is not None


def test_a_narcotic_is_never_dispensed_without_the_patient_coverage() -> None:
    issued = prescribed(line(4, 28, narcotic=True))
    state = Counter(issued).state(issued.prescription_id)

    with pytest.raises(ValueError) as refused:
        dispense(state, _request(None), "d1", _moment(0))

    assert str(refused.value) == (
        "a narcotic dispensing is decided against the patient's narcotic coverage"
    )
