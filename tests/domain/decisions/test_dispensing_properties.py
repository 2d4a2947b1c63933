"""Properties over random histories of dispensings and withdrawals, in several pharmacies and
calendars, across two prescriptions of one patient (narcotic lines included):

- what `dispensable` reports is exactly what the command enforces: `max_quantity` packs are
  accepted and one more pack is refused;
- no line is ever dispensed beyond what was prescribed, and what counts is what stands.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given as for_all
from hypothesis import settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.events import PrescribedLine
from domain.identifiers import Finess
from tests.domain.builders import PHARMACY_A, PHARMACY_B
from tests.domain.counter import Counter, at, days, line, prescribed

PHARMACIES = (PHARMACY_A, PHARMACY_B, Finess.from_body("97100012"), Finess.from_body("97400012"))

standard_lines = st.builds(line, st.integers(1, 12), st.integers(1, 366))


@st.composite
def narcotic_lines(draw: st.DrawFn) -> PrescribedLine:
    duration = draw(st.integers(2, 28))
    fraction = draw(st.one_of(st.none(), st.integers(1, duration - 1)))
    return line(
        draw(st.integers(1, 8)),
        duration,
        narcotic=True,
        fraction_days=fraction,
        overlap_allowed=draw(st.booleans()),
    )


prescriptions = st.lists(st.one_of(standard_lines, narcotic_lines()), min_size=1, max_size=3)
steps = st.lists(
    st.tuples(
        st.integers(0, 1),  # which prescription
        st.sampled_from(["dispense", "dispense", "dispense", "withdraw"]),
        st.integers(0, 24 * 20),  # hours later
        st.integers(1, 3),  # line
        st.integers(1, 14),  # packs asked
        st.sampled_from(PHARMACIES),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@for_all(first=prescriptions, second=prescriptions, history=steps)
def test_dispensable_and_the_command_agree_and_never_exceed_what_was_prescribed(
    first: list[PrescribedLine],
    second: list[PrescribedLine],
    history: list[tuple[int, str, int, int, int, Finess]],
) -> None:
    issued = (prescribed(*first, seed=1), prescribed(*second, seed=2))
    counter = Counter(*issued)
    when = at(days(0), 8)
    for which, action, hours, asked_line, quantity, pharmacy in history:
        when += timedelta(hours=hours)
        number = issued[which].prescription_id
        if action == "withdraw":
            _withdraw_one(counter, number, when, pharmacy)
            continue
        _check_agreement(counter, number, when, pharmacy)
        allowed = {a.line_no: a.max_quantity for a in counter.allowed(number, when, pharmacy)}
        line_no = min(asked_line, len(allowed))
        try:
            counter.dispense(number, (line_no, quantity), when=when, finess=pharmacy)
        except DomainError:
            assert quantity > allowed[line_no]
        else:
            assert quantity <= allowed[line_no]

    for event in issued:
        state = counter.state(event.prescription_id)
        for state_line in state.lines:
            standing = sum(d.quantity_of(state_line.line_no) for d in state.standing_dispensations)
            assert state_line.dispensed == standing <= state_line.prescribed.quantity


def _check_agreement(counter: Counter, number: str, when: datetime, pharmacy: Finess) -> None:
    for allowance in counter.allowed(number, when, pharmacy):
        most = allowance.max_quantity
        if most:
            assert counter.would_dispense(number, allowance.line_no, most, when, pharmacy)
        assert not counter.would_dispense(number, allowance.line_no, most + 1, when, pharmacy)


def _withdraw_one(counter: Counter, number: str, when: datetime, pharmacy: Finess) -> None:
    state = counter.state(number)
    mine = [d for d in state.standing_dispensations if d.finess == pharmacy.value]
    if not mine:
        return
    try:
        counter.withdraw(number, mine[-1].dispensation_id, when, pharmacy)
    except DomainError as refused:
        assert refused.code == "withdrawal_window_closed"
        assert when - mine[-1].dispensed_at > timedelta(days=7)
