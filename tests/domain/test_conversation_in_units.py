"""What the conversations' e-mails say is left (`domain.conversation.remaining_lines`), counted
as the read counts it: in boxes of the prescribed size, and in tablets on a line whose packs'
units the catalogue knows (Levothyrox 25 µg, boxes of 30 3400930065556 and of 90
3400930065570)."""

from __future__ import annotations

import msgspec

from domain.actors import Actor
from domain.catalogue import sized
from domain.conversation import Addresses, open_conversation, posting_of, remaining_lines
from domain.decisions.sending import transmit
from domain.events import (
    DispensationRecorded,
    DispensedLine,
    Event,
    MessagePosted,
    PrescriptionCancelled,
    PrescriptionIssued,
    RemainingLine,
)
from domain.prescription import Prescription, fold
from tests.domain.builders import PATIENT, PHARMACIST, PHARMACY_A, PRESCRIBER, moment
from tests.domain.counter import line, prescribed
from tests.domain.real_packs import (
    DOLIPRANE_SYRUP,
    LEVOTHYROX_30,
    LEVOTHYROX_90,
    RealPacks,
    pack,
)

PACKS = RealPacks()
WRITTEN = prescribed(
    line(3, 90, product=pack(LEVOTHYROX_30)), line(2, 10, product=pack(DOLIPRANE_SYRUP))
)


def handed(issued: PrescriptionIssued, code: str, version: int = 2) -> DispensationRecorded:
    return DispensationRecorded(
        prescription_id=issued.prescription_id,
        version=version,
        at=moment().at,
        dispensation_id=f"d{version}",
        finess=PHARMACY_A.value,
        pharmacist_rpps=PHARMACIST.value,
        dispensed_at=moment().at,
        lines=(DispensedLine(line_no=1, quantity=1, product=pack(code)),),
    )


def catalogued(*events: Event) -> Prescription:
    state = fold(events)
    assert state is not None
    return sized(state, PACKS)


def left(state: Prescription) -> list[tuple[int, int | None]]:
    return [(line.remaining, line.remaining_units) for line in remaining_lines(state)]


def test_a_box_of_30_given_leaves_two_boxes_that_is_60_tablets() -> None:
    state = catalogued(WRITTEN, handed(WRITTEN, LEVOTHYROX_30))

    assert remaining_lines(state)[0] == RemainingLine(
        line_no=1, label=f"pack {LEVOTHYROX_30}", remaining=2, quantity=3, remaining_units=60
    )
    assert left(state)[1] == (2, None)  # syrup: no unit count, so bottles only


def test_a_box_of_90_gives_the_whole_line_of_three_boxes_of_30() -> None:
    assert left(catalogued(WRITTEN, handed(WRITTEN, LEVOTHYROX_90))) == [(0, 0), (2, None)]


def test_nothing_is_left_once_cancelled() -> None:
    cancelled = PrescriptionCancelled(
        prescription_id=WRITTEN.prescription_id,
        version=3,
        at=moment().at,
        prescriber_rpps=PRESCRIBER.value,
        reason="erreur",
    )

    assert left(catalogued(WRITTEN, handed(WRITTEN, LEVOTHYROX_30), cancelled)) == [
        (0, 0),
        (0, None),
    ]


def test_without_the_catalogue_the_mail_counts_boxes_and_records_no_units() -> None:
    state = fold([WRITTEN, handed(WRITTEN, LEVOTHYROX_30)])
    assert state is not None

    (first, second) = remaining_lines(state)

    assert (first.remaining, first.remaining_units) == (2, None)
    assert b"remaining_units" not in msgspec.json.encode(first)  # as it was recorded before
    assert second.remaining == 2


def test_the_patient_s_message_to_the_pharmacy_carries_the_units_left() -> None:
    state = catalogued(WRITTEN, handed(WRITTEN, LEVOTHYROX_30))
    sent = transmit(state, PHARMACY_A, "Je passe à 18 h", moment())
    patient = Actor(role="patient", subject="p", ins=PATIENT.value)
    first = posting_of(patient, "m1", "Ordonnance", "Je passe à 18 h")
    addresses = Addresses(
        pharmacy="pharmacie.centrale@pharmacie.mssante.fr",
        patient="x@patient.mssante.fr",
        postmaster="ne-pas-repondre@ordo.mssante.fr",
        mail_domain="ordo.mssante.fr",
    )

    _, posted = open_conversation(state, sent, "c1", first, addresses)

    assert isinstance(posted, MessagePosted)
    assert posted.mails[0].remaining == remaining_lines(state)
    assert posted.mails[0].remaining[0].remaining_units == 60
