"""What each caller sees of a prescription, and the patient's opposition."""

from __future__ import annotations

from datetime import date

import msgspec
from builders import (
    ISSUED_ON,
    PATIENT,
    PHARMACY_A,
    PHARMACY_B,
    PRESCRIBER,
    dispensed,
    given,
    issued,
)

from domain.actors import Actor
from domain.prescription import add_months
from projections.views import view_of

PRESCRIBER_ACTOR = Actor(role="prescriber", subject="dr", rpps=PRESCRIBER.value)
PHARMACIST_B = Actor(
    role="pharmacist", subject="ph", rpps=PRESCRIBER.value, finess=PHARMACY_B.value
)
PATIENT_ACTOR = Actor(role="patient", subject="pt", ins=PATIENT.value)


def test_under_opposition_the_prescriber_learns_nothing_of_the_dispensing() -> None:
    state = given(issued(3, consent=False), dispensed(2, (1, 3)))

    view = view_of(state, PRESCRIBER_ACTOR, ISSUED_ON)

    assert not view.execution_visible
    assert view.status == "active"
    assert view.dispensations == ()
    assert [(line.dispensed, line.remaining) for line in view.lines] == [(None, None)]
    assert view.dispensed_elsewhere is None
    # Nothing in the answer differs from a prescription nobody has touched.
    untouched = view_of(given(issued(3, consent=False)), PRESCRIBER_ACTOR, ISSUED_ON)
    assert msgspec.json.encode(view) == msgspec.json.encode(untouched)


def test_under_opposition_a_late_prescription_reads_expired_whatever_was_dispensed() -> None:
    later = date(2027, 3, 1)
    started = view_of(
        given(issued(3, consent=False), dispensed(2, (1, 1))), PRESCRIBER_ACTOR, later
    )
    untouched = view_of(given(issued(3, consent=False)), PRESCRIBER_ACTOR, later)

    assert started.status == untouched.status == "expired"
    assert started.expires_on == untouched.expires_on == date(2027, 2, 23)


def test_the_patient_and_pharmacists_always_see_execution_data() -> None:
    state = given(issued(3, consent=False), dispensed(2, (1, 2), finess=PHARMACY_A))

    for viewer in (PATIENT_ACTOR, PHARMACIST_B):
        view = view_of(state, viewer, ISSUED_ON)
        assert view.execution_visible and view.lines[0].remaining == 1
        assert view.status == "partially_dispensed"
    assert view_of(state, PHARMACIST_B, ISSUED_ON).dispensed_elsewhere is True


def test_with_consent_the_prescriber_sees_the_execution() -> None:
    view = view_of(given(issued(3), dispensed(2, (1, 2))), PRESCRIBER_ACTOR, ISSUED_ON)

    assert view.execution_visible and view.status == "partially_dispensed"
    assert len(view.dispensations) == 1


def test_months_are_added_in_the_calendar_and_clamped_to_the_month_end() -> None:
    assert add_months(date(2026, 11, 23), 3) == date(2027, 2, 23)
    assert add_months(date(2026, 11, 30), 3) == date(2027, 2, 28)
    assert add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)
    assert add_months(date(2026, 1, 31), 12) == date(2027, 1, 31)
