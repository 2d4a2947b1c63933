"""Sending a prescription: to a pharmacy (by the patient, or the prescriber who wrote it), or
to the patient's Mon espace santé mailbox (by the prescriber)."""

from __future__ import annotations

from datetime import date

from domain.calendar import Moment, local_day
from domain.checks import check_dispensable, check_not_cancelled
from domain.errors import DomainError
from domain.events import PrescriptionSentToPatient, PrescriptionTransmitted, TransmissionSender
from domain.identifiers import Finess
from domain.prescription import FIRST_DISPENSING_WINDOW_MONTHS, Prescription, add_months


def transmit(
    state: Prescription,
    pharmacy: Finess,
    message: str,
    now: Moment,
    sent_by: TransmissionSender = "patient",
) -> PrescriptionTransmitted:
    """The patient, or the prescriber who wrote it (a hospital at discharge, an EHPAD's doctor),
    sends the prescription to a pharmacy so it can be prepared before the visit.

    A prescriber under the patient's opposition is refused only for what they may know (a
    cancellation, the presentation deadline): refusing a fully dispensed prescription would
    tell them it was dispensed. Such a sending enters no inbox, as nothing is left."""
    today = local_day(now.at, pharmacy.value)
    if sent_by == "prescriber" and not state.execution_view_consent:
        _check_sendable_unseen(state, today)
    else:
        check_dispensable(state, today)
    return PrescriptionTransmitted(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        finess=pharmacy.value,
        message=message,
        sent_by=sent_by,
    )


def _check_sendable_unseen(state: Prescription, today: date) -> None:
    """`check_dispensable` from what a prescriber under opposition sees: no execution data."""
    check_not_cancelled(state)
    deadline = add_months(state.issued_on, FIRST_DISPENSING_WINDOW_MONTHS)
    if today > deadline:
        raise DomainError(
            "prescription_expired", f"this prescription was to be presented by {deadline}"
        )


def send_to_patient(state: Prescription, message: str, now: Moment) -> PrescriptionSentToPatient:
    """The prescriber sends the ordonnance to the patient's Mon espace santé mailbox. A
    cancelled prescription is not sent: the patient would take it for one to present."""
    check_not_cancelled(state)
    return PrescriptionSentToPatient(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        prescriber_rpps=state.prescriber_rpps,
        message=message,
    )
