"""Read-model folds: given these events, then these rows."""

from __future__ import annotations

from datetime import date, timedelta

import msgspec

from domain.events import (
    DispensationRecorded,
    DispensationWithdrawn,
    DispensedLine,
    NonSubstitutable,
    PrescriptionCancelled,
    PrescriptionTransmitted,
)
from domain.prescription import Prescription
from projections.folds import (
    DispensingRecord,
    InboxEntry,
    InboxLine,
    dispensing_records,
    fold_batch,
    inbox_entries,
)
from tests.domain.builders import (
    AMOXICILLINE,
    GENERIC,
    NUMBER,
    PARACETAMOL,
    PATIENT,
    PHARMACY_A,
    PHARMACY_B,
    dispensed,
    given,
    issued,
    moment,
)


def transmitted(
    version: int, finess: str = PHARMACY_B.value, minutes: int = 0
) -> PrescriptionTransmitted:
    return PrescriptionTransmitted(
        prescription_id=NUMBER.value,
        version=version,
        at=moment().at + timedelta(minutes=minutes),
        finess=finess,
        message="Je passe demain",
    )


def cancelled(version: int) -> PrescriptionCancelled:
    return PrescriptionCancelled(
        prescription_id=NUMBER.value,
        version=version,
        at=moment().at,
        prescriber_rpps="x",
        reason="r",
    )


def test_a_transmitted_prescription_waits_in_the_pharmacy_inbox_with_what_remains() -> None:
    state = given(issued(3, 2), transmitted(2), dispensed(3, (1, 1), finess=PHARMACY_A))

    (entry,) = inbox_entries(state)

    assert (entry.finess, entry.prescription_id, entry.patient_ins) == (
        PHARMACY_B.value,
        NUMBER.value,
        PATIENT.value,
    )
    assert [(line.line_no, line.remaining) for line in entry.lines] == [(1, 2), (2, 2)]


def test_an_inbox_line_carries_the_prescriber_s_non_substitutable_mention() -> None:
    written = issued(3, 2)
    mention = NonSubstitutable(reason="CIF")
    first = msgspec.structs.replace(written.lines[0], non_substitutable=mention)
    excluded = msgspec.structs.replace(written, lines=(first, *written.lines[1:]))

    (entry,) = inbox_entries(given(excluded, transmitted(2)))

    assert [line.non_substitutable for line in entry.lines] == [mention, None]


def test_it_leaves_the_inbox_once_fully_dispensed_anywhere() -> None:
    state = given(issued(1), transmitted(2), dispensed(3, (1, 1), finess=PHARMACY_A))

    assert inbox_entries(state) == ()


def test_it_leaves_the_inbox_once_cancelled() -> None:
    assert inbox_entries(given(issued(3), transmitted(2), cancelled(3))) == ()


def test_sent_twice_to_the_same_pharmacy_it_appears_once_with_the_latest_sending() -> None:
    state = given(
        issued(3), transmitted(2), transmitted(3, minutes=30), transmitted(4, PHARMACY_A.value)
    )

    entries = {entry.finess: entry for entry in inbox_entries(state)}

    assert set(entries) == {PHARMACY_A.value, PHARMACY_B.value}
    assert entries[PHARMACY_B.value].transmitted_at == moment().at + timedelta(minutes=30)


def test_an_untransmitted_prescription_is_in_no_inbox() -> None:
    assert inbox_entries(given(issued(3))) == ()


def test_the_dispensing_index_records_each_product_handed_to_the_patient() -> None:
    substitution = DispensationRecorded(
        prescription_id=NUMBER.value,
        version=3,
        at=moment().at,
        dispensation_id="d2",
        finess=PHARMACY_B.value,
        pharmacist_rpps="x",
        dispensed_at=moment().at,
        lines=(DispensedLine(line_no=2, quantity=1, product=GENERIC),),
    )
    state = given(issued(3, 2), dispensed(2, (1, 2)), substitution)

    records = dispensing_records(state)

    assert [(r.dispensation_id, r.line_no, r.quantity, r.finess) for r in records] == [
        ("d1", 1, 2, PHARMACY_A.value),
        ("d2", 2, 1, PHARMACY_B.value),
    ]
    assert records[1].product == GENERIC != AMOXICILLINE
    assert all(r.patient_ins == PATIENT.value for r in records)


def test_a_batch_folds_in_log_order_and_ignores_what_it_already_applied() -> None:
    events = [issued(3), dispensed(2, (1, 1)), dispensed(3, (1, 1), dispensation_id="d2")]
    first = fold_batch({}, events[:2])

    again = fold_batch(first, events)  # a redelivery of the first two, then the third

    assert again[NUMBER.value].version == 3
    assert again[NUMBER.value].lines[0].dispensed == 2
    assert again[NUMBER.value] == given(*events)


def test_folding_event_by_event_or_in_one_batch_gives_the_same_state() -> None:
    events = [issued(3, 2), transmitted(2), dispensed(3, (1, 1)), cancelled(4)]
    states: dict[str, Prescription] = {}
    for event in events:
        states.update(fold_batch(states, [event]))

    assert states == fold_batch({}, events)


def test_an_inbox_entry_carries_everything_the_pharmacy_prepares_from() -> None:
    state = given(issued(3, 2), transmitted(2), dispensed(3, (1, 1), finess=PHARMACY_A))

    (entry,) = inbox_entries(state)

    assert entry == InboxEntry(
        finess=PHARMACY_B.value,
        prescription_id=NUMBER.value,
        transmitted_at=moment().at,
        message="Je passe demain",
        patient_ins=PATIENT.value,
        expires_on=date(2027, 11, 23),
        lines=(
            InboxLine(line_no=1, product=PARACETAMOL, quantity=3, remaining=2),
            InboxLine(line_no=2, product=AMOXICILLINE, quantity=2, remaining=2),
        ),
        handed=(DispensedLine(line_no=1, quantity=1, product=PARACETAMOL),),
    )


def test_a_withdrawn_dispensing_brings_the_prescription_back_to_the_inbox() -> None:
    withdrawn = DispensationWithdrawn(
        prescription_id=NUMBER.value,
        version=4,
        at=moment().at,
        dispensation_id="d1",
        finess=PHARMACY_A.value,
        pharmacist_rpps="x",
        reason="erreur",
    )
    state = given(issued(1), transmitted(2), dispensed(3, (1, 1)), withdrawn)

    (entry,) = inbox_entries(state)

    assert entry.lines[0].remaining == 1
    assert dispensing_records(state) == ()


def test_a_dispensing_record_says_what_the_line_prescribed() -> None:
    state = given(issued(3), dispensed(2, (1, 2)))

    (record,) = dispensing_records(state)

    assert record == DispensingRecord(
        patient_ins=PATIENT.value,
        prescription_id=NUMBER.value,
        dispensation_id="d1",
        line_no=1,
        product=PARACETAMOL,
        quantity=2,
        narcotic=False,
        duration_days=8,
        dispensed_at=moment().at,
        finess=PHARMACY_A.value,
    )
