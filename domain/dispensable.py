"""How much may be dispensed now: one pure decision, used by the read and by the command.

`allowances(state, coverage, at, finess)` answers, for every line, the most packs a dispensing
at that instant in that pharmacy may give, the rule that limits it, and the first day on which
the line may be dispensed again. `commands.dispense` refuses exactly what this refuses, so an
LGO that asks first is never surprised (domain.md, "How much may be dispensed now").

Every day is a calendar day in a pharmacy's calendar (`domain.calendar`): today is the caller
pharmacy's day, and an earlier dispensing's day is the day where it was handed over.

A line is counted in units where the catalogue knows its packs' units, else in packs
(`domain.units`); every amount below is in the line's count, and `days_per_unit =
duration_days / (quantity × units per prescribed pack)` (a pack is the unit of a line counted in
packs). The rules, per line:

- one month at a time: one dispensing covers at most 30 days, or the pack's own duration up to
  3 months when it lasts longer, or 12 weeks for a contraceptive (R5132-22; in packs, 30 days
  or one pack's duration: `domain.units.Counting.max_days_at_once`);
- no stockpiling (non-narcotic lines): a new dispensing starts at most 7 days before
  `covered_until = first dispensing day + Σ days covered`;
- narcotics without fractions: the whole line is one period from `issued_on`; presented within
  3 days, all of it; later, only the days left of it (`floor(days_left / days_per_unit)` in
  all, less what was already given);
- narcotics in fractions of F days: each dispensing is a fraction of at most F days; the next
  may start 1 day before the previous one runs out; the 3-day rule counts from `issued_on` for
  the first fraction and from the day the previous one runs out for the next. A fraction whose
  whole period went by without being collected is lost, and with it the rest of the line (our
  reading of R5132-30: the pharmacist gives only "the treatment left to run"); the prescriber
  writes a new prescription;
- products the catalogue dispenses in fractions ("délivrance fractionnée de 7 jours":
  buprénorphine) but which are no narcotics: the same fractions, each of at most F days and the
  next from 1 day before the previous one runs out, without the 3-day rule (R5132-30 is the
  narcotics'); one month at a time still applies;
- no overlap: a narcotic dispensing may not cover a day that a narcotic dispensing of another
  prescription of the same patient covers, unless the line carries `overlap_allowed` (R5132-33);
  nor may a dispensing of a product whose conditions say "chevauchement interdit" (zolpidem)
  cover a day that another prescription of the same substance covers;
- designated pharmacy: a line naming a pharmacy (`designated_finess`, CSS L162-4-2: "le
  pharmacien désigné par le patient" for products misused or diverted) is dispensed by that
  pharmacy only; any other gets nothing of it.

A line the prescription itself gives nothing more of (expired, or all given) may still be
continued by one of the pharmacist's own procedures: its allowance says which, and how much
(`domain.procedures`). What a procedure gave counts in none of the rules above.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Literal

import msgspec

from domain.calendar import local_day
from domain.checks import CANCELLED
from domain.coverage import CoveredPeriod, NarcoticCoverage
from domain.events import DispensedLine, Product
from domain.prescription import Dispensation, LineState, Prescription
from domain.procedures import ProcedureAllowance, given_days, open_procedure
from domain.units import Counting

LimitingRule = Literal[
    "quantity_exceeds_allowed_now",
    "narcotic_overlap",
    "designated_pharmacy_only",
    "prescription_cancelled",
    "prescription_expired",
]

STOCKPILING_MARGIN_DAYS = 7  # our design: a renewal may be collected a week early
FRACTION_MARGIN_DAYS = 1  # the next fraction 1 day before the previous one runs out
NARCOTIC_GRACE_DAYS = 3  # R5132-30: full quantity if presented within 3 days
NEXT_ON_SEARCH_STEPS = 64


class Allowance(msgspec.Struct, frozen=True, kw_only=True):
    """What one line allows at one instant; `reason` is None when only what remains limits it.

    `max_quantity` is in packs of the prescribed size; a line counted in units also says the
    most units (`max_units`) and what remains (`remaining_units`), None in packs."""

    line_no: int
    max_quantity: int
    reason: LimitingRule | None
    next_on: date | None
    why: str = ""
    max_units: int | None = None
    remaining_units: int | None = None
    # The procedure that continues a line the prescription gives nothing more of, if any.
    procedure: ProcedureAllowance | None = None


class _Verdict(msgspec.Struct, frozen=True):
    """One rule's cap at one day (in the line's count), and the day it stops blocking (None:
    never) when it is 0."""

    packs: int
    reason: LimitingRule | None = None
    why: str = ""
    opens_on: date | None = None


_UNLIMITED = _Verdict(packs=1 << 30)


class _Asked(msgspec.Struct, frozen=True):
    """The question: this prescription, the patient's other narcotic periods, this instant,
    this pharmacy and its day, and the packs about to be handed over (by line; a line not
    named gets its prescribed pack)."""

    state: Prescription
    others: tuple[CoveredPeriod, ...]
    at: datetime
    finess: str
    day: date
    handing: Mapping[int, Product]


def allowances(
    state: Prescription,
    coverage: NarcoticCoverage | None,
    at: datetime,
    finess: str,
    *,
    lines: Collection[int] | None = None,
    next_on: bool = True,
    handing: Mapping[int, Product] | None = None,
) -> tuple[Allowance, ...]:
    """Per line (or only `lines`): the most a dispensing at `at` in pharmacy `finess` may give,
    and why; `handing`: the pack about to be handed over per line, when it is not the
    prescribed one. `next_on=False` leaves out when the line opens again: the command needs
    only the most it may give now, and searching the days ahead is most of the work."""
    others = coverage.of_other_prescriptions(state.prescription_id) if coverage else ()
    asked = _Asked(state, others, at, finess, local_day(at, finess), handing or {})
    wanted = state.lines if lines is None else [x for x in state.lines if x.line_no in lines]
    return tuple(_allowance(asked, line, with_next_on=next_on) for line in wanted)


def covered_until(state: Prescription, line: LineState) -> date | None:
    """The day the line's dispensings so far run out (None before the first one)."""
    count = state.counting(line)
    given = given_days(state, line.line_no, count, None)
    if not given:
        return None
    per_unit = count.days_per_unit(line.prescribed)
    if line.prescribed.narcotic or line.prescribed.fraction_days is not None:
        return _chain_end(given, per_unit)
    first_day = given[0][0]
    total = sum((amount * per_unit for _, amount in given), Fraction(0))
    return first_day + timedelta(days=math.ceil(total))


