"""A property over random histories of dispensings and withdrawals that mix pack sizes and
substitutes (Levothyrox in boxes of 30 and 90, Minidril in one and three cycles): no line ever
gives more units than it prescribed, whatever the boxes handed over (`domain.units`)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given as for_all
from hypothesis import settings
from hypothesis import strategies as st

from domain.calendar import Moment
from domain.catalogue import catalogued, sized
from domain.decisions.corrections import Withdraw, withdraw
from domain.decisions.dispensing import Dispense, DispenseLine, dispense
from domain.errors import DomainError
from domain.events import PrescribedLine, Product
from domain.prescription import Prescription, evolve, fold
from tests.domain.builders import PHARMACIST, PHARMACY_A
from tests.domain.counter import at, days, line, prescribed
from tests.domain.decisions.test_dispensing_in_units import CATALOGUE, PACKS
from tests.domain.real_packs import (
    LEVOTHYROX_30,
    LEVOTHYROX_90,
    MINIDRIL_1,
    MINIDRIL_3,
    pack,
)

SAME_MEDICINE = {
    LEVOTHYROX_30: (LEVOTHYROX_30, LEVOTHYROX_90),
    LEVOTHYROX_90: (LEVOTHYROX_30, LEVOTHYROX_90),
    MINIDRIL_1: (MINIDRIL_1, MINIDRIL_3),
    MINIDRIL_3: (MINIDRIL_1, MINIDRIL_3),
}

lines = st.lists(
    st.builds(
        lambda code, quantity, duration: line(quantity, duration, product=pack(code)),
        st.sampled_from(sorted(SAME_MEDICINE)),
        st.integers(1, 12),
        st.integers(1, 366),
    ),
    min_size=1,
    max_size=3,
)
steps = st.lists(
    st.tuples(
        st.sampled_from(["dispense", "dispense", "dispense", "withdraw"]),
        st.integers(0, 24 * 20),  # hours later
        st.integers(1, 3),  # line
        st.integers(1, 4),  # packs asked
        st.integers(0, 1),  # which pack of the medicine
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@for_all(written=lines, history=steps)
def test_no_line_ever_gives_more_units_than_it_prescribed(
    written: list[PrescribedLine], history: list[tuple[str, int, int, int, int]]
) -> None:
    state = fold([prescribed(*written)])
    assert state is not None
    state = catalogued(state, PACKS)
    when = at(days(0), 8)
    for action, hours, asked_line, quantity, which in history:
        when += timedelta(hours=hours)
        now = Moment(at=when, today=when.date())
        line_no = min(asked_line, len(state.lines))
        if action == "withdraw":
            state = _withdrawn_last(state, now)
            continue
        prescribed_line = state.line(line_no)
        assert prescribed_line is not None
        code = SAME_MEDICINE[prescribed_line.prescribed.product.code or ""][which]
        state = _dispensed(state, now, line_no, quantity, pack(code))
        _check_never_more_units_than_prescribed(state)


def _dispensed(
    state: Prescription, now: Moment, line_no: int, quantity: int, product: Product
) -> Prescription:
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=line_no, quantity=quantity, product=product),),
    )
    try:
        recorded = dispense(state, command, f"d{state.version}", now, catalogue=CATALOGUE)
    except DomainError:
        return state
    return sized(evolve(recorded.recorded, state), PACKS)


def _withdrawn_last(state: Prescription, now: Moment) -> Prescription:
    if not state.standing_dispensations:
        return state
    last = state.standing_dispensations[-1]
    command = Withdraw(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        dispensation_id=last.dispensation_id,
        reason="recorded in error",
    )
    try:
        decided = withdraw(state, command, now)
    except DomainError:
        return state
    assert decided is not None
    return evolve(decided[0], state)


def _check_never_more_units_than_prescribed(state: Prescription) -> None:
    for line_state in state.lines:
        prescribed_line = line_state.prescribed
        handed = sum(
            given.quantity * _units(given.product)
            for dispensation in state.standing_dispensations
            for given in dispensation.lines
            if given.line_no == line_state.line_no
        )
        assert handed <= prescribed_line.quantity * _units(prescribed_line.product)


def _units(product: Product) -> int:
    facts = PACKS.facts(product.code or "")
    assert facts is not None and facts.units is not None
    return facts.units
