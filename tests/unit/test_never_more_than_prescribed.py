"""Property: whatever pharmacies ask, in whatever order, no line ever gets more than prescribed."""

from __future__ import annotations

from builders import PHARMACY_A, PHARMACY_B, given, issued, moment, request
from hypothesis import given as for_all
from hypothesis import strategies as st

from domain.commands import dispense
from domain.errors import DomainError
from domain.events import Event

quantities = st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=4)
asks = st.lists(
    st.tuples(st.integers(1, 4), st.integers(-1, 10), st.sampled_from([PHARMACY_A, PHARMACY_B])),
    max_size=30,
)


@for_all(prescribed=quantities, requests=asks)
def test_no_sequence_of_dispensings_exceeds_what_was_prescribed(
    prescribed: list[int], requests: list[tuple[int, int, object]]
) -> None:
    events: list[Event] = [issued(*prescribed)]
    for line_no, quantity, pharmacy in requests:
        state = given(*events)
        try:
            event = dispense(state, request((line_no, quantity), finess=pharmacy), "d", moment())  # type: ignore[arg-type]
        except DomainError:
            after = given(*events)
            assert after == state  # a refusal records nothing
            continue
        assert 1 <= quantity <= state.remaining(line_no)  # accepted only what remained
        events.append(event)

    final = given(*events)
    for line, total in zip(final.lines, prescribed, strict=True):
        assert 0 <= line.dispensed <= total
        assert line.dispensed + final.remaining(line.line_no) == total


@for_all(prescribed=quantities, requests=asks)
def test_a_request_within_what_remains_is_always_accepted(
    prescribed: list[int], requests: list[tuple[int, int, object]]
) -> None:
    events: list[Event] = [issued(*prescribed)]
    for line_no, quantity, pharmacy in requests:
        state = given(*events)
        fits = line_no <= len(prescribed) and 1 <= quantity <= state.remaining(line_no)
        try:
            events.append(
                dispense(state, request((line_no, quantity), finess=pharmacy), "d", moment())
            )  # type: ignore[arg-type]
        except DomainError:
            assert not fits
        else:
            assert fits
