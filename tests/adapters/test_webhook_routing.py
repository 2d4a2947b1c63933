"""Who is pushed what: given a prescription's events, the pushes of the next one."""

from __future__ import annotations

from functools import reduce

from adapters.webhooks.routing import Push, Watch, follow
from domain.events import (
    ConversationOpened,
    Event,
    ExecutionViewConsentChanged,
    MessagePosted,
    Party,
    PrescriptionCancelled,
    PrescriptionTransmitted,
)
from tests.domain.builders import (
    NUMBER,
    PHARMACY_A,
    PHARMACY_B,
    PRESCRIBER,
    dispensed,
    issued,
    moment,
)

AT = moment().at


def transmitted(finess: str, version: int) -> PrescriptionTransmitted:
    return PrescriptionTransmitted(
        prescription_id=NUMBER.value, version=version, at=AT, finess=finess, message="18 h"
    )


def watched(*events: Event) -> Watch:
    return reduce(lambda watch, event: follow(watch, event)[0], events, Watch())


def pushed(given: Watch, event: Event) -> list[tuple[str, str, str]]:
    return [(p.kind, p.owner, p.owner_id) for p in follow(given, event)[1]]


def test_a_transmission_is_pushed_to_its_pharmacy_only() -> None:
    given = watched(issued(3))

    assert pushed(given, transmitted(PHARMACY_A.value, 2)) == [
        ("transmission", "pharmacy", PHARMACY_A.value)
    ]


def test_a_cancellation_is_pushed_to_the_prescriber_and_the_pharmacies_it_was_sent_to() -> None:
    given = watched(issued(3), transmitted(PHARMACY_A.value, 2))
    cancelled = PrescriptionCancelled(
        prescription_id=NUMBER.value, version=3, at=AT, prescriber_rpps=PRESCRIBER.value, reason="x"
    )

    assert pushed(given, cancelled) == [
        ("cancellation", "prescriber", PRESCRIBER.value),
        ("cancellation", "pharmacy", PHARMACY_A.value),
    ]


def test_a_dispensing_elsewhere_is_pushed_to_the_other_pharmacies_and_the_prescriber() -> None:
    given = watched(issued(3), transmitted(PHARMACY_A.value, 2), transmitted(PHARMACY_B.value, 3))

    assert pushed(given, dispensed(4, (1, 1), finess=PHARMACY_B)) == [
        ("dispensed_elsewhere", "pharmacy", PHARMACY_A.value),
        ("dispensed_elsewhere", "prescriber", PRESCRIBER.value),
    ]


def test_a_prescriber_the_patient_opposes_is_not_told_of_a_dispensing() -> None:
    opposed_later = ExecutionViewConsentChanged(
        prescription_id=NUMBER.value, version=2, at=AT, consent=False, changed_by="patient"
    )

    assert pushed(watched(issued(3, consent=False)), dispensed(2, (1, 1))) == []
    assert pushed(watched(issued(3), opposed_later), dispensed(3, (1, 1))) == []


def test_the_patient_s_message_is_pushed_to_the_conversation_s_pharmacy_not_the_pharmacy_s() -> (
    None
):
    opened = ConversationOpened(
        prescription_id=NUMBER.value,
        version=1,
        at=AT,
        conversation_id="c1",
        finess=PHARMACY_A.value,
        patient_ins="x",
    )
    given = watched(issued(3), opened)

    def posted(sender: Party) -> MessagePosted:
        return MessagePosted(
            prescription_id=NUMBER.value,
            version=2,
            at=AT,
            conversation_id="c1",
            message_id="m1",
            sender=sender,
            rpps=None,
            subject="Bonjour",
            body="Je passe à 18 h",
        )

    assert pushed(given, posted("patient")) == [("message", "pharmacy", PHARMACY_A.value)]
    assert pushed(given, posted("pharmacy")) == []
    assert follow(given, posted("patient"))[1][0] == Push(
        kind="message",
        owner="pharmacy",
        owner_id=PHARMACY_A.value,
        data={
            "prescription_id": NUMBER.display(),
            "conversation_id": "c1",
            "message_id": "m1",
            "subject": "Bonjour",
            "body": "Je passe à 18 h",
        },
    )
