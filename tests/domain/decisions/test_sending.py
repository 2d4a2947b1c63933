"""Who sent the prescription to whom: the patient or the prescriber to a pharmacy's mailbox,
the prescriber to the patient's Mon espace santé mailbox. Given these events, when this
command, then these events or this error."""

from __future__ import annotations

from datetime import date

import msgspec
import pytest

from domain.decisions.lifecycle import cancel
from domain.decisions.sending import send_to_patient, transmit
from domain.errors import DomainError
from domain.events import (
    PrescriptionSentToPatient,
    PrescriptionTransmitted,
    TransmissionSender,
)
from domain.prescription import SentToPatient, Transmission
from projections.folds import inbox_entries
from tests.domain.builders import (
    ISSUED_ON,
    NUMBER,
    PHARMACY_A,
    PHARMACY_B,
    PRESCRIBER,
    dispensed,
    given,
    issued,
    moment,
)
from tests.domain.builders import moment as at
from tests.domain.decisions.test_billing import code_of


def test_the_patient_transmits_a_prescription_to_a_pharmacy() -> None:
    state = given(issued(3))

    event = transmit(state, PHARMACY_B, "Je passe demain matin", moment())

    after = given(issued(3), event)
    assert after.transmissions[0].finess == PHARMACY_B.value


@pytest.mark.parametrize(
    ("history", "today", "code"),
    [
        ("cancelled", ISSUED_ON, "prescription_cancelled"),
        ("dispensed", ISSUED_ON, "already_dispensed"),
        ("issued", date(2027, 3, 1), "prescription_expired"),
    ],
)
def test_nothing_left_to_prepare_cannot_be_transmitted(
    history: str, today: date, code: str
) -> None:
    state = given(issued(1))
    if history == "cancelled":
        state = given(issued(1), cancel(state, "erreur", moment()))
    elif history == "dispensed":
        state = given(issued(1), dispensed(2, (1, 1)))

    with pytest.raises(DomainError) as refusal:
        transmit(state, PHARMACY_B, "", moment(today))

    assert code_of(refusal) == code


PRESENTATION_DEADLINE = date(2027, 2, 23)  # issued 23 November 2026, + 3 months


# --- to a pharmacy: the patient or the prescriber --------------------------------------------


@pytest.mark.parametrize("sender", ["patient", "prescriber"])
def test_the_transmission_records_who_sent_it(sender: TransmissionSender) -> None:
    event = transmit(given(issued(3)), PHARMACY_B, "Sortie d'hospitalisation", at(), sender)

    assert event == PrescriptionTransmitted(
        prescription_id=NUMBER.value,
        version=2,
        at=at().at,
        finess=PHARMACY_B.value,
        message="Sortie d'hospitalisation",
        sent_by=sender,
    )
    assert given(issued(3), event).transmissions == (
        Transmission(
            finess=PHARMACY_B.value,
            message="Sortie d'hospitalisation",
            transmitted_at=at().at,
            sent_by=sender,
        ),
    )


def test_without_a_sender_the_transmission_is_the_patients() -> None:
    assert transmit(given(issued(3)), PHARMACY_B, "", at()).sent_by == "patient"


def test_a_transmission_recorded_before_the_sender_was_the_patients() -> None:
    recorded = msgspec.json.encode(transmit(given(issued(3)), PHARMACY_B, "", at()))
    older = msgspec.json.decode(recorded.replace(b',"sent_by":"patient"', b""), type=dict)
    assert "sent_by" not in older

    event = msgspec.convert(older, PrescriptionTransmitted)

    assert event.sent_by == "patient"
    assert given(issued(3), event).transmissions[0].sent_by == "patient"


def test_the_pharmacy_inbox_shows_who_sent_it_last() -> None:
    state = given(
        issued(3),
        transmit(given(issued(3)), PHARMACY_B, "", at(), "prescriber"),
        msgspec.structs.replace(
            transmit(given(issued(3)), PHARMACY_A, "", at(), "patient"), version=3
        ),
    )

    senders = {entry.finess: entry.sent_by for entry in inbox_entries(state)}

    assert senders == {PHARMACY_B.value: "prescriber", PHARMACY_A.value: "patient"}


