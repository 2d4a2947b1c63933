"""A patient's narcotic coverage: which days narcotic dispensings cover, across prescriptions.

R5132-33 CSP forbids a new narcotic prescription to be executed during a period already covered
by another, unless the prescriber wrote so; the catalogue's condition "chevauchement interdit"
applies the same rule to other products (zolpidem, tianeptine…), between prescriptions of the
same substance. Their periods share the stream, each naming its `substance` (None: a
narcotic's, against every other narcotic). The rule spans prescriptions and pharmacies, so it
cannot be decided from one prescription's stream, nor from a view that lags the log: each
patient has a stream of their own, appended in the same transaction as the prescription's
dispensing event and under the same optimistic concurrency. Of two pharmacies dispensing two
overlapping prescriptions at once, one append loses on this stream's version and is decided
again against the new coverage.

The stream is keyed by a hash of the INS, so the key that travels (logs, Kafka, metrics)
never carries the health identifier in clear; its events carry no INS either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import date, datetime
from functools import singledispatch
from typing import ClassVar

import msgspec

STREAM_PREFIX = "narcotic-coverage:"


def coverage_stream_of(patient_ins: str) -> str:
    """The patient's coverage stream: a hash of the INS, with a prefix naming what it is."""
    digest = hashlib.sha256(f"ordo narcotic coverage|{patient_ins}".encode()).hexdigest()
    return STREAM_PREFIX + digest


class CoveredPeriod(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Days [first_day, until) a narcotic dispensing covers, in the pharmacy's calendar; or a
    dispensing of a product whose overlap is forbidden ("chevauchement interdit"), naming its
    `substance` (the only periods it may not overlap are that substance's)."""

    prescription_id: str
    dispensation_id: str
    line_no: int
    first_day: date
    until: date
    substance: str | None = None  # None: a narcotic's period (periods stored before it were)

    def overlaps(self, first_day: date, until: date) -> bool:
        return self.first_day < until and first_day < self.until


class CoverageEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Envelope of a coverage stream's events: the stream, its version, when recorded."""

    schema_version: ClassVar[int] = 1

    stream_id: str
    version: int
    at: datetime


class NarcoticPeriodsCovered(CoverageEvent, frozen=True, kw_only=True):
    """A dispensing of narcotic lines (or of products whose overlap is forbidden) covers these
    days: one period per such line."""

    periods: tuple[CoveredPeriod, ...]


class NarcoticPeriodsReleased(CoverageEvent, frozen=True, kw_only=True):
    """A withdrawn dispensing no longer covers anything."""

    prescription_id: str
    dispensation_id: str


COVERAGE_EVENT_TYPES: tuple[type[CoverageEvent], ...] = (
    NarcoticPeriodsCovered,
    NarcoticPeriodsReleased,
)


class NarcoticCoverage(msgspec.Struct, frozen=True, kw_only=True):
    """The periods a patient's narcotic dispensings cover; version 0 before any."""

    stream_id: str
    version: int = 0
    periods: tuple[CoveredPeriod, ...] = ()

    def of_other_prescriptions(self, prescription_id: str) -> tuple[CoveredPeriod, ...]:
        return tuple(p for p in self.periods if p.prescription_id != prescription_id)

    def covered(self, periods: tuple[CoveredPeriod, ...], at: datetime) -> NarcoticPeriodsCovered:
        return NarcoticPeriodsCovered(
            stream_id=self.stream_id, version=self.version + 1, at=at, periods=periods
        )

    def released(
        self, prescription_id: str, dispensation_id: str, at: datetime
    ) -> NarcoticPeriodsReleased | None:
        """Release a withdrawn dispensing's periods; None when it covered nothing here."""
        if not any(p.dispensation_id == dispensation_id for p in self.periods):
            return None
        return NarcoticPeriodsReleased(
            stream_id=self.stream_id,
            version=self.version + 1,
            at=at,
            prescription_id=prescription_id,
            dispensation_id=dispensation_id,
        )


@singledispatch
def evolve_coverage(event: CoverageEvent, state: NarcoticCoverage) -> NarcoticCoverage:
    msg = f"no evolve rule for {type(event).__name__}"
    raise TypeError(msg)


@evolve_coverage.register
def _covered(event: NarcoticPeriodsCovered, state: NarcoticCoverage) -> NarcoticCoverage:
    return NarcoticCoverage(
        stream_id=state.stream_id,
        version=event.version,
        periods=(*state.periods, *event.periods),
    )


@evolve_coverage.register
def _released(event: NarcoticPeriodsReleased, state: NarcoticCoverage) -> NarcoticCoverage:
    return NarcoticCoverage(
        stream_id=state.stream_id,
        version=event.version,
        periods=tuple(p for p in state.periods if p.dispensation_id != event.dispensation_id),
    )


def fold_coverage(stream_id: str, events: Iterable[CoverageEvent]) -> NarcoticCoverage:
    state = NarcoticCoverage(stream_id=stream_id)
    for event in events:
        state = evolve_coverage(event, state)
    return state
