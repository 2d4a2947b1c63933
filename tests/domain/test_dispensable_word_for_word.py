"""What each dispensing rule says, word for word: the reason, the `detail` an LGO shows at the
counter and the day it opens again, given these dispensings, when a pharmacy asks at this
instant (`domain.dispensable`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest

from domain.calendar import Moment
from domain.decisions.lifecycle import cancel
from domain.dispensable import Allowance
from domain.events import PrescriptionIssued
from domain.prescription import evolve
from tests.domain.counter import Counter, at, days, line, prescribed

# --- what each rule says, word for word (the `detail` an LGO shows at the counter) ------------


def _cancelled() -> Allowance:
    issued = prescribed(line(3, 90))
    counter = Counter(issued)
    state = counter.state(issued.prescription_id)
    counter.states[issued.prescription_id] = evolve(cancel(state, "x", _moment(0)), state)
    return counter.allowed_on(issued.prescription_id, at(days(1)))


def _moment(day: int) -> Moment:
    return Moment(at=at(days(day)), today=days(day))


def _after(
    issued: PrescriptionIssued,
    *given: tuple[int, int],
    ask_on: int,
    seed_others: PrescriptionIssued | None = None,
) -> Allowance:
    counter = Counter(issued, *([seed_others] if seed_others else []))
    if seed_others is not None:
        counter.dispense(seed_others.prescription_id, (1, 4), when=at(days(0)))
    for day, packs in given:
        counter.dispense(issued.prescription_id, (1, packs), when=at(days(day)))
    return counter.allowed_on(issued.prescription_id, at(days(ask_on)))


RULES_SAY = [
    (
        "cancelled",
        _cancelled,
        (0, "prescription_cancelled", None, "this prescription was cancelled"),
    ),
    (
        "expired",
        lambda: _after(prescribed(line(3, 90)), ask_on=100),
        (0, "prescription_expired", None, "this prescription could be dispensed until 2027-02-23"),
    ),
    (
        "nothing-left",
        lambda: _after(prescribed(line(1, 8)), (0, 1), ask_on=1),
        (0, None, None, "nothing remains on this line"),
    ),
    (
        "only-what-remains",
        lambda: _after(prescribed(line(3, 8)), ask_on=0),
        (3, None, None, "3 left on this line"),
    ),
    (
        "one-month",
        lambda: _after(prescribed(line(12, 360)), ask_on=0),
        (
            1,
            "quantity_exceeds_allowed_now",
            days(23),
            "one dispensing covers at most 30 days: 1 pack(s) of this line",
        ),
    ),
    (
        "stockpiling",
        lambda: _after(prescribed(line(3, 90)), (0, 1), ask_on=10),
        (
            0,
            "quantity_exceeds_allowed_now",
            days(23),
            "what was dispensed covers the treatment until 2026-12-23; the next from 2026-12-16",
        ),
    ),
    (
        "narcotic-late",
        lambda: _after(prescribed(line(4, 28, narcotic=True)), ask_on=8),
        (
            2,
            "quantity_exceeds_allowed_now",
            None,
            "narcotic presented 8 days after 2026-11-23: only the 20 days left of its 28 may be "
            "dispensed",
        ),
    ),
    (
        "narcotic-over",
        lambda: _after(prescribed(line(4, 28, narcotic=True)), ask_on=30),
        (
            0,
            "quantity_exceeds_allowed_now",
            None,
            "narcotic presented 30 days after 2026-11-23: only the 0 days left of its 28 may be "
            "dispensed",
        ),
    ),
    (
        "fraction",
        lambda: _after(prescribed(line(28, 28, narcotic=True, fraction_days=7)), ask_on=0),
        (7, "quantity_exceeds_allowed_now", days(6), "a fraction covers at most 7 days: 7 pack(s)"),
    ),
    (
        "fraction-too-early",
        lambda: _after(prescribed(line(28, 28, narcotic=True, fraction_days=7)), (0, 7), ask_on=3),
        (
            0,
            "quantity_exceeds_allowed_now",
            days(6),
            "the previous fraction runs out on 2026-11-30; the next from 2026-11-29",
        ),
    ),
    (
        "fraction-late",
        lambda: _after(prescribed(line(28, 28, narcotic=True, fraction_days=7)), (0, 7), ask_on=12),
        (
            2,
            "quantity_exceeds_allowed_now",
            days(13),
            "fraction presented 5 days after 2026-11-30: only the 2 days left of its 7 may be "
            "dispensed",
        ),
    ),
    (
        "overlap-now",
        lambda: _after(
            prescribed(line(4, 28, narcotic=True), seed=2),
            ask_on=2,
            seed_others=prescribed(line(4, 28, narcotic=True), seed=3),
        ),
        (
            0,
            "narcotic_overlap",
            None,
            "another narcotic prescription of this patient covers 2026-11-25 (until 2026-12-21)",
        ),
    ),
]


RULES_SAY += [
    (
        "one-pack-for-a-month",  # the month's cap is what remains: nothing but that limits it
        lambda: _after(prescribed(line(1, 30)), ask_on=0),
        (1, None, None, "1 left on this line"),
    ),
    (
        "fraction-lost",  # its whole period went by: nothing of it, nor of the rest
        lambda: _after(prescribed(line(28, 28, narcotic=True, fraction_days=7)), (0, 7), ask_on=14),
        (
            0,
            "quantity_exceeds_allowed_now",
            None,
            "fraction presented 7 days after 2026-11-30: only the 0 days left of its 7 may be "
            "dispensed",
        ),
    ),
    (
        "fraction-late-two-days-a-pack",
        lambda: _after(
            prescribed(line(14, 28, narcotic=True, fraction_days=14)), (0, 7), ask_on=19
        ),
        (
            4,
            "quantity_exceeds_allowed_now",
            days(26),
            "fraction presented 5 days after 2026-12-07: only the 9 days left of its 14 may be "
            "dispensed",
        ),
    ),
]


@pytest.mark.parametrize(("case", "asked", "says"), RULES_SAY, ids=[r[0] for r in RULES_SAY])
def test_what_each_rule_says(
    case: str, asked: Callable[[], Allowance], says: tuple[int, str | None, date | None, str]
) -> None:
    allowance = asked()

    assert (allowance.max_quantity, allowance.reason, allowance.next_on, allowance.why) == says


def test_a_later_period_of_another_prescription_says_when_it_starts() -> None:
    first = prescribed(line(4, 28, narcotic=True), seed=1)
    second = prescribed(line(4, 28, narcotic=True), seed=2)
    counter = Counter(first, second)
    counter.dispense(second.prescription_id, (1, 1), when=at(days(14)))

    allowance = counter.allowed_on(first.prescription_id, at(days(0)))

    assert (
        allowance.why
        == "another narcotic prescription of this patient covers the days from 2026-12-07"
    )


def test_chained_periods_of_other_prescriptions_free_the_day_after_the_last() -> None:
    mine = prescribed(line(4, 28, narcotic=True, overlap_allowed=False), seed=1)
    a = prescribed(line(4, 28, narcotic=True, fraction_days=7), seed=2)
    b = prescribed(line(4, 28, narcotic=True, overlap_allowed=True), seed=3)
    counter = Counter(mine, a, b)
    counter.dispense(a.prescription_id, (1, 1), when=at(days(0)))  # days 0..6
    counter.dispense(b.prescription_id, (1, 1), when=at(days(3)))  # days 3..9

    allowance = counter.allowed_on(mine.prescription_id, at(days(2)))

    assert (allowance.max_quantity, allowance.next_on) == (0, days(10))


def test_a_cancelled_prescription_allows_nothing_on_any_line() -> None:
    issued = prescribed(line(3, 90), line(2, 8))
    counter = Counter(issued)
    number = issued.prescription_id
    counter.states[number] = evolve(
        cancel(counter.state(number), "x", _moment(0)), counter.state(number)
    )

    assert counter.allowed(number, at(days(1))) == tuple(
        Allowance(
            line_no=no,
            max_quantity=0,
            reason="prescription_cancelled",
            next_on=None,
            why="this prescription was cancelled",
        )
        for no in (1, 2)
    )


def test_a_period_of_another_prescription_that_starts_today_covers_today() -> None:
    mine = prescribed(line(14, 28, narcotic=True, fraction_days=14), seed=1)
    other = prescribed(line(2, 2, narcotic=True), seed=2)
    counter = Counter(mine, other)
    counter.dispense(other.prescription_id, (1, 2), when=at(days(0), 9))  # days 0 and 1

    allowance = counter.allowed_on(mine.prescription_id, at(days(0), 11))

    assert allowance == Allowance(
        line_no=1,
        max_quantity=0,
        reason="narcotic_overlap",
        next_on=days(2),
        why="another narcotic prescription of this patient covers 2026-11-23 (until 2026-11-25)",
    )
    assert counter.allowed_on(mine.prescription_id, at(days(2))).max_quantity == 7