def period_covered(
    state: Prescription, line: LineState, day: date, handed: DispensedLine
) -> tuple[date, date]:
    """Days [first, until) that the packs `handed` over on `day` for this line (a narcotic, or a
    product whose overlap is forbidden) cover: from that day, or from when the packs already
    given run out if that is later (the patient takes them one after the other)."""
    count = state.counting(line, handing=handed.product)
    given = given_days(state, line.line_no, count, None)
    per_unit = count.days_per_unit(line.prescribed)
    more = count.amount(handed.quantity, handed.product)
    return _first_day_of_more(given, per_unit, day), _chain_end([*given, (day, more)], per_unit)


# --- one line ---------------------------------------------------------------------------------


def _allowance(asked: _Asked, line: LineState, *, with_next_on: bool = True) -> Allowance:
    state = asked.state
    handing = asked.handing.get(line.line_no)
    count = state.counting(line, handing=handing)
    verdict = _verdict(
        state, line, asked.others, asked.day, count=count, handing=handing, finess=asked.finess
    )
    if state.cancelled:
        return Allowance(
            line_no=line.line_no,
            max_quantity=0,
            reason=verdict.reason,
            next_on=None,
            why=verdict.why,
        )
    remaining = state.amount_left(line, count)
    if remaining == 0:
        why = "nothing remains on this line"
        return Allowance(
            line_no=line.line_no,
            max_quantity=0,
            reason=None,
            next_on=None,
            why=why,
            max_units=_units(count, 0),
            remaining_units=_units(count, 0),
            procedure=open_procedure(state, line, asked.day),
        )
    expired = verdict.reason == "prescription_expired"
    amount = min(remaining, verdict.packs)
    limited = verdict.packs < remaining
    packs = amount // count.per_pack
    what = f"{remaining} unit(s)" if count.in_units else str(remaining)
    return Allowance(
        line_no=line.line_no,
        max_quantity=packs,
        reason=verdict.reason if limited else None,
        next_on=_next_on(asked, line, packs) if with_next_on else None,
        why=verdict.why if limited else f"{what} left on this line",
        max_units=_units(count, amount),
        remaining_units=_units(count, remaining),
        procedure=open_procedure(state, line, asked.day) if expired else None,
    )


def _units(count: Counting, amount: int) -> int | None:
    return amount if count.in_units else None


