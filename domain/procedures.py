"""The pharmacist's own procedures: dispensing beyond what a prescription itself still gives.

- **Exceptional supply** ("dispensation supplémentaire exceptionnelle", CSP L5125-23-1 and
  R5123-2-1): to avoid interrupting a chronic treatment when a renewable prescription has
  expired, the pharmacist continues it at the prescribed dosage, one month at a time, three
  months at most, the first supply within the month after expiry, and informs the prescriber.
  The line must prescribe at least three months of treatment (R5123-2-1, 1°); narcotics and
  assimilated products are excluded (the arrêté of L5125-23-1; meddispar.fr).
- **Contraceptive extension** ("dispensation supplémentaire de contraceptifs oraux", CSP
  L5125-23-1 second paragraph, R5134-4-1 and R5134-4-2): once everything prescribed was given,
  on a prescription less than a year old, the pharmacist gives oral contraceptives for six more
  months at most, never more than three months at once.

ordo's reading, where the texts are loose:
- "Restricted" lines are never continued this way, by either procedure: narcotic, assimilated,
  given in fractions, whose prescriptions may not overlap ("chevauchement interdit"), or
  reserved to a designated pharmacy (`RESTRICTIONS`).
- A month is 30 days, three months 90 and six months 180; the days a dispensing covers are
  counted at the prescribed dosage, in units where the catalogue knows the packs' units
  (`domain.units`), else in packs.
- An exceptional supply after the first is given from 7 days before the previous ones run out,
  as a renewal is (`domain.dispensable`'s no-stockpiling rule).
- An oral contraceptive is a pack the catalogue knows as a contraceptive and whose tablets it
  counts (an implant or an intrauterine system has no tablets).

What a procedure gives is beyond the prescription: it never counts against its lines
(`Prescription.given_under`), only against the procedure's own limits. Everything is decided at
the dispensing instant in the pharmacy's calendar (`domain.calendar`); whatever refuses, the
code is `exceptional_supply_not_allowed`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta
from fractions import Fraction

import msgspec

from domain.calendar import local_day
from domain.errors import DomainError
from domain.events import DispensedLine, Procedure, Product
from domain.prescription import LIFETIME_MONTHS, LineState, Prescription, add_months
from domain.units import Counting, counting

PROCEDURES: tuple[Procedure, ...] = ("exceptional_supply", "contraceptive_extension")
NAMES: dict[Procedure, str] = {
    "exceptional_supply": "exceptional supply",
    "contraceptive_extension": "contraceptive extension",
}

# R5123-2-1: a treatment prescribed for at least 3 months, continued one month at a time, 3
# months at most, the first supply within the month after the prescription expired.
CHRONIC_MIN_DAYS = 90
SUPPLY_AT_ONCE_DAYS = 30
SUPPLY_IN_ALL_DAYS = 90
FIRST_SUPPLY_WITHIN_MONTHS = 1
NEXT_SUPPLY_MARGIN_DAYS = 7  # ordo's reading: as a renewal may be collected a week early
# R5134-4-1/-2: 6 months in all, at most 3 months at once, on a prescription under a year old.
CONTRACEPTIVE_AT_ONCE_DAYS = 90
CONTRACEPTIVE_IN_ALL_DAYS = 180

RESTRICTIONS: tuple[tuple[Callable[[LineState], bool], str], ...] = (
    (lambda line: line.prescribed.narcotic, "a narcotic"),
    (lambda line: line.prescribed.assimilated, "assimilated to narcotics"),
    (lambda line: line.prescribed.fraction_days is not None, "given in fractions"),
    (
        lambda line: line.overlap_substance is not None,
        "a product whose prescriptions may not overlap",
    ),
    (
        lambda line: line.prescribed.designated_finess is not None,
        "reserved to a designated pharmacy",
    ),
)


class ProcedureAllowance(msgspec.Struct, frozen=True, kw_only=True):
    """What one procedure allows on one line at one instant: the most packs of the prescribed
    size, the most units on a line counted in units (None in packs), and why that much."""

    procedure: Procedure
    max_quantity: int
    max_units: int | None
    why: str


class _Cap(msgspec.Struct, frozen=True):
    """The most a procedure gives now, in the line's count (units or packs), and why."""

    amount: int
    why: str


def procedure_allowance(
    state: Prescription, line: LineState, procedure: Procedure, day: date
) -> ProcedureAllowance:
    """The most `procedure` gives of the line on `day`, in packs of the prescribed size."""
    count = _count(state, line, procedure, None)
    cap = _cap(state, line, procedure, day, count)
    return ProcedureAllowance(
        procedure=procedure,
        max_quantity=cap.amount // count.per_pack,
        max_units=cap.amount if count.in_units else None,
        why=cap.why,
    )


def open_procedure(state: Prescription, line: LineState, day: date) -> ProcedureAllowance | None:
    """The procedure that continues the line on `day`, with how much, when one gives
    something (a line the prescription itself still gives of needs none)."""
    for procedure in PROCEDURES:
        allowed = procedure_allowance(state, line, procedure, day)
        if allowed.max_quantity or allowed.max_units:
            return allowed
    return None


