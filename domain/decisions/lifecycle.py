"""A prescription's lifecycle: the prescriber cancels what remains; the patient (or their
prescriber) changes the consent to the execution view."""

from __future__ import annotations

from domain.calendar import Moment
from domain.checks import ALREADY_CANCELLED, check_not_cancelled
from domain.events import ConsentActor, ExecutionViewConsentChanged, PrescriptionCancelled
from domain.prescription import Prescription


def cancel(state: Prescription, reason: str, now: Moment) -> PrescriptionCancelled:
    """Cancel what remains; what was already dispensed stays recorded.

    A fully dispensed prescription may be cancelled too (nothing is left, nothing changes):
    refusing it would tell a prescriber under the patient's opposition that it was dispensed.
    """
    check_not_cancelled(state, ALREADY_CANCELLED)
    return PrescriptionCancelled(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        prescriber_rpps=state.prescriber_rpps,
        reason=reason,
    )


def change_consent(
    state: Prescription, consent: bool, changed_by: ConsentActor, now: Moment
) -> ExecutionViewConsentChanged | None:
    """Record the patient's OUI/NON; answering what is already recorded records nothing."""
    if consent == state.execution_view_consent:
        return None
    return ExecutionViewConsentChanged(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        consent=consent,
        changed_by=changed_by,
    )