def _verdict(
    state: Prescription,
    line: LineState,
    others: tuple[CoveredPeriod, ...],
    day: date,
    *,
    count: Counting,
    finess: str,
    handing: Product | None = None,
) -> _Verdict:
    """The tightest rule for this line on this day in pharmacy `finess`, whatever remains."""
    if state.cancelled:
        return _Verdict(0, "prescription_cancelled", CANCELLED)
    if state.is_expired(day):
        why = f"this prescription could be dispensed until {state.expires_on()}"
        return _Verdict(0, "prescription_expired", why)
    designated = line.prescribed.designated_finess
    if designated is not None and designated != finess:
        why = f"line {line.line_no} names pharmacy {designated}, the only one that may dispense it"
        return _Verdict(0, "designated_pharmacy_only", why)
    if line.prescribed.narcotic:
        verdicts: Iterable[_Verdict] = (
            _narcotic_period(state, line, day, count, handing),
            _no_overlap(state, line, others, day, count),
        )
    else:
        paced = (
            _no_stockpiling(state, line, day)
            if line.prescribed.fraction_days is None
            else _in_fractions(state, line, day, count, handing, narcotic=False)
        )
        verdicts = (
            _one_month(line, count, handing),
            paced,
            _no_overlap(state, line, others, day, count),
        )
    return min(verdicts, key=lambda v: v.packs)


def _one_month(line: LineState, count: Counting, handing: Product | None) -> _Verdict:
    per_unit = count.days_per_unit(line.prescribed)
    days = count.max_days_at_once(line.prescribed, handing)
    amount = math.floor(days / per_unit)
    unit = "unit(s)" if count.in_units else "pack(s)"
    why = f"one dispensing covers at most {_days_text(days)} days: {amount} {unit} of this line"
    return _Verdict(amount, "quantity_exceeds_allowed_now", why)


def _days_text(days: Fraction) -> str:
    return str(days) if days.denominator == 1 else f"{float(days):.1f}"


def _no_stockpiling(state: Prescription, line: LineState, day: date) -> _Verdict:
    until = covered_until(state, line)
    if until is None:
        return _UNLIMITED
    earliest = until - timedelta(days=STOCKPILING_MARGIN_DAYS)
    if day >= earliest:
        return _UNLIMITED
    why = f"what was dispensed covers the treatment until {until}; the next from {earliest}"
    return _Verdict(0, "quantity_exceeds_allowed_now", why, opens_on=earliest)


def _narcotic_period(
    state: Prescription, line: LineState, day: date, count: Counting, handing: Product | None
) -> _Verdict:
    if line.prescribed.fraction_days is None:
        return _whole_narcotic_line(state, line, day, count)
    return _in_fractions(state, line, day, count, handing, narcotic=True)


def _whole_narcotic_line(
    state: Prescription, line: LineState, day: date, count: Counting
) -> _Verdict:
    duration = line.prescribed.duration_days
    late = (day - state.issued_on).days
    if late <= NARCOTIC_GRACE_DAYS:
        return _UNLIMITED
    days_left = max(0, duration - late)
    given = sum(amount for _, amount in given_days(state, line.line_no, count, None))
    amount = max(0, math.floor(days_left / count.days_per_unit(line.prescribed)) - given)
    why = (
        f"narcotic presented {late} days after {state.issued_on}: only the {days_left} days "
        f"left of its {duration} may be dispensed"
    )
    return _Verdict(amount, "quantity_exceeds_allowed_now", why)


def _in_fractions(
    state: Prescription,
    line: LineState,
    day: date,
    count: Counting,
    handing: Product | None,
    *,
    narcotic: bool,
) -> _Verdict:
    """A line dispensed in fractions of `fraction_days`; a narcotic's fraction presented late
    gives only the days left of it (the 3-day rule)."""
    fraction = line.prescribed.fraction_days
    assert fraction is not None  # the caller's condition
    # A fraction covers at most its days, or one pack handed over when that lasts longer.
    longest = max(Fraction(fraction), count.pack_days(line.prescribed, handing))
    given = given_days(state, line.line_no, count, None)
    per_unit = count.days_per_unit(line.prescribed)
    reference = _chain_end(given, per_unit) if given else state.issued_on
    if given and day < reference - timedelta(days=FRACTION_MARGIN_DAYS):
        earliest = reference - timedelta(days=FRACTION_MARGIN_DAYS)
        why = f"the previous fraction runs out on {reference}; the next from {earliest}"
        return _Verdict(0, "quantity_exceeds_allowed_now", why, opens_on=earliest)
    late = (day - reference).days
    unit = "unit(s)" if count.in_units else "pack(s)"
    if late <= NARCOTIC_GRACE_DAYS or not narcotic:
        amount = math.floor(longest / per_unit)
        why = f"a fraction covers at most {fraction} days: {amount} {unit}"
        return _Verdict(amount, "quantity_exceeds_allowed_now", why)
    days_left = max(0, fraction - late)
    why = (
        f"fraction presented {late} days after {reference}: only the {days_left} days left "
        f"of its {fraction} may be dispensed"
    )
    return _Verdict(math.floor(days_left / per_unit), "quantity_exceeds_allowed_now", why)


