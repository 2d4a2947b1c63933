"""Who may send the ordonnance through MSSanté, and what its e-mails carry: given this caller,
when they send, then allowed or this error; given a prescription, when its e-mail is written,
then these addresses, this attachment and this Message-ID. No I/O (the use cases on a real log
are in tests/integration/test_ordonnance_use_cases.py)."""

from __future__ import annotations

import msgspec
import pytest

from adapters.messaging.ordonnance import PATIENT_COPY, PHARMACY_COPY, to_patient, to_pharmacy
from adapters.permissions import allow
from domain.actors import Actor
from domain.errors import DomainError
from domain.events import PrescriptionSentToPatient, PrescriptionTransmitted
from domain.prescription import Prescription, fold
from tests.domain.builders import (
    NUMBER,
    PATIENT,
    PHARMACIST,
    PHARMACY_A,
    PRESCRIBER,
    issued,
    moment,
)

POSTMASTER = "ne-pas-repondre@ordo.mssante.fr"
BAL_ORG = "pharmacie.centrale@pharmacie.mssante.fr"


def prescription() -> Prescription:
    state = fold([issued(2)])
    assert state is not None
    return state


def test_a_prescriber_may_ask_to_send_it() -> None:
    allow(Actor(role="prescriber", subject="d", rpps=PRESCRIBER.value), "send_to_patient")


@pytest.mark.parametrize(
    "actor",
    [
        Actor(role="patient", subject="p", ins=PATIENT.value),
        Actor(role="pharmacist", subject="ph", rpps=PHARMACIST.value, finess=PHARMACY_A.value),
        Actor(role="insurer", subject="i"),
    ],
)
def test_no_other_role_may(actor: Actor) -> None:
    with pytest.raises(DomainError) as refused:
        allow(actor, "send_to_patient")

    assert refused.value.code == "forbidden"
    assert refused.value.detail == "this operation is for the role prescriber"


def test_the_patients_email_goes_to_their_mailbox_with_their_copy() -> None:
    mail = to_patient(prescription(), 2, "Bonjour", POSTMASTER)

    assert mail.recipient == f"{PATIENT.value}@patient.mssante.fr"
    assert (mail.sender, mail.kind) == (POSTMASTER, "ordonnance")
    assert [(a.kind, a.ref, a.inline, a.content_type) for a in mail.attachments] == [
        (PATIENT_COPY, NUMBER.value, False, "application/pdf")
    ]
    assert mail.attachments[0].filename == f"ordonnance-{NUMBER.display()}.pdf"
    assert mail.subject == f"Votre ordonnance n° {NUMBER.display()}"


def test_the_pharmacys_email_goes_to_its_bal_org_with_the_pharmacys_copy() -> None:
    mail = to_pharmacy(prescription(), 2, "Sortie", PHARMACY_A.value, BAL_ORG, POSTMASTER)

    assert (mail.recipient, mail.sender, mail.kind) == (BAL_ORG, POSTMASTER, "ordonnance")
    assert [(a.kind, a.ref, a.inline) for a in mail.attachments] == [
        (PHARMACY_COPY, f"{NUMBER.value}/{PHARMACY_A.value}", False)
    ]
    assert PRESCRIBER.value in mail.body and mail.body.startswith("Sortie\n\n")


def test_the_message_id_names_the_sending_and_is_the_same_when_written_again() -> None:
    state = prescription()

    first = to_patient(state, 2, "", POSTMASTER)

    assert first == to_patient(state, 2, "", POSTMASTER)
    assert first.message_id != to_patient(state, 3, "", POSTMASTER).message_id
    assert first.message_id.endswith("@ordo.mssante.fr>") and PATIENT.value not in first.message_id
    to_bal = to_pharmacy(state, 2, "", PHARMACY_A.value, BAL_ORG, POSTMASTER)
    assert to_bal.message_id != first.message_id


def test_the_prescribers_words_come_first() -> None:
    state = prescription()

    assert to_patient(state, 2, "  Bonne journée ", POSTMASTER).body.startswith("Bonne journée\n\n")
    assert to_patient(state, 2, "  ", POSTMASTER).body.startswith("Votre médecin")


def test_an_event_recorded_before_the_mails_decodes_with_none() -> None:
    for event in (
        PrescriptionSentToPatient(
            prescription_id=NUMBER.value, version=2, at=moment().at, prescriber_rpps="x", message=""
        ),
        PrescriptionTransmitted(
            prescription_id=NUMBER.value, version=2, at=moment().at, finess="x", message=""
        ),
    ):
        older = msgspec.json.decode(msgspec.json.encode(event), type=dict)
        del older["mails"]

        assert msgspec.convert(older, type(event)).mails == ()
