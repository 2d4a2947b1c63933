"""Read models as pure folds of the log, one prescription at a time.

Every view is derived from the prescription's state, which is itself the fold of its events
(`domain.prescription.evolve`): the same rule that answers the single read. So the lists agree
with `GET /v1/prescriptions/{id}` by construction, and masking for the patient's opposition is
applied when a list is read (`domain.views.view_of`), so a change of consent takes effect
at once without rewriting any row. Likewise a line's units are counted when the inbox is read,
from the packs its row keeps, so that a rebuild gives the same rows whatever the catalogue.

    state'  = evolve(state, event)                  (the "prescriptions" view: one row each)
    inbox   = inbox_entries(state')                 (its rows in inboxes, while units may be left)
    inbox'  = counted(inbox, sizes)                 (read: counted with the catalogue in force)
    index   = dispensing_records(state')            (what the patient received, per product)
    convs   = state'.conversations                  (its MSSanté conversations, one row each)

A runner replaces a prescription's rows in each view by these functions' results, in the same
transaction as the log position it has reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from domain.events import (
    DispensedLine,
    Event,
    NonSubstitutable,
    PrescribedLine,
    Product,
    TransmissionSender,
)
from domain.prescription import Prescription, evolve
from domain.units import Left, PackSizes, left

ReadModelName = Literal["prescriptions", "inbox", "dispensings", "conversations"]
READ_MODEL_NAMES: tuple[ReadModelName, ...] = (
    "prescriptions",
    "inbox",
    "dispensings",
    "conversations",
)


class InboxLine(msgspec.Struct, frozen=True, kw_only=True):
    """A line as the pharmacy's inbox shows it: `remaining` in packs of the prescribed size,
    `remaining_units` on a line counted in units (`domain.units`), as the read counts them."""

    line_no: int
    product: Product
    quantity: int
    remaining: Annotated[
        int, msgspec.Meta(description="packs of the prescribed size left, as the read counts them")
    ]
    # The prescriber's "non substituable" mention; rows stored before it had none.
    non_substitutable: NonSubstitutable | None = None
    remaining_units: Annotated[
        int | None,
        msgspec.Meta(
            description="units left (tablets, capsules…) on a line counted in units, as the read "
            "counts them; null on a line counted in packs"
        ),
    ] = None


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
    # The packs its standing dispensings handed over, so that its lines are counted with the
    # catalogue in force when the inbox is read (`counted`); None in rows stored before them.
    handed: tuple[DispensedLine, ...] | None = None


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
    """One entry per pharmacy it was sent to (the latest sending), as long as something could
    be left (`may_be_left`): the read decides in units."""
    if state.cancelled:
        return ()
    handed = tuple(line for d in state.standing_dispensations for line in d.lines)
    lines = tuple(_inbox_line(line.prescribed, handed, state.pack_sizes) for line in state.lines)
    if not may_be_left(lines, handed):
        return ()
    latest = {t.finess: t for t in sorted(state.transmissions, key=lambda t: t.transmitted_at)}
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
            handed=handed,
        )
        for t in latest.values()
    )


def _inbox_line(
    prescribed: PrescribedLine, handed: Sequence[DispensedLine], sizes: PackSizes | None
) -> InboxLine:
    left_on = _left_on(prescribed.line_no, prescribed.product, prescribed.quantity, handed, sizes)
    return InboxLine(
        line_no=prescribed.line_no,
        product=prescribed.product,
        quantity=prescribed.quantity,
        remaining=left_on.packs,
        non_substitutable=prescribed.non_substitutable,
        remaining_units=left_on.units,
    )


def _left_on(
    line_no: int,
    product: Product,
    quantity: int,
    handed: Sequence[DispensedLine],
    sizes: PackSizes | None,
) -> Left:
    return left(sizes, product, quantity, [line for line in handed if line.line_no == line_no])


def counted(entry: InboxEntry, sizes: PackSizes | None) -> InboxEntry:
    """The entry's lines counted with these pack sizes (the catalogue in force when the inbox is
    read), as `GET /v1/prescriptions/{id}` counts them; a row stored before its packs were kept
    reads as stored."""
    handed = entry.handed
    if handed is None:
        return entry
    lines = []
    for line in entry.lines:
        left_on = _left_on(line.line_no, line.product, line.quantity, handed, sizes)
        lines.append(
            msgspec.structs.replace(line, remaining=left_on.packs, remaining_units=left_on.units)
        )
    return msgspec.structs.replace(entry, lines=tuple(lines))


def may_be_left(lines: Sequence[InboxLine], handed: Sequence[DispensedLine]) -> bool:
    """Whether something could be left whatever the catalogue says: a line has something left
    as counted, or a line was given packs other than the prescribed ones (two boxes of 30
    against one box of 90 leave 30 tablets, which only the catalogue in force can tell)."""
    prescribed = {line.line_no: line.product for line in lines}
    return any(_has_left(line) for line in lines) or any(
        given.product != prescribed[given.line_no] for given in handed
    )


def left_to_dispense(entry: InboxEntry) -> bool:
    """Whether any line has something left, in units where it is counted in units (a line of
    boxes of 30 with 20 tablets left has 0 boxes but something left)."""
    return any(_has_left(line) for line in entry.lines)


def _has_left(line: InboxLine) -> bool:
    return (line.remaining if line.remaining_units is None else line.remaining_units) > 0


def packs_named(entries: Iterable[InboxEntry]) -> Iterator[Product]:
    """The packs these entries prescribe or were handed over: the catalogue's sizes they need."""
    for entry in entries:
        yield from (line.product for line in entry.lines)
        yield from (line.product for line in entry.handed or ())


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
