"""The pharmacist's own procedures (`domain.procedures` through `domain.decisions.dispensing` and
`domain.dispensable`), on real packs: Levothyrox 25 µg in boxes of 30 and 90 tablets continued by
exceptional supply once its prescription expired (CSP L5125-23-1, R5123-2-1), Minidril (an oral
contraceptive, 21 tablets a cycle of 28 days) extended once all of it was given (R5134-4-1/-2)."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest

from domain.catalogue import Catalogue, catalogued, sized
from domain.decisions.dispensing import Dispense, DispenseLine, dispense
from domain.dispensable import Allowance, allowances, covered_until
from domain.errors import DomainError
from domain.events import PrescriptionCancelled, Procedure
from domain.prescription import Prescription, evolve, fold
from domain.procedures import ProcedureAllowance
from domain.views import dispensation_view
from tests.domain.builders import PHARMACIST, PHARMACY_A, PHARMACY_B, moment
from tests.domain.counter import LEVOTHYROX, at, line, prescribed
from tests.domain.real_packs import (
    LEVOTHYROX_30,
    LEVOTHYROX_90,
    MINIDRIL_1,
    MINIDRIL_3,
    RealPacks,
    pack,
)

PACKS = RealPacks()
UNKNOWN_PACK = LEVOTHYROX.code or ""  # a CIP13 the catalogue does not know
CATALOGUE = Catalogue(PACKS)
# Issued on a month's end: dispensed at once, it may be dispensed until 31 January 2026, and a
# first exceptional supply is possible until 28 February 2026 (the month after, clamped).
ISSUED = date(2025, 1, 31)
EXPIRES_ON = date(2026, 1, 31)
LAST_FIRST_SUPPLY = date(2026, 2, 28)


def written(
    code: str, quantity: int, duration_days: int, *, issued_on: date = ISSUED
) -> Prescription:
    state = fold(
        [prescribed(line(quantity, duration_days, product=pack(code)), issued_on=issued_on)]
    )
    assert state is not None
    return catalogued(state, PACKS)


def restricted(change: dict[str, object]) -> Prescription:
    """The expired Levothyrox line (`levothyrox_expired`) with one restriction."""
    state = levothyrox_expired()
    first = msgspec.structs.replace(state.lines[0].prescribed, **change)
    lines = (msgspec.structs.replace(state.lines[0], prescribed=first),)
    return msgspec.structs.replace(state, lines=lines)


def giving(  # noqa: PLR0917 - a dispensing, all of it
    state: Prescription,
    on: date,
    code: str,
    quantity: int,
    procedure: Procedure | None = None,
    finess: str = PHARMACY_A.value,
) -> Prescription:
    """The state after dispensing `quantity` packs of `code` on `on` (10:00 UTC), under
    `procedure` (None: the prescription itself)."""
    command = Dispense(
        pharmacy=PHARMACY_A if finess == PHARMACY_A.value else PHARMACY_B,
        pharmacist=PHARMACIST,
        lines=(DispenseLine(line_no=1, quantity=quantity, product=pack(code)),),
        procedure=msgspec.UNSET if procedure is None else procedure,
    )
    done = dispense(state, command, f"d{state.version}", moment(on), catalogue=CATALOGUE)
    assert done.recorded.procedure == procedure
    return sized(evolve(done.recorded, state), PACKS)


def refused(
    state: Prescription, on: date, code: str, quantity: int, procedure: Procedure
) -> DomainError:
    with pytest.raises(DomainError) as refusal:
        giving(state, on, code, quantity, procedure)
    return refusal.value


def allowed(state: Prescription, on: date) -> Allowance:
    (allowance,) = allowances(state, None, moment(on).at, PHARMACY_A.value)
    return allowance


def levothyrox_expired() -> Prescription:
    """3 boxes of 30 for 3 months, one given on the day it was written: expired since 1 February
    2026."""
    return giving(written(LEVOTHYROX_30, 3, 90), ISSUED, LEVOTHYROX_30, 1)


# --- exceptional supply -----------------------------------------------------------------------


def test_an_expired_chronic_treatment_is_continued_for_a_month_beyond_the_prescription() -> None:
    state = levothyrox_expired()

    after = giving(state, date(2026, 2, 1), LEVOTHYROX_30, 1, "exceptional_supply")

    assert after.dispensations[-1].procedure == "exceptional_supply"
    assert dispensation_view(after.dispensations[-1]).procedure == "exceptional_supply"
    assert after.lines[0].dispensed == 1  # the prescription's own count is unchanged
    assert after.remaining(1) == 2
    assert after.given_under("exceptional_supply", 1)[0].quantity == 1
    assert after.status(date(2026, 2, 1)) == "expired"


def test_a_line_the_catalogue_does_not_count_in_units_is_supplied_in_packs() -> None:
    state = fold([prescribed(line(3, 90, product=pack(UNKNOWN_PACK)), issued_on=ISSUED)])
    assert state is not None
    state = giving(state, ISSUED, UNKNOWN_PACK, 1)

    refusal = refused(state, date(2026, 2, 1), UNKNOWN_PACK, 2, "exceptional_supply")

    assert refusal.detail == (
        "line 1: exceptional supply gives at most 1 pack(s) now, 2 asked (at most 30 days of "
        "treatment at once)"
    )
    assert allowed(state, date(2026, 2, 1)).procedure == ProcedureAllowance(
        procedure="exceptional_supply",
        max_quantity=1,
        max_units=None,
        why="at most 30 days of treatment at once",
    )


def test_an_exceptional_supply_is_one_month_at_a_time() -> None:
    refusal = refused(
        levothyrox_expired(), date(2026, 2, 1), LEVOTHYROX_30, 2, "exceptional_supply"
    )

    assert refusal.code == "exceptional_supply_not_allowed"
    assert refusal.field == "lines[0].quantity"
    assert refusal.max_quantity == 1
    assert refusal.detail == (
        "line 1: exceptional supply gives at most 30 unit(s) now, 60 asked (at most 30 days of "
        "treatment at once)"
    )


def test_a_box_of_90_tablets_is_three_months_and_no_exceptional_supply() -> None:
    refusal = refused(
        levothyrox_expired(), date(2026, 2, 1), LEVOTHYROX_90, 1, "exceptional_supply"
    )

    assert refusal.max_quantity == 1  # a box of 30, the prescribed one
    assert refusal.detail.startswith(
        "line 1: exceptional supply gives at most 30 unit(s) now, 90 asked"
    )


def test_the_first_supply_is_within_the_month_after_expiry_clamped_to_its_end() -> None:
    state = levothyrox_expired()

    giving(state, LAST_FIRST_SUPPLY, LEVOTHYROX_30, 1, "exceptional_supply")
    refusal = refused(state, date(2026, 3, 1), LEVOTHYROX_30, 1, "exceptional_supply")

    assert refusal.detail == (
        "line 1: exceptional supply gives at most 0 unit(s) now, 30 asked (this prescription "
        "expired on 2026-01-31: a first exceptional supply was possible until 2026-02-28)"
    )


def test_a_prescription_still_valid_is_dispensed_not_supplied() -> None:
    refusal = refused(levothyrox_expired(), EXPIRES_ON, LEVOTHYROX_30, 1, "exceptional_supply")

    assert refusal.detail == (
        "line 1: exceptional supply gives at most 0 unit(s) now, 30 asked (this prescription "
        "may be dispensed until 2026-01-31: dispense it)"
    )


def test_three_months_in_all_each_from_a_week_before_the_last_runs_out() -> None:
    state = giving(levothyrox_expired(), date(2026, 2, 1), LEVOTHYROX_30, 1, "exceptional_supply")
    too_early = refused(state, date(2026, 2, 23), LEVOTHYROX_30, 1, "exceptional_supply")
    assert too_early.detail == (
        "line 1: exceptional supply gives at most 0 unit(s) now, 30 asked (the exceptional "
        "supply given covers the treatment until 2026-03-03; the next from 2026-02-24)"
    )

    state = giving(state, date(2026, 2, 24), LEVOTHYROX_30, 1, "exceptional_supply")
    last = allowed(state, date(2026, 3, 26)).procedure
    assert last is not None
    assert (last.max_units, last.why) == (
        30,
        "90 days of treatment in all, some of them given already",
    )
    state = giving(state, date(2026, 3, 26), LEVOTHYROX_30, 1, "exceptional_supply")
    refusal = refused(state, date(2026, 4, 25), LEVOTHYROX_30, 1, "exceptional_supply")

    assert refusal.detail.endswith("(90 days of treatment were given this way, the most in all)")
    assert allowed(state, date(2026, 4, 25)).procedure is None


def test_a_treatment_of_less_than_three_months_is_not_continued() -> None:
    state = giving(written(LEVOTHYROX_30, 3, 89), ISSUED, LEVOTHYROX_30, 1)

    refusal = refused(state, date(2026, 2, 1), LEVOTHYROX_30, 1, "exceptional_supply")

    assert refusal.detail.endswith(
        "(line 1 prescribes 89 days of treatment; an exceptional supply continues one of at "
        "least 90)"
    )


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"narcotic": True}, "a narcotic"),
        ({"assimilated": True}, "assimilated to narcotics"),
        ({"fraction_days": 28}, "given in fractions"),
        ({"designated_finess": PHARMACY_A.value}, "reserved to a designated pharmacy"),
    ],
)
def test_a_restricted_line_is_never_continued(change: dict[str, object], what: str) -> None:
    state = restricted(change)

    refusal = refused(state, date(2026, 2, 1), LEVOTHYROX_30, 1, "exceptional_supply")

    assert refusal.detail.endswith(f"(line 1 is {what}: no procedure continues it)")
    assert allowed(state, date(2026, 2, 1)).procedure is None


def test_a_line_whose_prescriptions_may_not_overlap_is_never_continued() -> None:
    state = levothyrox_expired()
    line = msgspec.structs.replace(state.lines[0], overlap_substance="zolpidem")
    state = msgspec.structs.replace(state, lines=(line,))

    refusal = refused(state, date(2026, 2, 1), LEVOTHYROX_30, 1, "exceptional_supply")

    assert refusal.detail.endswith(
        "(line 1 is a product whose prescriptions may not overlap: no procedure continues it)"
    )
    assert allowed(state, date(2026, 2, 1)).procedure is None


def test_a_supply_does_not_start_the_twelve_months_of_a_prescription_never_dispensed() -> None:
    state = written(LEVOTHYROX_30, 3, 90, issued_on=date(2025, 10, 31))  # until 31 January

    after = giving(state, date(2026, 2, 1), LEVOTHYROX_30, 1, "exceptional_supply")

    assert not after.has_dispensations
    assert after.expires_on() == date(2026, 1, 31)


def test_a_cancelled_prescription_is_not_continued() -> None:
    state = levothyrox_expired()
    cancelled = evolve(
        PrescriptionCancelled(
            prescription_id=state.prescription_id,
            version=state.version + 1,
            at=at(date(2025, 3, 1)),
            prescriber_rpps=state.prescriber_rpps,
            reason="arrêt",
        ),
        state,
    )

    refusal = refused(cancelled, date(2026, 2, 1), LEVOTHYROX_30, 1, "exceptional_supply")

    assert refusal.code == "prescription_cancelled"


def test_dispensable_says_an_expired_line_is_continued_by_exceptional_supply() -> None:
    allowance = allowed(levothyrox_expired(), date(2026, 2, 1))

    assert (allowance.max_quantity, allowance.reason) == (0, "prescription_expired")
    assert allowance.procedure == ProcedureAllowance(
        procedure="exceptional_supply",
        max_quantity=1,
        max_units=30,
        why="at most 30 days of treatment at once",
    )


def test_dispensable_names_no_procedure_while_the_prescription_gives() -> None:
    assert allowed(levothyrox_expired(), EXPIRES_ON).procedure is None


# --- contraceptive extension --------------------------------------------------------------------


def minidril_all_given(issued_on: date = ISSUED) -> Prescription:
    """3 cycles of Minidril (63 tablets, 84 days), all given on the day it was written."""
    return giving(written(MINIDRIL_1, 3, 84, issued_on=issued_on), issued_on, MINIDRIL_1, 3)


def test_an_oral_contraceptive_all_given_is_extended_three_months_at_once() -> None:
    state = minidril_all_given()

    after = giving(state, date(2025, 4, 20), MINIDRIL_1, 3, "contraceptive_extension")

    assert after.dispensations[-1].procedure == "contraceptive_extension"
    assert after.remaining(1) == 0
    assert covered_until(after, after.lines[0]) == covered_until(state, state.lines[0])
    refusal = refused(state, date(2025, 4, 20), MINIDRIL_1, 4, "contraceptive_extension")
    assert (refusal.code, refusal.max_quantity) == ("exceptional_supply_not_allowed", 3)
    assert refusal.detail == (
        "line 1: contraceptive extension gives at most 67 unit(s) now, 84 asked (at most 90 "
        "days of treatment at once)"
    )


def test_six_months_in_all() -> None:
    state = giving(
        minidril_all_given(), date(2025, 4, 20), MINIDRIL_3, 1, "contraceptive_extension"
    )
    state = giving(state, date(2025, 7, 10), MINIDRIL_3, 1, "contraceptive_extension")

    refusal = refused(state, date(2025, 10, 1), MINIDRIL_1, 1, "contraceptive_extension")

    assert refusal.detail == (
        "line 1: contraceptive extension gives at most 9 unit(s) now, 21 asked (180 days of "
        "treatment in all, some of them given already)"
    )


def test_the_rest_of_the_six_months_is_what_may_be_given_last() -> None:
    state = giving(
        minidril_all_given(), date(2025, 4, 20), MINIDRIL_1, 3, "contraceptive_extension"
    )
    state = giving(state, date(2025, 7, 10), MINIDRIL_1, 2, "contraceptive_extension")

    left = allowed(state, date(2025, 9, 1))

    assert left.procedure == ProcedureAllowance(
        procedure="contraceptive_extension",
        max_quantity=1,
        max_units=30,
        why="180 days of treatment in all, some of them given already",
    )


def test_a_contraceptive_not_all_given_is_dispensed_on_the_prescription() -> None:
    state = giving(written(MINIDRIL_1, 3, 84), ISSUED, MINIDRIL_1, 2)

    refusal = refused(state, date(2025, 3, 20), MINIDRIL_1, 1, "contraceptive_extension")

    assert refusal.detail == (
        "line 1: contraceptive extension gives at most 0 unit(s) now, 21 asked (line 1 has 21 "
        "unit(s) left to dispense: dispense it)"
    )
    assert allowed(state, date(2025, 3, 20)).procedure is None


def test_the_prescription_must_be_under_a_year_old() -> None:
    state = minidril_all_given(date(2025, 2, 28))

    giving(state, date(2026, 2, 27), MINIDRIL_1, 1, "contraceptive_extension")
    refusal = refused(state, date(2026, 2, 28), MINIDRIL_1, 1, "contraceptive_extension")

    assert refusal.detail == (
        "line 1: contraceptive extension gives at most 0 unit(s) now, 21 asked (this "
        "prescription of 2025-02-28 is a year old since 2026-02-28)"
    )


@pytest.mark.parametrize(
    ("written_as", "handed"),
    [
        ((LEVOTHYROX_30, 1, 30), LEVOTHYROX_30),  # no contraceptive
        ((MINIDRIL_1, 3, 84), UNKNOWN_PACK),  # a pack whose units are unknown: no tablets
    ],
)
def test_only_an_oral_contraceptive_is_extended(
    written_as: tuple[str, int, int], handed: str
) -> None:
    code, quantity, duration = written_as
    state = giving(written(code, quantity, duration), ISSUED, code, quantity)

    refusal = refused(state, date(2025, 6, 1), handed, 1, "contraceptive_extension")

    assert refusal.detail.endswith("(line 1 is no oral contraceptive the catalogue knows)")


def test_without_a_catalogue_nothing_is_known_as_a_contraceptive() -> None:
    state = msgspec.structs.replace(minidril_all_given(), pack_sizes=None)

    allowance = allowed(state, date(2025, 6, 1))

    assert allowance.procedure is None


def test_dispensable_says_an_all_given_contraceptive_is_extended() -> None:
    allowance = allowed(minidril_all_given(), date(2025, 4, 20))

    assert (allowance.max_quantity, allowance.reason) == (0, None)
    assert allowance.procedure == ProcedureAllowance(
        procedure="contraceptive_extension",
        max_quantity=3,
        max_units=67,
        why="at most 90 days of treatment at once",
    )


def test_a_procedure_given_by_another_pharmacy_counts_too() -> None:
    state = giving(
        minidril_all_given(),
        date(2025, 4, 20),
        MINIDRIL_3,
        1,
        "contraceptive_extension",
        finess=PHARMACY_B.value,
    )
    state = giving(state, date(2025, 7, 10), MINIDRIL_3, 1, "contraceptive_extension")

    last = allowed(state, date(2025, 10, 1)).procedure
    assert last is not None
    assert (last.max_quantity, last.max_units) == (0, 9)


def test_a_withdrawn_procedure_dispensing_counts_nowhere() -> None:
    state = giving(
        minidril_all_given(), date(2025, 4, 20), MINIDRIL_3, 1, "contraceptive_extension"
    )
    withdrawn = msgspec.structs.replace(
        state,
        dispensations=(
            *state.dispensations[:-1],
            msgspec.structs.replace(state.dispensations[-1], withdrawn_at=at(date(2025, 4, 21))),
        ),
    )

    assert (
        allowed(withdrawn, date(2025, 4, 22)).procedure
        == allowed(minidril_all_given(), date(2025, 4, 22)).procedure
    )


def test_what_a_procedure_gave_is_not_counted_by_the_prescriptions_rules() -> None:
    state = giving(
        written(LEVOTHYROX_30, 3, 90, issued_on=date(2025, 10, 31)),
        date(2026, 2, 1),
        LEVOTHYROX_30,
        1,
        "exceptional_supply",
    )

    assert state.handed_over(1) == []
    assert allowed(state, date(2026, 2, 2)).reason == "prescription_expired"
