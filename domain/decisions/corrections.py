"""Corrections a pharmacy makes: withdrawing a dispensing recorded in error, and recording an
adaptation of a line agreed with the prescriber."""

from __future__ import annotations

from datetime import date, timedelta

import msgspec

from domain.calendar import Moment, local_day
from domain.checks import check_not_cancelled
from domain.coverage import NarcoticCoverage, NarcoticPeriodsReleased
from domain.errors import DomainError, invalid
from domain.events import AdaptationRecorded, DispensationWithdrawn
from domain.identifiers import Finess, Rpps
from domain.prescription import Prescription

# A dispensing recorded in error may be withdrawn within 7 days, before billing (our design).
WITHDRAWAL_WINDOW = timedelta(days=7)


class Withdraw(msgspec.Struct, frozen=True, kw_only=True):
    pharmacy: Finess
    pharmacist: Rpps
    dispensation_id: str
    reason: str


class RecordAdaptation(msgspec.Struct, frozen=True, kw_only=True):
    pharmacy: Finess
    pharmacist: Rpps
    line_no: int
    description: str
    agreed_by: Rpps
    agreed_on: date
    dispensation_id: str | None = None


def withdraw(
    state: Prescription, command: Withdraw, now: Moment, coverage: NarcoticCoverage | None = None
) -> tuple[DispensationWithdrawn, NarcoticPeriodsReleased | None] | None:
    """Withdraw a dispensing recorded in error: its pharmacy, within 7 days, before billing.

    Withdrawing one already withdrawn records nothing (None): a retry after a lost answer is
    answered as the first call was. The patient's coverage releases the days it covered.
    """
    dispensation = state.dispensation(command.dispensation_id)
    if dispensation is None or dispensation.finess != command.pharmacy.value:
        raise DomainError("not_found", "no such dispensation of your pharmacy on this prescription")
    if not command.reason.strip():
        raise invalid("say why the dispensing is withdrawn", "reason")
    if dispensation.withdrawn:
        return None
    if dispensation.billed:
        raise DomainError("already_billed", "a billed dispensing can no longer be withdrawn")
    if now.at - dispensation.dispensed_at > WITHDRAWAL_WINDOW:
        raise DomainError(
            "withdrawal_window_closed",
            f"a dispensing may be withdrawn within 7 days of {dispensation.dispensed_at}",
        )
    withdrawn = DispensationWithdrawn(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        dispensation_id=dispensation.dispensation_id,
        finess=command.pharmacy.value,
        pharmacist_rpps=command.pharmacist.value,
        reason=command.reason,
    )
    released = (
        coverage.released(state.prescription_id, dispensation.dispensation_id, now.at)
        if coverage is not None
        else None
    )
    return withdrawn, released


def record_adaptation(
    state: Prescription, command: RecordAdaptation, now: Moment
) -> AdaptationRecorded:
    """A change to a line made with the prescriber's agreement, with its date (CSP)."""
    field = "line_no"
    if state.line(command.line_no) is None:
        raise invalid(f"this prescription has no line {command.line_no}", field)
    if not command.description.strip():
        raise invalid("describe the adaptation", "description")
    today = local_day(now.at, command.pharmacy.value)
    if not state.issued_on <= command.agreed_on <= today:
        raise invalid(f"the agreement is dated between {state.issued_on} and {today}", "agreed_on")
    if command.dispensation_id is not None:
        dispensation = state.dispensation(command.dispensation_id)
        if dispensation is None or dispensation.finess != command.pharmacy.value:
            raise invalid("no such dispensation of your pharmacy", "dispensation_id")
    check_not_cancelled(state)
    return AdaptationRecorded(
        prescription_id=state.prescription_id,
        version=state.version + 1,
        at=now.at,
        line_no=command.line_no,
        description=command.description,
        agreed_by_rpps=command.agreed_by.value,
        agreed_on=command.agreed_on,
        finess=command.pharmacy.value,
        pharmacist_rpps=command.pharmacist.value,
        dispensation_id=command.dispensation_id,
    )
