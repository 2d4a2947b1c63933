"""A prescription's lifecycle (`domain.decisions.lifecycle`): cancelling what remains, once, and
the patient's consent to the execution view; given these events, when this command, then
these events or this refusal."""

from __future__ import annotations

import pytest

from domain.decisions.lifecycle import cancel, change_consent
from domain.errors import DomainError
from domain.events import (
    ExecutionViewConsentChanged,
    PrescriptionCancelled,
)
from tests.domain.builders import (
    ISSUED_ON,
    NUMBER,
    PRESCRIBER,
    dispensed,
    given,
    issued,
    moment,
)
from tests.domain.decisions.test_dispensing import days_after

# --- consent ---------------------------------------------------------------------------------


def test_the_patient_opposes_the_prescriber_view() -> None:
    state = given(issued(3))

    event = change_consent(state, False, "patient", moment())

    assert event == ExecutionViewConsentChanged(
        prescription_id=NUMBER.value, version=2, at=moment().at, consent=False, changed_by="patient"
    )
    assert not given(issued(3), event).execution_view_consent


def test_repeating_the_recorded_answer_records_nothing() -> None:
    assert change_consent(given(issued(3)), True, "insurer", moment()) is None


# --- cancelling ------------------------------------------------------------------------------


def test_cancelling_a_partially_dispensed_prescription_cancels_what_remains() -> None:
    state = given(issued(3, 2), dispensed(2, (1, 1)))

    after = given(issued(3, 2), dispensed(2, (1, 1)), cancel(state, "changement", moment()))

    assert after.status(ISSUED_ON) == "cancelled"
    assert [after.remaining(1), after.remaining(2)] == [0, 0]
    assert after.lines[0].dispensed == 1  # what was handed over stays recorded


def test_a_cancellation_records_who_cancelled_why_and_when() -> None:
    state = given(issued(3), dispensed(2, (1, 1)))

    event = cancel(state, "erreur de posologie", moment(days_after(1)))

    assert event == PrescriptionCancelled(
        prescription_id=NUMBER.value,
        version=3,
        at=moment(days_after(1)).at,
        prescriber_rpps=PRESCRIBER.value,
        reason="erreur de posologie",
    )


def test_a_prescription_is_cancelled_once() -> None:
    state = given(issued(3))
    state = given(issued(3), cancel(state, "erreur", moment()))

    with pytest.raises(DomainError) as refusal:
        cancel(state, "encore", moment())

    assert refusal.value.code == "prescription_cancelled"
