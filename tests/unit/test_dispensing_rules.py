"""Dispensing rules: given these events, when this command, then these events or this refusal."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.decisions.dispensing import Dispense, DispenseLine, dispense
from domain.decisions.lifecycle import cancel
from domain.errors import DomainError
from domain.events import DispensationRecorded, DispensedLine, PrescriptionCancelled
from domain.prescription import evolve
from tests.unit.builders import (
    GENERIC,
    ISSUED_ON,
    NUMBER,
    PARACETAMOL,
    PHARMACIST,
    PHARMACY_A,
    PHARMACY_B,
    PRESCRIBER,
    dispensed,
    given,
    issued,
    moment,
    request,
)


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


def test_cancelling_a_partially_dispensed_prescription_cancels_what_remains() -> None:
    state = given(issued(3, 2), dispensed(2, (1, 1)))

    after = given(issued(3, 2), dispensed(2, (1, 1)), cancel(state, "changement", moment()))

    assert after.status(ISSUED_ON) == "cancelled"
    assert [after.remaining(1), after.remaining(2)] == [0, 0]
    assert after.lines[0].dispensed == 1  # what was handed over stays recorded


def test_a_cancellation_records_who_cancelled_why_and_when() -> None:
    state = given(issued(3), dispensed(2, (1, 1)))

    event = cancel(state, "erreur de posologie", moment(days_after(1)))

    assert event == PrescriptionCancelled(
        prescription_id=NUMBER.value,
        version=3,
        at=moment(days_after(1)).at,
        prescriber_rpps=PRESCRIBER.value,
        reason="erreur de posologie",
    )


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


def test_a_prescription_is_cancelled_once() -> None:
    state = given(issued(3))
    state = given(issued(3), cancel(state, "erreur", moment()))

    with pytest.raises(DomainError) as refusal:
        cancel(state, "encore", moment())

    assert refusal.value.code == "prescription_cancelled"


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


def test_status_follows_the_dispensings() -> None:
    assert given(issued(3)).status(ISSUED_ON) == "active"
    assert given(issued(3), dispensed(2, (1, 1))).status(ISSUED_ON) == "partially_dispensed"
    assert given(issued(3), dispensed(2, (1, 3))).status(ISSUED_ON) == "dispensed"


def test_cancelled_wins_over_dispensed_and_dispensed_over_expired() -> None:
    everything = (issued(3), dispensed(2, (1, 3)))
    cancelled = PrescriptionCancelled(
        prescription_id=NUMBER.value,
        version=3,
        at=moment().at,
        prescriber_rpps=PRESCRIBER.value,
        reason="erreur",
    )
    years_later = date(2029, 1, 1)

    assert given(*everything).status(years_later) == "dispensed"
    assert given(*everything, cancelled).status(ISSUED_ON) == "cancelled"
    assert given(*everything, cancelled).status(years_later) == "cancelled"
    assert given(issued(3), dispensed(2, (1, 1))).status(years_later) == "expired"


def test_a_line_the_prescription_does_not_have_has_nothing_to_dispense() -> None:
    state = given(issued(3))

    assert (state.remaining(1), state.remaining(2)) == (3, 0)


def test_nothing_happens_to_a_prescription_before_it_is_issued() -> None:
    with pytest.raises(ValueError) as refused:
        evolve(dispensed(2, (1, 1)), None)

    assert str(refused.value) == (
        f"DispensationRecorded before PrescriptionIssued for {NUMBER.value}"
    )
