"""The ordonnance's sending use cases on a real (embedded) log: given these events, when this
actor sends, then these events or this error; and each copy of the PDF as the mailer renders it
from the log."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import pdfplumber
import pytest

from adapters.librarylog import LibraryLog, open_library_log
from adapters.messaging.directory import MssanteDirectory
from adapters.messaging.ordonnance import (
    PATIENT_COPY,
    PHARMACY_COPY,
    ordonnance_renderers,
)
from adapters.messaging.service import ConversationService
from adapters.store import Write
from adapters.store.embedded import EmbeddedEventStore
from domain.actors import Actor
from domain.errors import DomainError
from domain.events import PrescriptionSentToPatient, PrescriptionTransmitted
from tests.domain.builders import (
    ISSUED_ON,
    NUMBER,
    PATIENT,
    PHARMACIST,
    PHARMACY_A,
    PHARMACY_B,
    PRESCRIBER,
    issued,
    moment,
)
from tools import cast

POSTMASTER = "ne-pas-repondre@ordo.mssante.fr"
BAL_ORG = "pharmacie.centrale@pharmacie.mssante.fr"
PRESCRIBER_ACTOR = Actor(role="prescriber", subject="d", rpps=PRESCRIBER.value)
OTHER_PRESCRIBER = Actor(role="prescriber", subject="o", rpps=cast.OTHER_PRESCRIBER.value)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[LibraryLog]:
    opened = open_library_log(None, tmp_path)
    yield opened
    opened.close()


def service_on(log: LibraryLog, tmp_path: Path) -> ConversationService:
    directory = tmp_path / "mssante.csv"
    directory.write_text(f"{PHARMACY_A.value},{BAL_ORG}\n")
    store = EmbeddedEventStore(log)
    asyncio.run(store.append(Write([issued(2)])))
    return ConversationService(store, MssanteDirectory(directory), POSTMASTER, clock=moment)


def test_the_prescriber_who_wrote_it_sends_it_to_the_patient(
    log: LibraryLog, tmp_path: Path
) -> None:
    service = service_on(log, tmp_path)

    after = asyncio.run(service.send_to_patient(PRESCRIBER_ACTOR, NUMBER.value, "Bonjour"))

    (sent,) = log.events_of(NUMBER.value, 1)
    assert isinstance(sent, PrescriptionSentToPatient)
    assert (sent.prescriber_rpps, sent.message, sent.version) == (PRESCRIBER.value, "Bonjour", 2)
    (mail,) = sent.mails
    assert mail.recipient == f"{PATIENT.value}@patient.mssante.fr"
    assert mail.sender == POSTMASTER
    assert [(a.kind, a.ref, a.inline) for a in mail.attachments] == [
        (PATIENT_COPY, NUMBER.value, False)
    ]
    assert after.sent_to_patient[-1].message == "Bonjour"


@pytest.mark.parametrize(
    ("actor", "code"),
    [
        (OTHER_PRESCRIBER, "not_found"),
        (Actor(role="patient", subject="p", ins=PATIENT.value), "forbidden"),
        (
            Actor(role="pharmacist", subject="ph", rpps=PHARMACIST.value, finess=PHARMACY_A.value),
            "forbidden",
        ),
        (Actor(role="insurer", subject="i"), "forbidden"),
    ],
)
def test_no_one_else_sends_it(log: LibraryLog, tmp_path: Path, actor: Actor, code: str) -> None:
    service = service_on(log, tmp_path)

    with pytest.raises(DomainError) as refused:
        asyncio.run(service.send_to_patient(actor, NUMBER.value, ""))

    assert refused.value.code == code
    assert log.events_of(NUMBER.value, 1) == []


def test_the_prescribers_transmission_carries_the_pdf_to_the_bal_org(
    log: LibraryLog, tmp_path: Path
) -> None:
    service = service_on(log, tmp_path)

    sent = asyncio.run(service.transmit(PRESCRIBER_ACTOR, NUMBER.value, PHARMACY_A, "Sortie"))

    (transmitted,) = log.events_of(NUMBER.value, 1)
    assert isinstance(transmitted, PrescriptionTransmitted)
    assert transmitted.sent_by == "prescriber" and sent.pharmacy_mailbox
    (mail,) = transmitted.mails
    assert (mail.recipient, mail.kind) == (BAL_ORG, "ordonnance")
    assert [(a.kind, a.ref) for a in mail.attachments] == [
        (PHARMACY_COPY, f"{NUMBER.value}/{PHARMACY_A.value}")
    ]


def test_a_pharmacy_without_bal_org_gets_no_email(log: LibraryLog, tmp_path: Path) -> None:
    service = service_on(log, tmp_path)

    sent = asyncio.run(service.transmit(PRESCRIBER_ACTOR, NUMBER.value, PHARMACY_B, ""))

    (transmitted,) = log.events_of(NUMBER.value, 1)
    assert isinstance(transmitted, PrescriptionTransmitted)
    assert transmitted.mails == () and not sent.pharmacy_mailbox


def test_the_patients_transmission_carries_no_pdf_its_conversation_writes(
    log: LibraryLog, tmp_path: Path
) -> None:
    service = service_on(log, tmp_path)
    patient = Actor(role="patient", subject="p", ins=PATIENT.value)

    asyncio.run(service.transmit(patient, NUMBER.value, PHARMACY_A, "Je passe"))

    transmitted = log.events_of(NUMBER.value, 1)[0]
    assert isinstance(transmitted, PrescriptionTransmitted) and transmitted.mails == ()


# --- rendered at delivery ---------------------------------------------------------------------


def text_of(pdf: bytes) -> str:
    with pdfplumber.open(io.BytesIO(pdf)) as opened:
        return "\n".join(page.extract_text() for page in opened.pages)


def test_each_copy_is_rendered_from_the_log(log: LibraryLog, tmp_path: Path) -> None:
    service_on(log, tmp_path)
    renderers = ordonnance_renderers(log, lambda: ISSUED_ON)

    patients = text_of(renderers[PATIENT_COPY](NUMBER.value))
    pharmacys = text_of(renderers[PHARMACY_COPY](f"{NUMBER.value}/{PHARMACY_A.value}"))

    for text in (patients, pharmacys):
        assert NUMBER.display() in text and "Paracétamol 1 g" in text
    with pytest.raises(LookupError):
        renderers[PATIENT_COPY](NUMBER.value[:-1] + "0")
