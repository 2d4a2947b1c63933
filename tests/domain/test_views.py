"""What each caller sees of a prescription, and the patient's opposition."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec

from domain.actors import Actor
from domain.events import (
    AdaptationRecorded,
    PrescriptionCancelled,
    Product,
)
from domain.identifiers import Cip13
from domain.prescription import Prescription, add_months, evolve
from domain.views import (
    DispensationReceipt,
    ReceiptLine,
    display_number,
    issued_view,
    receipt_of,
    view_of,
)
from tests.domain.builders import (
    ISSUED_ON,
    NUMBER,
    PATIENT,
    PHARMACY_A,
    PHARMACY_B,
    PRESCRIBER,
    dispensed,
    given,
    issued,
    moment,
)
from tests.domain.counter import LEVOTHYROX, MORPHINE, Counter, at, days, line, prescribed


def test_status_follows_the_dispensings() -> None:
    assert given(issued(3)).status(ISSUED_ON) == "active"
    assert given(issued(3), dispensed(2, (1, 1))).status(ISSUED_ON) == "partially_dispensed"
    assert given(issued(3), dispensed(2, (1, 3))).status(ISSUED_ON) == "dispensed"


def test_cancelled_wins_over_dispensed_and_dispensed_over_expired() -> None:
    everything = (issued(3), dispensed(2, (1, 3)))
    cancelled = PrescriptionCancelled(
        prescription_id=NUMBER.value,
        version=3,
        at=moment().at,
        prescriber_rpps=PRESCRIBER.value,
        reason="erreur",
    )
    years_later = date(2029, 1, 1)

    assert given(*everything).status(years_later) == "dispensed"
    assert given(*everything, cancelled).status(ISSUED_ON) == "cancelled"
    assert given(*everything, cancelled).status(years_later) == "cancelled"
    assert given(issued(3), dispensed(2, (1, 1))).status(years_later) == "expired"


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


# --- the whole answer, field by field ---------------------------------------------------------


def as_json(value: object) -> Any:
    """What the API would send: the struct through JSON and back."""
    return msgspec.json.decode(msgspec.json.encode(value))


def _rich_state() -> Prescription:
    """Two lines; a dispensing in pharmacy A, another withdrawn, an adaptation."""
    issued = prescribed(line(3, 8), line(4, 28, narcotic=True))
    counter = Counter(issued)
    number = issued.prescription_id
    counter.dispense(number, (1, 1), (2, 4), when=at(days(1)))
    mistake = counter.dispense(number, (1, 1), when=at(days(1), 11), finess=PHARMACY_B)
    counter.withdraw(number, mistake.recorded.dispensation_id, at(days(1), 12), PHARMACY_B)
    state = counter.state(number)
    adapted = AdaptationRecorded(
        prescription_id=number,
        version=state.version + 1,
        at=at(days(2)),
        line_no=1,
        description="boîte de 28",
        agreed_by_rpps=PRESCRIBER.value,
        agreed_on=days(2),
        finess=PHARMACY_A.value,
        pharmacist_rpps=PRESCRIBER.value,
        dispensation_id="d1",
    )
    return evolve(adapted, state)


def test_a_pharmacist_reads_every_field() -> None:
    state = _rich_state()
    pharmacist_a = Actor(role="pharmacist", subject="a", rpps="x", finess=PHARMACY_A.value)

    view = as_json(view_of(state, pharmacist_a, days(2)))

    lines = view.pop("lines")
    dispensations = view.pop("dispensations")
    assert view == {
        "prescription_id": display_number(state.prescription_id),
        "status": "partially_dispensed",
        "kind": "secure",
        "issued_on": "2026-11-23",
        "expires_on": "2027-11-23",
        "prescriber_rpps": PRESCRIBER.value,
        "patient": {"ins": PATIENT.value},
        "execution_view_consent": True,
        "execution_visible": True,
        "adaptations": [
            {
                "line_no": 1,
                "description": "boîte de 28",
                "prescriber_rpps": PRESCRIBER.value,
                "agreed_on": "2026-11-25",
                "finess": PHARMACY_A.value,
                "pharmacist_rpps": PRESCRIBER.value,
                "recorded_at": "2026-11-25T09:00:00Z",
                "dispensation_id": "d1",
            }
        ],
        "dispensed_elsewhere": False,  # B's dispensing was withdrawn: it counts nowhere
    }
    assert [
        (x["line_no"], x["dispensed"], x["remaining"], x["covered_until"], x["narcotic"])
        for x in lines
    ] == [(1, 1, 2, "2026-11-27", False), (2, 4, 0, "2026-12-22", True)]
    assert {k: lines[1][k] for k in ("quantity", "duration_days", "dosage")} == {
        "quantity": 4,
        "duration_days": 28,
        "dosage": "1 par jour",
    }
    assert [
        (d["dispensation_id"], d["finess"], d["withdrawn"], d["billed"]) for d in dispensations
    ] == [
        ("d1", PHARMACY_A.value, False, False),
        ("d2", PHARMACY_B.value, True, False),
    ]
    assert dispensations[1]["dispensed_at"] == "2026-11-24T10:00:00Z"
    assert dispensations[1]["recorded_at"] == "2026-11-24T10:00:00Z"
    unmentioned = {"generic_refused": False, "non_substitution": None, "lot": None}
    assert dispensations[0]["lines"] == [
        {"line_no": 1, "quantity": 1, "product": as_json(LEVOTHYROX), **unmentioned},
        {"line_no": 2, "quantity": 4, "product": as_json(MORPHINE), **unmentioned},
    ]


def test_a_prescriber_under_opposition_reads_only_what_was_written() -> None:
    state = msgspec.structs.replace(_rich_state(), execution_view_consent=False)

    view = view_of(state, PRESCRIBER_ACTOR, days(2))

    assert (view.status, view.expires_on, view.dispensations, view.adaptations) == (
        "active",
        date(2027, 2, 23),
        (),
        (),
    )
    assert [(x.dispensed, x.remaining, x.covered_until) for x in view.lines] == [
        (None, None, None),
        (None, None, None),
    ]
    assert view.dispensed_elsewhere is None
    assert view.patient.ins == PATIENT.value and view.kind == "secure"


def test_issuing_answers_the_view_and_the_qr_payload() -> None:
    state = _rich_state()

    issued_answer = issued_view(state, PRESCRIBER_ACTOR, days(2))

    plain = as_json(view_of(state, PRESCRIBER_ACTOR, days(2)))
    assert as_json(issued_answer) == {
        **plain,
        "qr_payload": display_number(state.prescription_id),
    }


def test_the_receipt_of_a_dispensing_says_where_each_line_stands() -> None:
    state = _rich_state()

    receipt = receipt_of(state, "d1", PHARMACY_B.value, days(2))

    assert receipt == DispensationReceipt(
        dispensation_id="d1",
        status="partially_dispensed",
        lines=(
            ReceiptLine(line_no=1, dispensed=1, remaining=2),
            ReceiptLine(line_no=2, dispensed=4, remaining=0),
        ),
        dispensed_elsewhere=True,
    )


# --- status precedence and the masked status --------------------------------------------------


def _cancelled(version: int) -> PrescriptionCancelled:
    return PrescriptionCancelled(
        prescription_id=NUMBER.value,
        version=version,
        at=at(days(1)),
        prescriber_rpps=PRESCRIBER.value,
        reason="erreur",
    )


def test_a_cancelled_prescription_reads_cancelled_to_a_prescriber_under_opposition() -> None:
    started = given(issued(3, consent=False), dispensed(2, (1, 1)), _cancelled(3))
    untouched = given(issued(3, consent=False), _cancelled(2))

    for state in (started, untouched):
        view = view_of(state, PRESCRIBER_ACTOR, days(2))
        assert (view.status, view.expires_on) == ("cancelled", date(2027, 2, 23))
    # After the deadline too: a cancellation is what the prescriber did, not what was dispensed.
    assert view_of(started, PRESCRIBER_ACTOR, date(2027, 3, 1)).status == "cancelled"


def test_under_opposition_the_deadline_day_itself_still_reads_active() -> None:
    state = given(issued(3, consent=False), dispensed(2, (1, 1)))

    on_the_day = view_of(state, PRESCRIBER_ACTOR, date(2027, 2, 23))
    the_day_after = view_of(state, PRESCRIBER_ACTOR, date(2027, 2, 24))

    assert (on_the_day.status, the_day_after.status) == ("active", "expired")
    assert on_the_day.expires_on == the_day_after.expires_on == date(2027, 2, 23)


def test_a_cancelled_prescription_shows_what_was_given_and_that_nothing_remains() -> None:
    state = given(issued(3, 2), dispensed(2, (1, 1)), _cancelled(3))

    view = view_of(state, PATIENT_ACTOR, days(2))

    assert view.status == "cancelled"
    assert [(x.line_no, x.dispensed, x.remaining) for x in view.lines] == [(1, 1, 0), (2, 0, 0)]


# --- what was written, line by line -----------------------------------------------------------

TRAMADOL = Product(
    system="CIP13", code=Cip13.from_body("340093000111").value, label="Tramadol 50 mg"
)


def test_every_caller_reads_each_line_as_it_was_written() -> None:
    issued_event = prescribed(
        line(4, 28, narcotic=True, fraction_days=7, overlap_allowed=True),
        line(6, 84, assimilated=True, product=TRAMADOL),
    )
    state = msgspec.structs.replace(
        Counter(issued_event).state(issued_event.prescription_id), execution_view_consent=False
    )
    written = [
        {
            "line_no": 1,
            "product": as_json(MORPHINE),
            "quantity": 4,
            "dosage": "1 par jour",
            "duration_days": 28,
            "narcotic": True,
            "assimilated": False,
            "fraction_days": 7,
            "overlap_allowed": True,
            "non_substitutable": None,
            "designated_finess": None,
        },
        {
            "line_no": 2,
            "product": as_json(TRAMADOL),
            "quantity": 6,
            "dosage": "1 par jour",
            "duration_days": 84,
            "narcotic": False,
            "assimilated": True,
            "fraction_days": None,
            "overlap_allowed": False,
            "non_substitutable": None,
            "designated_finess": None,
        },
    ]

    masked = as_json(view_of(state, PRESCRIBER_ACTOR, days(0)))["lines"]
    seen = as_json(view_of(state, PATIENT_ACTOR, days(0)))["lines"]

    hidden = {"dispensed": None, "remaining": None, "covered_until": None, "remaining_units": None}
    assert masked == [{**x, **hidden} for x in written]
    assert seen == [
        {
            **x,
            "dispensed": 0,
            "remaining": x["quantity"],
            "covered_until": None,
            "remaining_units": None,
        }
        for x in written
    ]


def test_the_receipt_in_the_only_pharmacy_that_dispensed_says_not_elsewhere() -> None:
    state = given(issued(3), dispensed(2, (1, 1)), dispensed(3, (1, 1), dispensation_id="d2"))

    receipt = receipt_of(state, "d2", PHARMACY_A.value, ISSUED_ON)

    assert receipt == DispensationReceipt(
        dispensation_id="d2",
        status="partially_dispensed",
        lines=(ReceiptLine(line_no=1, dispensed=2, remaining=1),),
        dispensed_elsewhere=False,
    )
