"""What a caller is shown of one prescription: the contract's `GET /v1/prescriptions/{id}` body.

Every answer that describes a prescription (the single read, the prescriber's and the
patient's lists) is built here, so the patient's opposition is applied the same way
everywhere: a prescriber under opposition learns nothing of what was dispensed. The masked
view uses only what the prescription itself says: its presentation deadline
(`issued_on` + 3 months) and whether it was cancelled.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from domain.actors import Actor
from domain.dispensable import covered_until
from domain.events import DispensedLine, PrescribedLine, Procedure
from domain.identifiers import PrescriptionNumber
from domain.prescription import (
    FIRST_DISPENSING_WINDOW_MONTHS,
    Adaptation,
    Dispensation,
    LineState,
    Prescription,
    Status,
    add_months,
)


class PatientRef(msgspec.Struct, frozen=True):
    ins: str


class LineView(PrescribedLine, frozen=True, kw_only=True):
    """A line as written, and how far it was dispensed (None where the reader may not know)."""

    dispensed: int | None
    remaining: int | None  # packs of the prescribed size
    covered_until: date | None
    # Units left on a line counted in units (`domain.units`); None in packs.
    remaining_units: int | None = None


class DispensationView(msgspec.Struct, frozen=True, kw_only=True):
    dispensation_id: str
    finess: str
    dispensed_at: datetime
    recorded_at: datetime
    lines: tuple[DispensedLine, ...]
    billed: bool
    withdrawn: bool
    # The pharmacist's own procedure it was given under (`domain.procedures`); None: the
    # prescription itself.
    procedure: Procedure | None = None


class AdaptationView(msgspec.Struct, frozen=True, kw_only=True):
    """An adaptation made with the prescriber's agreement: who agreed, when, what changed."""

    line_no: int
    description: str
    prescriber_rpps: str
    agreed_on: date
    finess: str
    pharmacist_rpps: str
    recorded_at: datetime
    dispensation_id: str | None


class PrescriptionView(msgspec.Struct, frozen=True, kw_only=True):
    prescription_id: str
    status: Status
    kind: str
    issued_on: date
    expires_on: date
    prescriber_rpps: str
    patient: PatientRef
    execution_view_consent: bool
    execution_visible: bool
    lines: tuple[LineView, ...]
    dispensations: tuple[DispensationView, ...]
    adaptations: tuple[AdaptationView, ...]
    dispensed_elsewhere: bool | None


class IssuedPrescriptionView(PrescriptionView, frozen=True, kw_only=True):
    """The answer to issuing: the view plus the text the LAP prints as a QR code."""

    qr_payload: str


def display_number(prescription_id: str) -> str:
    return PrescriptionNumber(prescription_id).display()


def execution_visible(state: Prescription, viewer: Actor) -> bool:
    """Pharmacists, the patient and the insurer always see execution data; the prescriber only
    with the patient's consent (CSP, patient rights)."""
    return viewer.role != "prescriber" or state.execution_view_consent


def view_of(state: Prescription, viewer: Actor, today: date) -> PrescriptionView:
    visible = execution_visible(state, viewer)
    return PrescriptionView(
        prescription_id=display_number(state.prescription_id),
        status=state.status(today) if visible else _status_without_execution(state, today),
        kind=state.kind,
        issued_on=state.issued_on,
        expires_on=state.expires_on() if visible else _presentation_deadline(state),
        prescriber_rpps=state.prescriber_rpps,
        patient=PatientRef(ins=state.patient_ins),
        execution_view_consent=state.execution_view_consent,
        execution_visible=visible,
        lines=tuple(_line_view(line, state, visible) for line in state.lines),
        dispensations=tuple(map(dispensation_view, state.dispensations)) if visible else (),
        adaptations=tuple(map(_adaptation_view, state.adaptations)) if visible else (),
        dispensed_elsewhere=_dispensed_elsewhere(state, viewer),
    )


def issued_view(state: Prescription, viewer: Actor, today: date) -> IssuedPrescriptionView:
    view = view_of(state, viewer, today)
    return IssuedPrescriptionView(
        **msgspec.structs.asdict(view), qr_payload=qr_payload(state.prescription_id)
    )


def qr_payload(prescription_id: str) -> str:
    """What the QR code holds: the number as printed under it, so scanning and typing agree."""
    return display_number(prescription_id)


def _presentation_deadline(state: Prescription) -> date:
    return add_months(state.issued_on, FIRST_DISPENSING_WINDOW_MONTHS)


def _status_without_execution(state: Prescription, today: date) -> Status:
    if state.cancelled:
        return "cancelled"
    return "expired" if today > _presentation_deadline(state) else "active"


def _line_view(line: LineState, state: Prescription, visible: bool) -> LineView:
    return LineView(
        **msgspec.structs.asdict(line.prescribed),
        dispensed=line.dispensed if visible else None,
        remaining=state.remaining(line.line_no) if visible else None,
        covered_until=covered_until(state, line) if visible else None,
        remaining_units=remaining_units(state, line) if visible else None,
    )


def remaining_units(state: Prescription, line: LineState) -> int | None:
    """The units left on a line counted in units, None on a line counted in packs."""
    count = state.counting(line)
    if not count.in_units:
        return None
    return 0 if state.cancelled else state.amount_left(line, count)


def _adaptation_view(adaptation: Adaptation) -> AdaptationView:
    return AdaptationView(
        line_no=adaptation.line_no,
        description=adaptation.description,
        prescriber_rpps=adaptation.agreed_by_rpps,
        agreed_on=adaptation.agreed_on,
        finess=adaptation.finess,
        pharmacist_rpps=adaptation.pharmacist_rpps,
        recorded_at=adaptation.recorded_at,
        dispensation_id=adaptation.dispensation_id,
    )


def dispensation_view(dispensation: Dispensation) -> DispensationView:
    return DispensationView(
        dispensation_id=dispensation.dispensation_id,
        finess=dispensation.finess,
        dispensed_at=dispensation.dispensed_at,
        recorded_at=dispensation.recorded_at,
        lines=dispensation.lines,
        billed=dispensation.billed,
        withdrawn=dispensation.withdrawn,
        procedure=dispensation.procedure,
    )


def _dispensed_elsewhere(state: Prescription, viewer: Actor) -> bool | None:
    if viewer.role != "pharmacist" or viewer.finess is None:
        return None
    return state.dispensed_by_other_than(viewer.finess)


class ReceiptLine(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A line right after a dispensing; `remaining_units` only on a line counted in units (a
    receipt of a line counted in packs reads as it always did, replays included)."""

    line_no: int
    dispensed: int
    remaining: int
    remaining_units: int | None = None


class DispensationReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a dispensing: where each line stands right after it."""

    dispensation_id: str
    status: Status
    lines: tuple[ReceiptLine, ...]
    dispensed_elsewhere: bool


def receipt_of(
    state: Prescription, dispensation_id: str, finess: str, today: date
) -> DispensationReceipt:
    return DispensationReceipt(
        dispensation_id=dispensation_id,
        status=state.status(today),
        lines=tuple(
            ReceiptLine(
                line_no=line.line_no,
                dispensed=line.dispensed,
                remaining=state.remaining(line.line_no),
                remaining_units=remaining_units(state, line),
            )
            for line in state.lines
        ),
        dispensed_elsewhere=state.dispensed_by_other_than(finess),
    )
