"""How much may be dispensed now (contract v1.1, domain.md): given these dispensings, when a
pharmacy asks at this instant, then this much, for this reason, until this day."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.dispensable import covered_until
from domain.errors import DomainError
from domain.identifiers import Finess
from tests.domain.builders import PHARMACY_A
from tests.domain.counter import Counter, at, days, line, prescribed

GUADELOUPE = Finess.from_body("97100012")


REUNION = Finess.from_body("97400012")


def refusal_of(
    counter: Counter, number: str, *lines: tuple[int, int], when: datetime
) -> DomainError:
    with pytest.raises(DomainError) as refused:
        counter.dispense(number, *lines, when=when)
    return refused.value


# --- one month at a time ----------------------------------------------------------------------


def test_one_month_at_a_time_twelve_packs_for_a_year_give_one_pack_now() -> None:
    issued = prescribed(line(12, 360))
    counter = Counter(issued)

    allowed = counter.allowed_on(issued.prescription_id, at(days(0)))
    refused = refusal_of(counter, issued.prescription_id, (1, 12), when=at(days(0)))

    assert (allowed.max_quantity, allowed.reason) == (1, "quantity_exceeds_allowed_now")
    assert refused.code == "quantity_exceeds_allowed_now"
    assert refused.max_quantity == 1
    assert "line 1" in refused.detail and "30 days" in refused.detail


def test_one_month_at_a_time_still_allows_one_pack_covering_three_months() -> None:
    issued = prescribed(line(2, 180))
    counter = Counter(issued)

    assert counter.allowed_on(issued.prescription_id, at(days(0))).max_quantity == 1
    counter.dispense(issued.prescription_id, (1, 1), when=at(days(0)))


def test_one_month_at_a_time_a_short_treatment_goes_out_whole() -> None:
    issued = prescribed(line(3, 8))

    allowed = Counter(issued).allowed_on(issued.prescription_id, at(days(0)))

    assert (allowed.max_quantity, allowed.reason, allowed.next_on) == (3, None, None)


# --- no stockpiling ---------------------------------------------------------------------------


def test_no_stockpiling_the_next_month_seven_days_early_not_eight() -> None:
    issued = prescribed(line(3, 90))
    number = issued.prescription_id
    counter = Counter(issued)
    counter.dispense(number, (1, 1), when=at(days(0)))

    eight_early = counter.allowed_on(number, at(days(22)))
    seven_early = counter.allowed_on(number, at(days(23)))

    assert (eight_early.max_quantity, eight_early.reason) == (0, "quantity_exceeds_allowed_now")
    assert eight_early.next_on == days(23)
    assert seven_early.max_quantity == 1
    assert refusal_of(counter, number, (1, 1), when=at(days(22))).max_quantity == 0
    counter.dispense(number, (1, 1), when=at(days(23)))


def test_no_stockpiling_covered_until_counts_from_the_first_dispensing() -> None:
    issued = prescribed(line(3, 90))
    number = issued.prescription_id
    counter = Counter(issued)
    counter.dispense(number, (1, 1), when=at(days(0)))
    counter.dispense(number, (1, 1), when=at(days(25)))  # a few days early

    state = counter.state(number)
    assert covered_until(state, state.lines[0]) == days(60)
    assert counter.allowed_on(number, at(days(52))).next_on == days(53)


def test_a_renewal_month_by_month_for_a_year() -> None:
    issued = prescribed(line(12, 360))
    number = issued.prescription_id
    counter = Counter(issued)
    day = days(0)
    for month in range(12):
        allowed = counter.allowed_on(number, at(day))
        assert allowed.max_quantity == 1, f"month {month + 1}"
        counter.dispense(number, (1, 1), when=at(day))
        day = counter.allowed_on(number, at(day)).next_on or day

    assert counter.state(number).remaining(1) == 0
    assert counter.allowed_on(number, at(day)).next_on is None


def test_next_on_says_when_once_the_most_allowed_now_is_given() -> None:
    issued = prescribed(line(3, 90))

    allowed = Counter(issued).allowed_on(issued.prescription_id, at(days(0)))

    assert (allowed.max_quantity, allowed.next_on) == (1, days(23))


# --- the 3- and 12-month windows, in the pharmacy's calendar ----------------------------------


@pytest.mark.parametrize(
    ("issued_on", "last_day"),
    [
        (date(2026, 11, 30), date(2027, 2, 28)),
        (date(2027, 11, 30), date(2028, 2, 29)),  # leap year
        (date(2026, 12, 31), date(2027, 3, 31)),
    ],
    ids=["month-end", "leap-day", "31st"],
)
def test_the_three_month_window_ends_on_the_same_day_or_the_month_end(
    issued_on: date, last_day: date
) -> None:
    issued = prescribed(line(1, 10), issued_on=issued_on)
    counter = Counter(issued)
    number = issued.prescription_id

    assert counter.allowed_on(number, at(last_day)).max_quantity == 1
    late = counter.allowed_on(number, at(last_day + timedelta(days=1)))
    assert (late.max_quantity, late.reason, late.next_on) == (0, "prescription_expired", None)


def test_overseas_calendars_count_days_at_the_pharmacy_local_midnight() -> None:
    issued = prescribed(line(1, 10))  # issued 2026-11-23: last day 2027-02-23
    number = issued.prescription_id
    counter = Counter(issued)
    # 23:30 in Guadeloupe on the last day is already the next day in Paris.
    evening_there = at(date(2027, 2, 23), 23, ZoneInfo("America/Guadeloupe")).replace(minute=30)
    # 00:30 in Réunion on the day after is still the last day in Paris.
    night_there = at(date(2027, 2, 24), 0, ZoneInfo("Indian/Reunion")).replace(minute=30)

    assert counter.allowed(number, evening_there, GUADELOUPE)[0].max_quantity == 1
    assert counter.allowed(number, evening_there, PHARMACY_A)[0].reason == "prescription_expired"
    assert counter.allowed(number, night_there, REUNION)[0].reason == "prescription_expired"
    assert counter.allowed(number, night_there, PHARMACY_A)[0].max_quantity == 1
    counter.dispense(number, (1, 1), when=evening_there, finess=GUADELOUPE)


def test_twelve_months_once_started() -> None:
    issued = prescribed(line(12, 360))
    number = issued.prescription_id
    counter = Counter(issued)
    counter.dispense(number, (1, 1), when=at(days(0)))

    assert counter.allowed_on(number, at(date(2027, 11, 23))).max_quantity == 1
    assert counter.allowed_on(number, at(date(2027, 11, 24))).reason == "prescription_expired"


# --- narcotics: the 3-day rule, fractions, no overlap -----------------------------------------


def test_narcotic_presented_on_day_three_goes_out_in_full() -> None:
    issued = prescribed(line(4, 28, narcotic=True))

    allowed = Counter(issued).allowed_on(issued.prescription_id, at(days(3)))

    assert (allowed.max_quantity, allowed.reason) == (4, None)


def test_narcotic_presented_on_day_four_gives_only_the_days_left() -> None:
    issued = prescribed(line(4, 28, narcotic=True))
    counter = Counter(issued)
    number = issued.prescription_id

    allowed = counter.allowed_on(number, at(days(4)))
    refused = refusal_of(counter, number, (1, 4), when=at(days(4)))

    # 24 days left of 28, a pack covers 7: 3 whole packs.
    assert (allowed.max_quantity, allowed.reason, allowed.next_on) == (
        3,
        "quantity_exceeds_allowed_now",
        None,
    )
    assert (refused.code, refused.max_quantity) == ("quantity_exceeds_allowed_now", 3)


def test_a_narcotic_sixty_days_late_gets_nothing() -> None:
    issued = prescribed(line(4, 28, narcotic=True))
    counter = Counter(issued)

    allowed = counter.allowed_on(issued.prescription_id, at(days(60)))

    assert (allowed.max_quantity, allowed.next_on) == (0, None)
    assert refusal_of(counter, issued.prescription_id, (1, 1), when=at(days(60))).code == (
        "quantity_exceeds_allowed_now"
    )


def test_narcotic_partly_given_the_rest_within_its_period() -> None:
    issued = prescribed(line(4, 28, narcotic=True))
    counter = Counter(issued)
    number = issued.prescription_id
    counter.dispense(number, (1, 2), when=at(days(0)))  # the pharmacy had only two

    assert counter.allowed_on(number, at(days(1))).max_quantity == 2
    # On day 10, 18 days are left: 2 packs in all, both already given.
    assert counter.allowed_on(number, at(days(10))).max_quantity == 0


def test_narcotic_fractions_one_at_a_time() -> None:
    issued = prescribed(line(28, 28, narcotic=True, fraction_days=7))
    counter = Counter(issued)
    number = issued.prescription_id

    first = counter.allowed_on(number, at(days(0)))
    counter.dispense(number, (1, 7), when=at(days(0)))
    too_early = counter.allowed_on(number, at(days(5)))
    one_day_before = counter.allowed_on(number, at(days(6)))

    assert (first.max_quantity, first.next_on) == (7, days(6))
    assert (too_early.max_quantity, too_early.next_on) == (0, days(6))
    assert one_day_before.max_quantity == 7


def test_a_fraction_presented_late_gives_only_the_days_left_of_it() -> None:
    issued = prescribed(line(28, 28, narcotic=True, fraction_days=7))
    counter = Counter(issued)
    number = issued.prescription_id
    counter.dispense(number, (1, 7), when=at(days(0)))  # runs out on day 7

    on_day_three = counter.allowed_on(number, at(days(10)))
    on_day_five = counter.allowed_on(number, at(days(12)))

    assert on_day_three.max_quantity == 7
    assert (on_day_five.max_quantity, on_day_five.reason) == (2, "quantity_exceeds_allowed_now")
    counter.dispense(number, (1, 2), when=at(days(12)))
    # The late fraction ran out on day 14: the next from day 13.
    assert counter.allowed_on(number, at(days(12))).next_on == days(13)


def test_a_narcotic_line_is_decided_against_another_prescription_coverage() -> None:
    first = prescribed(line(4, 28, narcotic=True), seed=1)
    second = prescribed(line(4, 28, narcotic=True), seed=2)
    counter = Counter(first, second)
    counter.dispense(first.prescription_id, (1, 4), when=at(days(0)))  # covers days 0..27

    allowed = counter.allowed_on(second.prescription_id, at(days(2)))
    refused = refusal_of(counter, second.prescription_id, (1, 1), when=at(days(2)))

    assert (allowed.max_quantity, allowed.reason) == (0, "narcotic_overlap")
    assert (refused.code, refused.max_quantity) == ("narcotic_overlap", 0)


def test_an_overlap_of_one_day_is_an_overlap() -> None:
    first = prescribed(line(4, 28, narcotic=True), seed=1)
    second = prescribed(line(4, 28, narcotic=True, fraction_days=7), issued_on=days(6), seed=2)
    counter = Counter(first, second)
    counter.dispense(first.prescription_id, (1, 1), when=at(days(0)))  # days 0..6

    on_day_six = counter.allowed_on(second.prescription_id, at(days(6)))
    on_day_seven = counter.allowed_on(second.prescription_id, at(days(7)))

    assert (on_day_six.max_quantity, on_day_six.next_on) == (0, days(7))
    assert on_day_seven.max_quantity == 1


def test_overlap_allowed_when_the_prescriber_wrote_so() -> None:
    first = prescribed(line(4, 28, narcotic=True), seed=1)
    second = prescribed(line(4, 28, narcotic=True, overlap_allowed=True), seed=2)
    counter = Counter(first, second)
    counter.dispense(first.prescription_id, (1, 4), when=at(days(0)))

    counter.dispense(second.prescription_id, (1, 4), when=at(days(1)))

    assert len(counter.coverage.periods) == 2


def test_a_later_narcotic_period_limits_how_many_days_may_be_covered_now() -> None:
    first = prescribed(line(4, 28, narcotic=True), seed=1)
    second = prescribed(line(4, 28, narcotic=True), seed=2)
    counter = Counter(first, second)
    # Recorded after an outage: the second prescription's packs were handed over on day 14.
    counter.dispense(second.prescription_id, (1, 1), when=at(days(14)))

    allowed = counter.allowed_on(first.prescription_id, at(days(0)))

    assert (allowed.max_quantity, allowed.reason) == (2, "narcotic_overlap")


# --- assimilated products ---------------------------------------------------------------------


def test_an_assimilated_line_is_dispensed_one_month_at_a_time() -> None:
    issued = prescribed(line(3, 84, assimilated=True))

    allowed = Counter(issued).allowed_on(issued.prescription_id, at(days(0)))

    assert (allowed.max_quantity, allowed.reason) == (1, "quantity_exceeds_allowed_now")


# --- answers that look wrong, reported and not fixed here (rules unchanged) -------------------


def test_next_on_names_the_day_after_a_later_period_of_another_prescription() -> None:
    mine = prescribed(line(14, 28, narcotic=True, fraction_days=14), seed=1)
    other = prescribed(line(2, 2, narcotic=True), issued_on=days(1), seed=2)
    counter = Counter(mine, other)
    counter.dispense(other.prescription_id, (1, 2), when=at(days(1)))  # days 1 and 2

    today = counter.allowed_on(mine.prescription_id, at(days(0)))

    assert counter.allowed_on(mine.prescription_id, at(days(3))).max_quantity == 7
    assert (today.max_quantity, today.next_on) == (0, days(3))


def test_packs_already_given_count_before_another_prescription_period() -> None:
    mine = prescribed(line(28, 28, narcotic=True), seed=1)
    other = prescribed(line(28, 28, narcotic=True), issued_on=days(9), seed=2)
    counter = Counter(mine, other)
    counter.dispense(other.prescription_id, (1, 28), when=at(days(10)))  # from day 10
    counter.dispense(mine.prescription_id, (1, 10), when=at(days(0)))  # days 0 to 9

    state = counter.state(mine.prescription_id)

    assert covered_until(state, state.lines[0]) == days(10)
    assert counter.allowed_on(mine.prescription_id, at(days(1))).max_quantity == 0


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