def _no_overlap(
    state: Prescription,
    line: LineState,
    others: tuple[CoveredPeriod, ...],
    day: date,
    count: Counting,
) -> _Verdict:
    """More of this line would cover the days from `first` (today, or when what was already
    given runs out): none of them may be a day another prescription of its kind covers (a
    narcotic's, or one of the same substance for a product whose overlap is forbidden)."""
    if not line.covers_days or line.prescribed.overlap_allowed:
        return _UNLIMITED
    substance = line.overlap_substance  # None for a narcotic: every narcotic's periods
    others = tuple(p for p in others if p.substance == substance)
    if not others:
        return _UNLIMITED
    kind = "narcotic prescription" if substance is None else f"prescription of {substance}"
    per_unit = count.days_per_unit(line.prescribed)
    first = _first_day_of_more(given_days(state, line.line_no, count, None), per_unit, day)
    covering = [p for p in others if p.first_day <= first < p.until]
    if covering:
        free_on = _first_uncovered_day(others, first)
        why = (
            f"another {kind} of this patient covers {first} "
            f"(until {max(p.until for p in covering)})"
        )
        return _Verdict(0, "narcotic_overlap", why, opens_on=free_on)
    later = [p.first_day for p in others if p.first_day > first]
    if not later:
        return _UNLIMITED
    starts = min(later)
    amount = math.floor((starts - first).days / per_unit)
    why = f"another {kind} of this patient covers the days from {starts}"
    # Too few days before it for one pack: the line opens again once that period is over.
    opens_on = _first_uncovered_day(others, starts) if amount == 0 else None
    return _Verdict(amount, "narcotic_overlap", why, opens_on=opens_on)


def _first_uncovered_day(periods: tuple[CoveredPeriod, ...], day: date) -> date:
    while True:
        ends = [p.until for p in periods if p.first_day <= day < p.until]
        if not ends:
            return day
        day = max(ends)


# --- history of one line ----------------------------------------------------------------------


def _first_day_of_more(given: list[tuple[date, int]], per_unit: Fraction, day: date) -> date:
    """The first day more of a narcotic line handed over on `day` covers: that day, or when
    what was already given runs out if that is later."""
    return max(day, _chain_end(given, per_unit)) if given else day


def _chain_end(given: list[tuple[date, int]], per_unit: Fraction) -> date:
    """When a narcotic line's fractions run out: each starts when handed over, or when the
    previous one runs out if it was collected early."""
    end = Fraction(0)
    for day, amount in given:
        end = max(end, Fraction(day.toordinal())) + amount * per_unit
    return date.fromordinal(math.ceil(end))


# --- when more becomes possible ---------------------------------------------------------------


def _next_on(asked: _Asked, line: LineState, packs_now: int) -> date | None:
    """The first day the line may be dispensed again once `packs_now` prescribed packs are
    given today."""
    day = asked.day
    after = _as_if_dispensed(asked.state, line.line_no, packs_now, asked.at, asked.finess)
    line_after = after.line(line.line_no)
    assert line_after is not None
    count = after.counting(line_after)
    if after.amount_left(line_after, count) <= 0:  # never asked of a cancelled prescription
        return None
    candidate = day + timedelta(days=1) if packs_now else day
    for _ in range(NEXT_ON_SEARCH_STEPS):
        verdict = _verdict(
            after, line_after, asked.others, candidate, count=count, finess=asked.finess
        )
        if verdict.packs > 0:
            return candidate if candidate > day else None
        if verdict.opens_on is None or verdict.opens_on <= candidate:
            return None
        candidate = verdict.opens_on
    return None


def _as_if_dispensed(
    state: Prescription, line_no: int, packs: int, at: datetime, finess: str
) -> Prescription:
    if packs == 0:
        return state
    line = state.line(line_no)
    assert line is not None
    hypothesis = Dispensation(
        dispensation_id="",
        finess=finess,
        pharmacist_rpps="",
        dispensed_at=at,
        recorded_at=at,
        lines=(DispensedLine(line_no=line_no, quantity=packs, product=line.prescribed.product),),
    )
    # The rules count what the standing dispensings hand over, not the lines' `dispensed`.
    return msgspec.structs.replace(state, dispensations=(*state.dispensations, hypothesis))
