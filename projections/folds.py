"""Read models as pure folds of the log, one prescription at a time.

Every view is derived from the prescription's state, which is itself the fold of its events
(`domain.prescription.evolve`): the same rule that answers the single read. So the lists agree
with `GET /v1/prescriptions/{id}` by construction, and masking for the patient's opposition is
applied when a list is read (`domain.views.view_of`), so a change of consent takes effect
at once without rewriting any row.

    state'  = evolve(state, event)                  (the "prescriptions" view: one row each)
    inbox   = inbox_entries(state')                 (the rows of this prescription in inboxes)
    index   = dispensing_records(state')            (what the patient received, per product)
    convs   = state'.conversations                  (its MSSanté conversations, one row each)

A runner replaces a prescription's rows in each view by these functions' results, in the same
transaction as the log position it has reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Literal

import msgspec

from domain.events import Event, NonSubstitutable, Product, TransmissionSender
from domain.prescription import Prescription, evolve

ReadModelName = Literal["prescriptions", "inbox", "dispensings", "conversations"]
READ_MODEL_NAMES: tuple[ReadModelName, ...] = (
    "prescriptions",
    "inbox",
    "dispensings",
    "conversations",
)


class InboxLine(msgspec.Struct, frozen=True, kw_only=True):
    line_no: int
    product: Product
    quantity: int
    remaining: int
    # The prescriber's "non substituable" mention; rows stored before it had none.
    non_substitutable: NonSubstitutable | None = None


class InboxEntry(msgspec.Struct, frozen=True, kw_only=True):
    """A prescription a patient sent to a pharmacy, as long as something is left to dispense."""

    finess: str
    prescription_id: str
    transmitted_at: datetime
    message: str
    patient_ins: str
    expires_on: date
    lines: tuple[InboxLine, ...]
    # Who sent it (the latest sending); rows stored before it was recorded were the patient's.
    sent_by: TransmissionSender = "patient"


class DispensingRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One product handed to a patient: for cross-prescription checks (overlap, nomadisme)."""

    patient_ins: str
    prescription_id: str
    dispensation_id: str
    line_no: int
    product: Product
    quantity: int
    narcotic: bool
    duration_days: int
    dispensed_at: datetime
    finess: str


def inbox_entries(state: Prescription) -> tuple[InboxEntry, ...]:
    """One entry per pharmacy it was sent to (the latest sending), until nothing is left."""
    if state.cancelled or state.fully_dispensed:
        return ()
    latest = {t.finess: t for t in sorted(state.transmissions, key=lambda t: t.transmitted_at)}
    lines = tuple(
        InboxLine(
            line_no=line.line_no,
            product=line.prescribed.product,
            quantity=line.prescribed.quantity,
            remaining=line.remaining(cancelled=False),
            non_substitutable=line.prescribed.non_substitutable,
        )
        for line in state.lines
    )
    return tuple(
        InboxEntry(
            finess=t.finess,
            prescription_id=state.prescription_id,
            transmitted_at=t.transmitted_at,
            message=t.message,
            patient_ins=state.patient_ins,
            expires_on=state.expires_on(),
            lines=lines,
            sent_by=t.sent_by,
        )
        for t in latest.values()
    )


def dispensing_records(state: Prescription) -> tuple[DispensingRecord, ...]:
    prescribed = {line.line_no: line.prescribed for line in state.lines}
    return tuple(
        DispensingRecord(
            patient_ins=state.patient_ins,
            prescription_id=state.prescription_id,
            dispensation_id=dispensation.dispensation_id,
            line_no=line.line_no,
            product=line.product,
            quantity=line.quantity,
            narcotic=prescribed[line.line_no].narcotic,
            duration_days=prescribed[line.line_no].duration_days,
            dispensed_at=dispensation.dispensed_at,
            finess=dispensation.finess,
        )
        for dispensation in state.standing_dispensations
        for line in dispensation.lines
    )


def fold_batch(
    states: Mapping[str, Prescription], events: Iterable[Event]
) -> dict[str, Prescription]:
    """Apply events in log order to the states they touch; returns the changed states only."""
    changed: dict[str, Prescription] = {}
    for event in events:
        current = changed.get(event.prescription_id) or states.get(event.prescription_id)
        if current is not None and current.has_folded(event):
            continue  # already applied (a redelivery): folds are idempotent by version
        changed[event.prescription_id] = evolve(event, current)
    return changed
