"""Edges of the pharmacist's own procedures (`domain.procedures`): one tablet left of a line or of
a procedure's months, on pack sizes the snapshot does not have (29 and 62 tablets, as the catalogue
would state them), and a line the prescription gave in a pack of unknown size."""

from __future__ import annotations

from datetime import date

import msgspec

from domain.events import DispensationRecorded, DispensedLine, Procedure
from domain.identifiers import Cip13
from domain.prescription import Prescription, evolve, fold
from domain.procedures import ProcedureAllowance, procedure_allowance
from domain.units import PackSizes
from tests.domain.builders import PHARMACIST, PHARMACY_A, moment
from tests.domain.counter import line, prescribed
from tests.domain.decisions.test_procedures import (
    ISSUED,
    UNKNOWN_PACK,
    allowed,
    giving,
    refused,
    written,
)
from tests.domain.real_packs import LEVOTHYROX_30, MINIDRIL_1, pack

OF_29 = Cip13.from_body("340093000111").value
OF_62 = Cip13.from_body("340093000222").value
SIZES = PackSizes(
    units={LEVOTHYROX_30: 30, OF_29: 29, MINIDRIL_1: 21, OF_62: 62},
    contraceptives=frozenset({MINIDRIL_1, OF_62}),
)


def sized_as(code: str, quantity: int, duration_days: int) -> Prescription:
    state = fold([prescribed(line(quantity, duration_days, product=pack(code)), issued_on=ISSUED)])
    assert state is not None
    return msgspec.structs.replace(state, pack_sizes=SIZES)


def recorded(
    state: Prescription, on: date, code: str, quantity: int, procedure: Procedure | None = None
) -> Prescription:
    """The state after a dispensing as its event says, whatever the rules would decide."""
    event = DispensationRecorded(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=moment(on).at,
        dispensation_id=f"d{state.version}",
        finess=PHARMACY_A.value,
        pharmacist_rpps=PHARMACIST.value,
        dispensed_at=moment(on).at,
        lines=(DispensedLine(line_no=1, quantity=quantity, product=pack(code)),),
        procedure=procedure,
    )
    return evolve(event, state)


def test_one_tablet_left_of_the_three_months_is_what_a_last_supply_gives() -> None:
    state = recorded(sized_as(LEVOTHYROX_30, 3, 90), ISSUED, LEVOTHYROX_30, 1)
    for day, code in ((date(2026, 2, 1), LEVOTHYROX_30), (date(2026, 2, 24), LEVOTHYROX_30)):
        state = recorded(state, day, code, 1, "exceptional_supply")
    state = recorded(state, date(2026, 3, 26), OF_29, 1, "exceptional_supply")  # 89 tablets

    assert allowed(state, date(2026, 4, 24)).procedure == ProcedureAllowance(
        procedure="exceptional_supply",
        max_quantity=0,
        max_units=1,
        why="90 days of treatment in all, some of them given already",
    )


def test_one_tablet_left_on_the_prescription_is_no_extension() -> None:
    state = recorded(sized_as(MINIDRIL_1, 3, 84), ISSUED, OF_62, 1)  # 62 of 63 tablets

    extension = procedure_allowance(state, state.lines[0], "contraceptive_extension", ISSUED)

    assert (extension.max_units, extension.why) == (
        0,
        "line 1 has 1 unit(s) left to dispense: dispense it",
    )


def test_a_pack_of_unknown_size_the_prescription_gave_does_not_count_a_supply_in_packs() -> None:
    state = giving(written(LEVOTHYROX_30, 3, 90), ISSUED, UNKNOWN_PACK, 1)

    refusal = refused(state, date(2026, 2, 1), LEVOTHYROX_30, 2, "exceptional_supply")

    assert refusal.detail.startswith(
        "line 1: exceptional supply gives at most 30 unit(s) now, 60 asked"
    )
    supply = allowed(state, date(2026, 2, 1)).procedure
    assert supply is not None
    assert (supply.max_quantity, supply.max_units) == (1, 30)


def test_a_supply_in_a_pack_of_unknown_size_counts_the_next_in_packs() -> None:
    state = giving(written(LEVOTHYROX_30, 3, 90), ISSUED, LEVOTHYROX_30, 1)
    state = giving(state, date(2026, 2, 1), UNKNOWN_PACK, 1, "exceptional_supply")

    assert allowed(state, date(2026, 2, 24)).procedure == ProcedureAllowance(
        procedure="exceptional_supply",
        max_quantity=1,
        max_units=None,
        why="at most 30 days of treatment at once",
    )


def test_two_tablets_a_day_a_month_is_two_boxes_and_runs_out_in_a_month() -> None:
    state = giving(written(LEVOTHYROX_30, 6, 90), ISSUED, LEVOTHYROX_30, 2)
    state = giving(state, date(2026, 2, 1), LEVOTHYROX_30, 2, "exceptional_supply")

    too_early = refused(state, date(2026, 2, 23), LEVOTHYROX_30, 2, "exceptional_supply")
    giving(state, date(2026, 2, 24), LEVOTHYROX_30, 2, "exceptional_supply")

    assert too_early.detail.endswith("until 2026-03-03; the next from 2026-02-24)")
