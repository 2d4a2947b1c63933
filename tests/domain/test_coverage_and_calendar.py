"""The patient's narcotic coverage stream, the calendars, the actors and the upcasting of old
events: the small pure pieces the rules stand on."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.actors import Actor
from domain.calendar import local_day, paris_day, zone_of
from domain.coverage import (
    STREAM_PREFIX,
    CoveredPeriod,
    NarcoticCoverage,
    NarcoticPeriodsCovered,
    NarcoticPeriodsReleased,
    coverage_stream_of,
    fold_coverage,
)
from domain.events import UPCASTERS
from tests.domain.builders import PATIENT, PRESCRIBER
from tests.domain.counter import days

STREAM = coverage_stream_of(PATIENT.value)
AT = datetime(2026, 11, 23, 10, tzinfo=UTC)


def period(prescription: str, dispensation: str, first: int, until: int) -> CoveredPeriod:
    return CoveredPeriod(
        prescription_id=prescription,
        dispensation_id=dispensation,
        line_no=1,
        first_day=days(first),
        until=days(until),
    )


def test_the_stream_is_keyed_by_a_hash_never_the_ins() -> None:
    assert STREAM.startswith(STREAM_PREFIX)
    assert PATIENT.value not in STREAM
    assert len(STREAM) == len(STREAM_PREFIX) + 64
    assert (
        coverage_stream_of(PATIENT.value) == STREAM != coverage_stream_of("2" + PATIENT.value[1:])
    )


def test_the_coverage_folds_from_its_events() -> None:
    events = [
        NarcoticPeriodsCovered(
            stream_id=STREAM, version=1, at=AT, periods=(period("p1", "d1", 0, 7),)
        ),
        NarcoticPeriodsCovered(
            stream_id=STREAM, version=2, at=AT, periods=(period("p2", "d2", 7, 14),)
        ),
        NarcoticPeriodsReleased(
            stream_id=STREAM, version=3, at=AT, prescription_id="p1", dispensation_id="d1"
        ),
    ]

    coverage = fold_coverage(STREAM, events)

    assert coverage == NarcoticCoverage(
        stream_id=STREAM, version=3, periods=(period("p2", "d2", 7, 14),)
    )
    assert coverage.of_other_prescriptions("p2") == ()
    assert fold_coverage(STREAM, []) == NarcoticCoverage(stream_id=STREAM, version=0, periods=())


def test_days_are_covered_from_the_first_day_up_to_until_excluded() -> None:
    covered = period("p1", "d1", 0, 7)

    assert covered.overlaps(days(6), days(8))
    assert covered.overlaps(days(-3), days(1))
    assert not covered.overlaps(days(7), days(10))
    assert not covered.overlaps(days(-3), days(0))


def test_covering_is_the_next_version_of_the_stream() -> None:
    coverage = NarcoticCoverage(stream_id=STREAM, version=4)

    event = coverage.covered((period("p1", "d1", 0, 7),), AT)

    assert event == NarcoticPeriodsCovered(
        stream_id=STREAM, version=5, at=AT, periods=(period("p1", "d1", 0, 7),)
    )


def test_a_release_names_the_dispensing_it_frees() -> None:
    coverage = NarcoticCoverage(stream_id=STREAM, version=1, periods=(period("p1", "d1", 0, 7),))

    assert coverage.released("p1", "d1", AT) == NarcoticPeriodsReleased(
        stream_id=STREAM, version=2, at=AT, prescription_id="p1", dispensation_id="d1"
    )
    assert coverage.released("p1", "d9", AT) is None


def test_calendars_by_finess_department() -> None:
    evening = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)

    assert str(zone_of("971000000")) == "America/Guadeloupe"
    assert str(zone_of("975000000")) == "America/Miquelon"
    assert str(zone_of("976000000")) == "Indian/Mayotte"
    assert str(zone_of("970000000")) == "Europe/Paris"
    assert str(zone_of("750000000")) == "Europe/Paris"
    assert local_day(evening, "974000000") == date(2026, 11, 24)
    assert local_day(evening, "971000000") == date(2026, 11, 23)
    assert paris_day(evening) == date(2026, 11, 24)
    assert paris_day(datetime(2026, 11, 23, 22, 59, tzinfo=UTC)) == date(2026, 11, 23)


def test_who_wrote_and_whose_prescription_it_is() -> None:
    prescriber = Actor(role="prescriber", subject="s", rpps=PRESCRIBER.value)
    pharmacist = Actor(role="pharmacist", subject="s", rpps=PRESCRIBER.value, finess="x")
    patient = Actor(role="patient", subject="s", ins=PATIENT.value)
    insurer = Actor(role="insurer", subject="s", ins=PATIENT.value)

    assert prescriber.wrote(PRESCRIBER.value)
    assert not prescriber.wrote("10000000000")
    assert not pharmacist.wrote(PRESCRIBER.value)
    assert patient.is_patient(PATIENT.value)
    assert not patient.is_patient("x")
    assert not insurer.is_patient(PATIENT.value)


def test_a_v1_dispensing_was_handed_over_when_it_was_recorded() -> None:
    upcast = UPCASTERS[("DispensationRecorded", 1)]

    assert upcast({"at": "2026-11-23T10:00:00Z", "lines": []}) == {
        "at": "2026-11-23T10:00:00Z",
        "lines": [],
        "dispensed_at": "2026-11-23T10:00:00Z",
    }
