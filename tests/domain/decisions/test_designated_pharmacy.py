"""A designated pharmacy (CSS L162-4-2, contract "designated pharmacy"): given a line naming the
pharmacy the prescriber chose, when another pharmacy dispenses it, then 409
designated_pharmacy_only, and `dispensable` says so; the named pharmacy dispenses as usual."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest

from domain.decisions.dispensing import dispense
from domain.decisions.issuing import RequestedLine, issue
from domain.dispensable import allowances
from domain.errors import DomainError
from domain.events import PrescriptionIssued
from tests.domain.builders import (
    ISSUED_ON,
    NUMBER,
    PARACETAMOL,
    PHARMACY_A,
    PHARMACY_B,
    given,
    issued,
    moment,
    request,
)
from tests.domain.decisions.test_issuing import prescription


def naming_pharmacy_a(event: PrescriptionIssued) -> PrescriptionIssued:
    """The prescription with its first line naming pharmacy A."""
    first = msgspec.structs.replace(event.lines[0], designated_finess=PHARMACY_A.value)
    return msgspec.structs.replace(event, lines=(first, *event.lines[1:]))


def test_issuing_keeps_the_pharmacy_named_on_a_line() -> None:
    named = RequestedLine(
        product=PARACETAMOL,
        quantity=3,
        dosage="1 par jour",
        duration_days=8,
        designated_finess=PHARMACY_A,
    )
    plain = msgspec.structs.replace(named, designated_finess=None)

    event = issue(prescription(named, plain), NUMBER, moment())

    assert [x.designated_finess for x in event.lines] == [PHARMACY_A.value, None]


def test_the_designated_pharmacy_dispenses_the_line() -> None:
    state = given(naming_pharmacy_a(issued(3)))

    event = dispense(state, request((1, 2), finess=PHARMACY_A), "d1", moment()).recorded

    assert [(x.line_no, x.quantity) for x in event.lines] == [(1, 2)]


def test_another_pharmacy_may_not_dispense_the_line() -> None:
    state = given(naming_pharmacy_a(issued(3)))

    with pytest.raises(DomainError) as refusal:
        dispense(state, request((1, 1), finess=PHARMACY_B), "d1", moment())

    assert refusal.value.code == "designated_pharmacy_only"
    assert refusal.value.field == "lines[0].quantity"
    assert f"names pharmacy {PHARMACY_A.value}" in refusal.value.detail
    assert refusal.value.max_quantity == 0


def test_another_pharmacy_may_dispense_the_lines_that_name_none() -> None:
    state = given(naming_pharmacy_a(issued(3, 2)))

    event = dispense(state, request((2, 1), finess=PHARMACY_B), "d1", moment()).recorded

    assert [(x.line_no, x.quantity) for x in event.lines] == [(2, 1)]


def test_dispensable_tells_another_pharmacy_the_line_is_not_for_it() -> None:
    state = given(naming_pharmacy_a(issued(3, 2)))

    elsewhere = allowances(state, None, moment().at, PHARMACY_B.value)
    there = allowances(state, None, moment().at, PHARMACY_A.value)

    assert [(a.max_quantity, a.reason, a.next_on) for a in elsewhere] == [
        (0, "designated_pharmacy_only", None),
        (2, None, None),
    ]
    assert [(a.max_quantity, a.reason) for a in there] == [(3, None), (2, None)]


def test_a_line_with_nothing_left_says_so_rather_than_naming_the_pharmacy() -> None:
    state = given(naming_pharmacy_a(issued(3)))
    done = dispense(state, request((1, 3), finess=PHARMACY_A), "d1", moment()).recorded

    with pytest.raises(DomainError) as refusal:
        dispense(
            given(naming_pharmacy_a(issued(3)), done),
            request((1, 1), finess=PHARMACY_B),
            "d2",
            moment(),
        )

    assert refusal.value.code == "already_dispensed"


def test_the_designated_pharmacy_is_told_when_the_line_opens_again() -> None:
    three_months = msgspec.structs.replace(issued(3).lines[0], duration_days=90)
    state = given(naming_pharmacy_a(msgspec.structs.replace(issued(3), lines=(three_months,))))

    (there,) = allowances(state, None, moment().at, PHARMACY_A.value)

    # One pack covers 30 days; the next from 7 days before they run out.
    assert (there.max_quantity, there.reason) == (1, "quantity_exceeds_allowed_now")
    assert there.next_on == ISSUED_ON + timedelta(days=23)