@pytest.mark.parametrize("consent", [True, False])
def test_the_prescriber_may_not_send_a_cancelled_prescription(consent: bool) -> None:
    state = given(issued(1, consent=consent))
    state = given(issued(1, consent=consent), cancel(state, "erreur", at()))

    with pytest.raises(DomainError) as refusal:
        transmit(state, PHARMACY_B, "", at(), "prescriber")

    assert code_of(refusal) == "prescription_cancelled"
    assert refusal.value.detail == "this prescription was cancelled"


def test_with_consent_the_prescriber_is_refused_what_is_fully_dispensed() -> None:
    state = given(issued(1, consent=True), dispensed(2, (1, 1)))

    with pytest.raises(DomainError) as refusal:
        transmit(state, PHARMACY_B, "", at(), "prescriber")

    assert code_of(refusal) == "already_dispensed"


def test_under_opposition_the_prescriber_is_not_told_it_was_dispensed() -> None:
    """Refusing would tell the prescriber what the patient hides from them; the sending is
    recorded and enters no inbox, as nothing is left to prepare."""
    state = given(issued(1, consent=False), dispensed(2, (1, 1)))

    event = transmit(state, PHARMACY_B, "", at(), "prescriber")

    after = given(issued(1, consent=False), dispensed(2, (1, 1)), event)
    assert after.transmissions[0].sent_by == "prescriber"
    assert inbox_entries(after) == ()


def test_the_patient_under_opposition_is_still_told_it_was_dispensed() -> None:
    state = given(issued(1, consent=False), dispensed(2, (1, 1)))

    with pytest.raises(DomainError) as refusal:
        transmit(state, PHARMACY_B, "", at())

    assert code_of(refusal) == "already_dispensed"


@pytest.mark.parametrize(
    ("today", "refused"),
    [(ISSUED_ON, False), (PRESENTATION_DEADLINE, False), (date(2027, 2, 24), True)],
)
def test_under_opposition_the_prescriber_sends_until_the_presentation_deadline(
    today: date, refused: bool
) -> None:
    state = given(issued(2, consent=False))

    if not refused:
        assert transmit(state, PHARMACY_B, "", at(today), "prescriber").sent_by == "prescriber"
        return
    with pytest.raises(DomainError) as refusal:
        transmit(state, PHARMACY_B, "", at(today), "prescriber")
    assert code_of(refusal) == "prescription_expired"
    assert str(PRESENTATION_DEADLINE) in refusal.value.detail


def test_under_opposition_a_partly_dispensed_prescription_past_the_deadline_is_refused() -> None:
    """The masked view says `expired` after the presentation deadline: the refusal says no more
    than it, although the dispensing keeps the prescription valid for the pharmacy."""
    state = given(issued(2, consent=False), dispensed(2, (1, 1)))

    assert transmit(state, PHARMACY_B, "", at(date(2027, 3, 1))).sent_by == "patient"
    with pytest.raises(DomainError) as refusal:
        transmit(state, PHARMACY_B, "", at(date(2027, 3, 1)), "prescriber")
    assert code_of(refusal) == "prescription_expired"


# --- to the patient's Mon espace santé mailbox ------------------------------------------------


def test_the_prescriber_sends_the_ordonnance_to_the_patient() -> None:
    state = given(issued(3))

    event = send_to_patient(state, "Votre ordonnance, sans papier", at())

    assert event == PrescriptionSentToPatient(
        prescription_id=NUMBER.value,
        version=2,
        at=at().at,
        prescriber_rpps=PRESCRIBER.value,
        message="Votre ordonnance, sans papier",
    )
    after = given(issued(3), event)
    assert after.sent_to_patient == (
        SentToPatient(message="Votre ordonnance, sans papier", sent_at=at().at),
    )
    assert after.version == 2 and after.transmissions == ()


def test_a_dispensed_prescription_may_still_be_sent_to_the_patient() -> None:
    state = given(issued(1), dispensed(2, (1, 1)))

    assert send_to_patient(state, "", at()).version == 3


def test_a_cancelled_prescription_is_not_sent_to_the_patient() -> None:
    state = given(issued(1), cancel(given(issued(1)), "erreur", at()))

    with pytest.raises(DomainError) as refusal:
        send_to_patient(state, "", at())

    assert code_of(refusal) == "prescription_cancelled"
    assert refusal.value.detail == "this prescription was cancelled"
