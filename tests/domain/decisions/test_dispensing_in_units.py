"""Dispensing counted in units (`domain.units` through `domain.decisions.dispensing` and
`domain.dispensable`), on real packs: Levothyrox 25 µg in boxes of 30 and 90 tablets, Minidril
(a contraceptive) in one and three cycles, and Doliprane syrup, whose label counts no units."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest

from domain.actors import Actor
from domain.catalogue import Catalogue, catalogued, sized
from domain.coverage import NarcoticCoverage, coverage_stream_of
from domain.decisions.dispensing import Dispense, DispenseLine, dispense
from domain.dispensable import Allowance, allowances
from domain.errors import DomainError
from domain.events import Event, PrescriptionCancelled, PrescriptionIssued, Product
from domain.prescription import Prescription, evolve, fold
from domain.views import receipt_of, remaining_units, view_of
from tests.domain.builders import ISSUED_ON, PHARMACIST, PHARMACY_A, PRESCRIBER, moment
from tests.domain.counter import days, line, prescribed
from tests.domain.real_packs import (
    DOLIPRANE_SYRUP,
    EFFENTORA_4,
    EFFENTORA_28,
    LEVOTHYROX_30,
    LEVOTHYROX_90,
    MINIDRIL_1,
    MINIDRIL_3,
    SKENAN,
    RealPacks,
    pack,
)

PACKS = RealPacks()
CATALOGUE = Catalogue(PACKS)
PHARMACIST_ACTOR = Actor(
    role="pharmacist", subject="ph", rpps=PHARMACIST.value, finess=PHARMACY_A.value
)
PRESCRIBER_ACTOR = Actor(role="prescriber", subject="dr", rpps=PRESCRIBER.value)


def written(code: str, quantity: int, duration_days: int) -> PrescriptionIssued:
    return prescribed(line(quantity, duration_days, product=pack(code)))


def counter(*events: Event) -> Prescription:
    state = fold(events)
    assert state is not None
    return catalogued(state, PACKS)


def handing(state: Prescription, code: str, quantity: int, on: date = ISSUED_ON) -> Prescription:
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=quantity, product=pack(code)),),
    )
    recorded = dispense(state, command, f"d{state.version}", moment(on), catalogue=CATALOGUE)
    return sized(evolve(recorded.recorded, state), PACKS)


def refused(state: Prescription, code: str, quantity: int, on: date = ISSUED_ON) -> DomainError:
    with pytest.raises(DomainError) as refusal:
        handing(state, code, quantity, on)
    return refusal.value


def allowed(state: Prescription, on: date = ISSUED_ON) -> Allowance:
    (allowance,) = allowances(state, None, moment(on).at, PHARMACY_A.value)
    return allowance


# --- a line never gives more units than prescribed ---------------------------------------------


def test_three_boxes_of_90_against_three_boxes_of_30_are_270_tablets_for_90() -> None:
    state = counter(written(LEVOTHYROX_30, 3, 90))

    refusal = refused(state, LEVOTHYROX_90, 3)

    assert refusal.code == "quantity_exceeds_remaining"
    assert refusal.detail == "line 1 has 90 units left, 270 asked (3 pack(s) of 90)"


def test_one_box_of_90_gives_the_whole_line_of_three_boxes_of_30() -> None:
    state = counter(written(LEVOTHYROX_30, 3, 90))

    after = handing(state, LEVOTHYROX_90, 1)

    assert after.status(ISSUED_ON) == "dispensed"
    assert after.remaining(1) == 0
    assert remaining_units(after, after.lines[0]) == 0
    (line_now,) = receipt_of(after, "d1", PHARMACY_A.value, ISSUED_ON).lines
    assert (line_now.dispensed, line_now.remaining, line_now.remaining_units) == (1, 0, 0)
    assert refused(after, LEVOTHYROX_30, 1, days(30)).code == "already_dispensed"
    nothing = allowed(after, days(30))
    assert (nothing.max_quantity, nothing.max_units, nothing.remaining_units) == (0, 0, 0)


def test_the_units_a_box_of_30_leaves_of_a_box_of_90_remain_on_the_line() -> None:
    state = handing(counter(written(LEVOTHYROX_90, 1, 90)), LEVOTHYROX_30, 1)

    assert state.status(ISSUED_ON) == "partially_dispensed"
    assert remaining_units(state, state.lines[0]) == 60
    assert state.remaining(1) == 0  # not a whole box of 90 any more
    # What a pack of the prescribed size (90 days) may give; a box of 30 is a month at once.
    assert allowed(state, days(30)).max_units == 60
    assert allowed(state, days(30)).next_on is None  # units may be given today, in smaller boxes
    assert refused(state, LEVOTHYROX_30, 2, days(30)).code == "quantity_exceeds_allowed_now"
    assert remaining_units(handing(state, LEVOTHYROX_30, 1, days(30)), state.lines[0]) == 30


# --- at most 30 days, a longer pack whole up to 3 months, 12 weeks for a contraceptive ----------


def test_a_box_of_30_tablets_is_a_month_and_two_of_them_are_too_many_at_once() -> None:
    state = counter(written(LEVOTHYROX_30, 6, 180))

    refusal = refused(state, LEVOTHYROX_30, 2)

    assert refusal.code == "quantity_exceeds_allowed_now"
    assert refusal.detail == (
        "line 1: at most 30 units may be dispensed now, 60 units asked (one dispensing covers "
        "at most 30 days: 30 unit(s) of this line)"
    )
    assert refusal.max_quantity == 1


def test_one_box_of_90_tablets_of_a_chronic_treatment_is_given_whole() -> None:
    state = counter(written(LEVOTHYROX_30, 6, 180))

    after = handing(state, LEVOTHYROX_90, 1)

    assert remaining_units(after, after.lines[0]) == 90
    assert after.remaining(1) == 3


def test_two_boxes_of_90_are_six_months_at_once_and_refused() -> None:
    state = counter(written(LEVOTHYROX_30, 6, 180))

    refusal = refused(state, LEVOTHYROX_90, 2)

    assert refusal.code == "quantity_exceeds_allowed_now"
    assert "at most 90 units may be dispensed now, 180 units asked" in refusal.detail


def test_a_three_month_contraceptive_pack_is_given_at_once() -> None:
    state = counter(written(MINIDRIL_1, 4, 112))  # one cycle of 21 tablets every 28 days

    after = handing(state, MINIDRIL_3, 1)

    assert remaining_units(after, after.lines[0]) == 21
    assert after.remaining(1) == 1


def test_a_contraceptive_line_allows_12_weeks_in_packs_of_the_prescribed_size() -> None:
    state = counter(written(MINIDRIL_1, 4, 112))

    allowance = allowed(state)

    assert (allowance.max_quantity, allowance.max_units, allowance.remaining_units) == (3, 63, 84)
    assert allowance.reason == "quantity_exceeds_allowed_now"
    assert allowance.why == "one dispensing covers at most 84 days: 63 unit(s) of this line"


def test_a_chronic_line_allows_a_month_in_packs_and_units() -> None:
    allowance = allowed(counter(written(LEVOTHYROX_30, 6, 180)))

    assert (allowance.max_quantity, allowance.max_units, allowance.remaining_units) == (1, 30, 180)


def test_what_remains_limits_a_line_counted_in_units() -> None:
    state = handing(counter(written(LEVOTHYROX_30, 2, 60)), LEVOTHYROX_30, 1)

    allowance = allowed(state, days(25))

    assert (allowance.max_quantity, allowance.max_units, allowance.reason) == (1, 30, None)
    assert allowance.why == "30 unit(s) left on this line"


# --- in packs where the catalogue counts no units ------------------------------------------------


def test_a_syrup_whose_label_counts_no_units_is_counted_in_packs() -> None:
    state = counter(written(DOLIPRANE_SYRUP, 2, 10))

    allowance = allowed(state)

    assert (allowance.max_quantity, allowance.max_units, allowance.remaining_units) == (
        2,
        None,
        None,
    )
    assert remaining_units(state, state.lines[0]) is None


def test_a_pack_the_catalogue_does_not_know_counts_the_line_in_packs() -> None:
    unknown = Product(system="CIP13", code="3400930000007", label="unknown")
    state = counter(written(LEVOTHYROX_30, 3, 90))
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=3, product=unknown),),
    )

    with pytest.raises(DomainError) as refusal:
        dispense(state, command, "d1", moment(), catalogue=CATALOGUE)

    assert refusal.value.detail.startswith("line 1: at most 1 may be dispensed now, 3 asked")


def test_a_line_written_before_the_catalogue_counts_in_units_once_it_is_known() -> None:
    state = fold([written(LEVOTHYROX_30, 3, 90)])
    assert state is not None

    assert allowed(state).max_units is None
    assert allowed(sized(state, PACKS)).max_units == 30


def test_a_box_lasting_6_months_is_more_than_3_months_at_once() -> None:
    state = counter(written(LEVOTHYROX_90, 2, 360))  # one tablet every other day

    allowance = allowed(state)

    assert (allowance.max_quantity, allowance.max_units) == (0, 45)
    assert allowance.why == "one dispensing covers at most 90 days: 45 unit(s) of this line"
    assert refused(state, LEVOTHYROX_90, 1).code == "quantity_exceeds_allowed_now"


def test_a_box_of_30_lasting_two_months_is_given_whole() -> None:
    state = counter(written(LEVOTHYROX_30, 3, 180))  # one tablet every other day

    allowance = allowed(state)

    assert (allowance.max_quantity, allowance.max_units) == (1, 30)
    assert allowance.why == "one dispensing covers at most 60 days: 30 unit(s) of this line"


def test_more_unknown_packs_than_remain_are_refused_in_packs() -> None:
    unknown = Product(system="CIP13", code="3400930000007", label="unknown")
    state = counter(written(LEVOTHYROX_30, 3, 90))
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=4, product=unknown),),
    )

    with pytest.raises(DomainError) as refusal:
        dispense(state, command, "d1", moment(), catalogue=CATALOGUE)

    assert (refusal.value.code, refusal.value.detail) == (
        "quantity_exceeds_remaining",
        "line 1 has 3 left, 4 asked",
    )


# --- what each reader is shown --------------------------------------------------------------------


def test_the_read_shows_the_units_left_to_whoever_sees_the_execution() -> None:
    state = handing(counter(written(LEVOTHYROX_90, 1, 90)), LEVOTHYROX_30, 1)
    hidden = msgspec.structs.replace(state, execution_view_consent=False)
    cancelled = evolve(
        PrescriptionCancelled(
            prescription_id=state.prescription_id,
            version=state.version + 1,
            at=moment().at,
            prescriber_rpps=PRESCRIBER.value,
            reason="arrêt",
        ),
        state,
    )

    assert view_of(state, PHARMACIST_ACTOR, ISSUED_ON).lines[0].remaining_units == 60
    assert view_of(hidden, PRESCRIBER_ACTOR, ISSUED_ON).lines[0].remaining_units is None
    assert view_of(cancelled, PHARMACIST_ACTOR, ISSUED_ON).lines[0].remaining_units == 0


def test_a_month_in_days_that_are_not_whole_is_said_to_a_tenth() -> None:
    state = counter(written(LEVOTHYROX_30, 3, 100))  # a box lasts 33 days and a third

    allowance = allowed(state)

    assert allowance.why == "one dispensing covers at most 33.3 days: 30 unit(s) of this line"


def test_a_pack_the_catalogue_does_not_know_handed_over_before_counts_the_line_in_packs() -> None:
    unknown = Product(system="CIP13", code="3400930000007", label="unknown")
    state = counter(written(LEVOTHYROX_30, 3, 90))
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=1, product=unknown),),
    )
    recorded = dispense(state, command, "d1", moment(), catalogue=CATALOGUE).recorded
    after = sized(evolve(recorded, state), PACKS)

    assert allowed(after, days(30)).max_units is None
    assert remaining_units(after, after.lines[0]) is None
    assert after.remaining(1) == 2


# --- narcotics in units -----------------------------------------------------------------------


def narcotic(
    quantity: int, duration_days: int, fraction_days: int | None, code: str = SKENAN
) -> PrescriptionIssued:
    return prescribed(
        line(
            quantity,
            duration_days,
            narcotic=True,
            fraction_days=fraction_days,
            product=pack(code),
        )
    )


def test_a_fraction_of_a_narcotic_counted_in_units_gives_one_whole_pack_at_least() -> None:
    state = counter(narcotic(2, 28, 7))  # a box of 14 capsules lasts 14 days

    allowance = allowed(state)

    assert (allowance.max_quantity, allowance.max_units) == (1, 14)
    assert allowance.why == "a fraction covers at most 7 days: 14 unit(s)"


def test_a_narcotic_fraction_of_one_day_opens_again_the_next_day() -> None:
    state = counter(narcotic(28, 28, 1))  # 28 boxes of 14 capsules, one box a day

    allowance = allowed(state)

    assert (allowance.max_quantity, allowance.next_on) == (1, days(1))


def test_a_narcotic_handed_over_in_a_pack_the_catalogue_does_not_know_covers_its_packs() -> None:
    unknown = Product(system="CIP13", code="3400930000007", label="unknown")
    state = counter(narcotic(2, 28, None))
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=1, product=unknown),),
    )
    coverage = NarcoticCoverage(stream_id=coverage_stream_of(state.patient_ins))

    recorded = dispense(state, command, "d1", moment(), coverage, catalogue=CATALOGUE)

    assert recorded.coverage is not None
    (period,) = recorded.coverage.periods
    assert (period.first_day, period.until) == (ISSUED_ON, days(14))


def test_a_narcotic_fraction_is_one_pack_handed_over_when_that_pack_lasts_longer() -> None:
    state = counter(narcotic(7, 28, 7, EFFENTORA_4))  # a tablet a day, in fractions of 7 days
    command = Dispense(
        pharmacy=PHARMACY_A,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=1, product=pack(EFFENTORA_28)),),
    )
    coverage = NarcoticCoverage(stream_id=coverage_stream_of(state.patient_ins))

    recorded = dispense(state, command, "d1", moment(), coverage, catalogue=CATALOGUE)

    assert recorded.coverage is not None
    (period,) = recorded.coverage.periods
    assert (period.first_day, period.until) == (ISSUED_ON, days(28))
    assert allowed(state).max_units == 7  # in boxes of 4, a fraction is 7 days
