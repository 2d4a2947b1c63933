"""What a client sent, kept verbatim with the event that records it: given a command carrying
each line as sent, when decided and folded, then the state gives those texts back unchanged."""

from __future__ import annotations

import msgspec

from domain.decisions.dispensing import dispense
from domain.decisions.issuing import IssuePrescription, RequestedLine, issue
from tests.domain.builders import (
    NUMBER,
    PARACETAMOL,
    PATIENT,
    PRESCRIBER,
    given,
    issued,
    moment,
    request,
)

SENT = '{"resourceType": "MedicationRequest", "note": [{"text": "à jeun"}]}'


def issuing(lines_as_sent: tuple[str, ...]) -> IssuePrescription:
    return IssuePrescription(
        prescriber=PRESCRIBER,
        patient=PATIENT,
        issued_on=moment().today,
        kind="standard",
        execution_view_consent=True,
        lines=(
            RequestedLine(product=PARACETAMOL, quantity=1, dosage="1 par jour", duration_days=8),
        ),
        lines_as_sent=lines_as_sent,
    )


def test_a_prescription_keeps_each_line_as_sent() -> None:
    event = issue(issuing((SENT,)), NUMBER, moment())

    assert event.lines_as_sent == (SENT,)
    assert given(event).lines_as_sent == (SENT,)


def test_a_prescription_sent_as_v1_json_keeps_nothing() -> None:
    assert given(issue(issuing(()), NUMBER, moment())).lines_as_sent == ()


def test_a_dispensing_keeps_each_line_as_sent() -> None:
    state = given(issued(3))
    asked = msgspec.structs.replace(request((1, 1)), lines_as_sent=(SENT,))

    recorded = dispense(state, asked, "d1", moment()).recorded

    assert recorded.lines_as_sent == (SENT,)
    after = given(issued(3), recorded).dispensation("d1")
    assert after is not None and after.lines_as_sent == (SENT,)


def test_a_dispensing_without_them_encodes_as_before_and_keeps_nothing() -> None:
    """The command's encoding fingerprints an Idempotency-Key's request: unchanged."""
    asked = request((1, 1))

    assert b"lines_as_sent" not in msgspec.json.encode(asked)
    assert dispense(given(issued(3)), asked, "d1", moment()).recorded.lines_as_sent == ()
