"""Billing (`domain.decisions.billing`): given a dispensing, when its pharmacy bills it, then
the billing recorded or this refusal."""

from __future__ import annotations

from datetime import date

import pytest

from domain.decisions.billing import Bill, bill
from domain.errors import DomainError
from domain.events import (
    BilledLine,
    BillingRecorded,
)
from domain.identifiers import Finess
from tests.domain.builders import (
    NUMBER,
    PHARMACIST,
    PHARMACY_A,
    PHARMACY_B,
    dispensed,
    given,
    issued,
    moment,
)
from tests.domain.reconciliation.test_chunk import withdrawn


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