def check_procedure(
    state: Prescription, procedure: Procedure, handed: DispensedLine, day: date, field: str
) -> None:
    """`handed` may be given under `procedure` on `day`, else `exceptional_supply_not_allowed`
    naming `field` (the quantity asked) with the most that may be given."""
    line = state.line(handed.line_no)
    assert line is not None  # the dispensing's lines were checked first
    count = _count(state, line, procedure, handed.product)
    cap = _cap(state, line, procedure, day, count)
    asked = count.amount(handed.quantity, handed.product)
    if asked <= cap.amount:
        return
    unit = "unit(s)" if count.in_units else "pack(s)"
    raise DomainError(
        "exceptional_supply_not_allowed",
        f"line {handed.line_no}: {NAMES[procedure]} gives at most {cap.amount} {unit} now, "
        f"{asked} asked ({cap.why})",
        field=field,
        max_quantity=cap.amount // count.per_pack,
    )


# --- the rules ---------------------------------------------------------------------------------


def _cap(
    state: Prescription, line: LineState, procedure: Procedure, day: date, count: Counting
) -> _Cap:
    restricted = [what for applies, what in RESTRICTIONS if applies(line)]
    if restricted:
        return _Cap(0, f"line {line.line_no} is {restricted[0]}: no procedure continues it")
    if procedure == "exceptional_supply":
        return _exceptional_supply(state, line, day, count)
    return _contraceptive_extension(state, line, day, count)


def _exceptional_supply(state: Prescription, line: LineState, day: date, count: Counting) -> _Cap:
    duration = line.prescribed.duration_days
    if duration < CHRONIC_MIN_DAYS:
        return _Cap(
            0,
            f"line {line.line_no} prescribes {duration} days of treatment; an exceptional "
            f"supply continues one of at least {CHRONIC_MIN_DAYS}",
        )
    expires_on = state.expires_on()
    if not state.is_expired(day):
        return _Cap(0, f"this prescription may be dispensed until {expires_on}: dispense it")
    given = given_days(state, line.line_no, count, "exceptional_supply")
    per_unit = count.days_per_unit(line.prescribed)
    if not given:
        last = add_months(expires_on, FIRST_SUPPLY_WITHIN_MONTHS)
        if day > last:
            return _Cap(
                0,
                f"this prescription expired on {expires_on}: a first exceptional supply "
                f"was possible until {last}",
            )
    else:
        runs_out = given[0][0] + timedelta(
            days=math.ceil(sum(amount for _, amount in given) * per_unit)
        )
        earliest = runs_out - timedelta(days=NEXT_SUPPLY_MARGIN_DAYS)
        if day < earliest:
            return _Cap(
                0,
                f"the exceptional supply given covers the treatment until {runs_out}; "
                f"the next from {earliest}",
            )
    return _within(given, per_unit, SUPPLY_AT_ONCE_DAYS, SUPPLY_IN_ALL_DAYS)


def _contraceptive_extension(
    state: Prescription, line: LineState, day: date, count: Counting
) -> _Cap:
    sizes = state.pack_sizes
    if sizes is None or not count.in_units or not sizes.contraceptive(line.prescribed.product):
        return _Cap(0, f"line {line.line_no} is no oral contraceptive the catalogue knows")
    left = state.amount_left(line, state.counting(line))
    if left > 0:
        return _Cap(0, f"line {line.line_no} has {left} unit(s) left to dispense: dispense it")
    year_old = add_months(state.issued_on, LIFETIME_MONTHS)
    if day >= year_old:
        return _Cap(0, f"this prescription of {state.issued_on} is a year old since {year_old}")
    given = given_days(state, line.line_no, count, "contraceptive_extension")
    per_unit = count.days_per_unit(line.prescribed)
    return _within(given, per_unit, CONTRACEPTIVE_AT_ONCE_DAYS, CONTRACEPTIVE_IN_ALL_DAYS)


def _within(
    given: list[tuple[date, int]], per_unit: Fraction, at_once_days: int, in_all_days: int
) -> _Cap:
    """What is left of `in_all_days` of treatment after `given`, at most `at_once_days`."""
    left = math.floor(in_all_days / per_unit) - sum(amount for _, amount in given)
    if left <= 0:
        return _Cap(0, f"{in_all_days} days of treatment were given this way, the most in all")
    at_once = math.floor(at_once_days / per_unit)
    if at_once < left:
        return _Cap(at_once, f"at most {at_once_days} days of treatment at once")
    return _Cap(left, f"{in_all_days} days of treatment in all, some of them given already")


def _count(
    state: Prescription, line: LineState, procedure: Procedure, handing: Product | None
) -> Counting:
    """The line in units when the units of its prescribed pack, of every pack the procedure
    gave and of `handing` are known, else in packs."""
    handed = [given.product for given in state.given_under(procedure, line.line_no)]
    if handing is not None:
        handed.append(handing)
    return counting(state.pack_sizes, line.prescribed.product, handed)


def given_days(
    state: Prescription, line_no: int, count: Counting, procedure: Procedure | None
) -> list[tuple[date, int]]:
    """(day handed over, amount in the line's count) of what the standing dispensings gave of
    the line under `procedure` (None: on the prescription itself), in the order handed over."""
    given = sorted(
        (
            dispensation.dispensed_at,
            local_day(dispensation.dispensed_at, dispensation.finess),
            sum(
                count.amount(x.quantity, x.product)
                for x in dispensation.lines
                if x.line_no == line_no
            ),
        )
        for dispensation in state.standing_dispensations
        if dispensation.procedure == procedure and dispensation.quantity_of(line_no)
    )
    return [(day, amount) for _, day, amount in given]
