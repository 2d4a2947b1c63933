"""Conversations around a prescription (MSSanté): given its events, when a message is posted,
then these events (and e-mails) or this refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain import events
from domain.actors import Actor
from domain.conversation import (
    Addresses,
    closes,
    is_mssante,
    open_conversation,
    patient_address,
    post,
    posting_of,
    remaining_lines,
)
from domain.conversation_state import Conversation, Message, fold_conversation
from domain.decisions.sending import transmit
from domain.errors import DomainError
from domain.events import (
    ConversationClosed,
    ConversationEvent,
    ConversationOpened,
    Mail,
    MessagePosted,
    RemainingLine,
)
from domain.prescription import Prescription, fold
from projections.folds import fold_batch
from tests.domain.builders import (
    NUMBER,
    PATIENT,
    PHARMACIST,
    PHARMACY_A,
    PHARMACY_B,
    PRESCRIBER,
    dispensed,
    issued,
    moment,
)

BAL_ORG = "pharmacie.centrale@pharmacie.mssante.fr"
POSTMASTER = "ne-pas-repondre@ordo.mssante.fr"
PATIENT_ACTOR = Actor(role="patient", subject="p", ins=PATIENT.value)
PHARMACIST_ACTOR = Actor(
    role="pharmacist", subject="ph", rpps=PHARMACIST.value, finess=PHARMACY_A.value
)
LATER = moment().at + timedelta(hours=2)


def cancelled(version: int) -> events.PrescriptionCancelled:
    return events.PrescriptionCancelled(
        prescription_id=NUMBER.value,
        version=version,
        at=moment().at,
        prescriber_rpps=PRESCRIBER.value,
        reason="erreur",
    )


def addresses(pharmacy: str | None = BAL_ORG) -> Addresses:
    return Addresses(
        pharmacy=pharmacy,
        patient=patient_address(PATIENT.value),
        postmaster=POSTMASTER,
        mail_domain="ordo.mssante.fr",
    )


def prescription(*quantities: int) -> Prescription:
    state = fold([issued(*(quantities or (3,)))])
    assert state is not None
    return state


def opened(
    state: Prescription | None = None, pharmacy: str | None = BAL_ORG
) -> tuple[Prescription, list[ConversationEvent]]:
    state = state or prescription()
    sent = transmit(state, PHARMACY_A, "Je passe à 18 h", moment())
    first = posting_of(PATIENT_ACTOR, "m1", "Ordonnance", "Je passe à 18 h")
    return state, list(open_conversation(state, sent, "c1", first, addresses(pharmacy)))


def conversation(events: list[ConversationEvent]) -> Conversation:
    found = fold_conversation(events)
    assert found is not None
    return found


def posted(
    events: list[ConversationEvent],
    author: Actor,
    subject: str,
    state: Prescription | None = None,
    pharmacy: str | None = BAL_ORG,
) -> list[ConversationEvent]:
    posting = posting_of(author, f"m{len(events)}", subject, "texte")
    return post(
        conversation(events), state or prescription(), author, posting, LATER, addresses(pharmacy)
    )


# --- opening ---------------------------------------------------------------------------------


def test_a_transmission_opens_a_conversation_with_the_patients_message_to_the_bal_org() -> None:
    _, (opening, first) = opened()
    assert opening.version == 1 and first.version == 2
    assert opening.conversation_id == first.conversation_id == "c1"
    assert isinstance(opening, ConversationOpened)
    assert opening.prescription_id == NUMBER.value
    assert (opening.finess, opening.patient_ins) == (PHARMACY_A.value, PATIENT.value)
    assert isinstance(first, MessagePosted)
    assert (first.sender, first.rpps, first.body) == ("patient", None, "Je passe à 18 h")
    (mail,) = first.mails
    assert mail.recipient == BAL_ORG
    assert mail.sender == f"{PATIENT.value}@patient.mssante.fr"
    assert mail.message_id == "<m1@ordo.mssante.fr>"
    assert mail.kind == "message"
    assert [(a.kind, a.ref, a.inline) for a in mail.attachments] == [("qr_png", NUMBER.value, True)]


def test_a_pharmacy_without_bal_org_gets_no_mail_and_the_patient_is_told() -> None:
    _, (_, first) = opened(pharmacy=None)
    assert isinstance(first, MessagePosted)
    (notice,) = first.mails
    assert notice.kind == "no_mailbox_notice"
    assert notice.recipient == patient_address(PATIENT.value)
    assert notice.sender == POSTMASTER
    assert notice.message_id == "<m1.notice@ordo.mssante.fr>"
    assert notice.attachments == ()


def test_the_mail_says_what_remains_to_dispense_at_that_moment() -> None:
    state = fold([dispensed(2, (1, 1))], prescription(3, 2))
    assert state is not None
    _, (_, first) = opened(state)
    assert isinstance(first, MessagePosted)
    assert [(r.line_no, r.remaining, r.quantity) for r in first.mails[0].remaining] == [
        (1, 2, 3),
        (2, 2, 2),
    ]
    assert [r.remaining for r in remaining_lines(state)] == [2, 2]


# --- who may post ----------------------------------------------------------------------------


def test_the_pharmacy_answers_with_the_rpps_of_who_wrote_it_to_the_patients_mailbox() -> None:
    _, events = opened()
    (answer,) = posted(events, PHARMACIST_ACTOR, "Prête à 18 h")
    assert isinstance(answer, MessagePosted)
    assert (answer.sender, answer.rpps, answer.version) == ("pharmacy", PHARMACIST.value, 3)
    assert answer.at == LATER
    (mail,) = answer.mails
    assert (mail.sender, mail.recipient) == (BAL_ORG, patient_address(PATIENT.value))
    assert mail.attachments == ()


def test_a_pharmacy_without_bal_org_writes_from_the_postmaster() -> None:
    _, events = opened(pharmacy=None)
    (answer,) = posted(events, PHARMACIST_ACTOR, "Prête", pharmacy=None)
    assert isinstance(answer, MessagePosted)
    assert answer.mails[0].sender == POSTMASTER
    assert answer.mails[0].kind == "message"


def test_the_patient_may_write_again_while_it_is_open() -> None:
    _, events = opened()
    (again,) = posted(events, PATIENT_ACTOR, "Merci")
    assert isinstance(again, MessagePosted)
    assert (again.sender, again.rpps, again.version) == ("patient", None, 3)


@pytest.mark.parametrize(
    "stranger",
    [
        Actor(role="pharmacist", subject="x", rpps=PHARMACIST.value, finess=PHARMACY_B.value),
        Actor(role="patient", subject="x", ins="2840199000000"),
        Actor(role="prescriber", subject="x", rpps=PHARMACIST.value),
        Actor(role="insurer", subject="x"),
    ],
)
def test_anyone_else_is_told_the_conversation_does_not_exist(stranger: Actor) -> None:
    _, events = opened()
    with pytest.raises(DomainError) as refused:
        posted(events, stranger, "Bonjour")
    assert refused.value.code == "not_found"


# --- FIN -------------------------------------------------------------------------------------


@pytest.mark.parametrize("subject", ["FIN", "fin", "  Fin  ", "\tfIN\n"])
def test_fin_from_the_pharmacy_closes_the_conversation(subject: str) -> None:
    _, events = opened()
    answer, closing = posted(events, PHARMACIST_ACTOR, subject)
    assert isinstance(closing, ConversationClosed)
    assert (closing.version, closing.rpps, closing.at) == (4, PHARMACIST.value, LATER)
    assert closing.conversation_id == "c1"
    assert isinstance(answer, MessagePosted) and answer.mails  # the patient still gets it
    after = conversation([*events, answer, closing])
    assert after.status == "closed" and after.closed_at == LATER


@pytest.mark.parametrize("subject", ["FIN de la préparation", "F I N", "FINI", "Fin.", "fine"])
def test_only_fin_itself_closes(subject: str) -> None:
    _, events = opened()
    assert len(posted(events, PHARMACIST_ACTOR, subject)) == 1
    assert not closes(subject)


def test_fin_from_the_patient_does_not_close() -> None:
    _, events = opened()
    (message,) = posted(events, PATIENT_ACTOR, "FIN")
    assert isinstance(message, MessagePosted)


def test_a_closed_conversation_refuses_the_patient_and_the_pharmacy() -> None:
    _, events = opened()
    events += posted(events, PHARMACIST_ACTOR, "FIN")
    for author in (PATIENT_ACTOR, PHARMACIST_ACTOR):
        with pytest.raises(DomainError) as refused:
            posted(events, author, "Encore une question")
        assert refused.value.code == "conversation_closed"


def test_a_closed_conversation_is_still_not_found_for_strangers() -> None:
    _, events = opened()
    events += posted(events, PHARMACIST_ACTOR, "FIN")
    other = Actor(role="pharmacist", subject="x", rpps=PHARMACIST.value, finess=PHARMACY_B.value)
    with pytest.raises(DomainError) as refused:
        posted(events, other, "?")
    assert refused.value.code == "not_found"


# --- the fold --------------------------------------------------------------------------------


def test_the_conversation_folds_its_messages_in_order_with_its_last_activity() -> None:
    _, events = opened()
    events += posted(events, PHARMACIST_ACTOR, "Prête à 18 h")
    found = conversation(events)
    assert found.version == 3
    assert [(m.sender, m.subject) for m in found.messages] == [
        ("patient", "Ordonnance"),
        ("pharmacy", "Prête à 18 h"),
    ]
    assert found.opened_at == moment().at and found.last_activity_at == LATER
    assert found.status == "open" and found.closed_at is None


def test_a_message_before_the_opening_is_refused_by_the_fold() -> None:
    _, events = opened()
    with pytest.raises(ValueError, match="before ConversationOpened"):
        fold_conversation(events[1:])


def test_the_read_side_folds_conversations_beside_the_prescription_once() -> None:
    state, events = opened()
    sent = transmit(state, PHARMACY_A, "", moment())
    changed = fold_batch({}, [issued(), sent, *events])
    folded = changed[NUMBER.value]
    assert folded.version == 2  # conversations do not move the prescription's version
    assert [c.conversation_id for c in folded.conversations] == ["c1"]
    assert folded.folded_version == 2 + 2
    assert fold_batch({NUMBER.value: folded}, events) == {}  # a redelivery changes nothing
    assert all(folded.has_folded(event) for event in events)
    more = posted(events, PHARMACIST_ACTOR, "Prête")
    assert not folded.has_folded(more[0])
    after = fold_batch({NUMBER.value: folded}, more)[NUMBER.value]
    assert after.folded_version == folded.folded_version + 1


# --- addresses -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "accepted"),
    [
        ("x@evil.com@mssante.fr", False),
        ("x@pharmacie-centrale.mssante.fr", True),
        (" x@mssante.fr ", True),
        ("x@mssante.fr\nBcc: y@mssante.fr", False),
        ("pharmacie@pharmacie.mssante.fr", True),
        ("x@mssante.fr", True),
        ("X@Patient.MSSANTE.FR", True),
        ("x@gmail.com", False),
        ("x@mssante.fr.evil.com", False),
        ("x@notmssante.fr", False),
        ("mssante.fr", False),
        ("@mssante.fr", False),
        ("a b@mssante.fr", False),
    ],
)
def test_only_mssante_addresses_are_used(address: str, accepted: bool) -> None:
    assert is_mssante(address) is accepted


def test_the_patients_address_is_their_ins_at_patient_mssante() -> None:
    assert patient_address(PATIENT.value) == f"{PATIENT.value}@patient.mssante.fr"


# --- word for word: every field of what is recorded -------------------------------------------

PATIENT_BOX = f"{PATIENT.value}@patient.mssante.fr"


def test_the_opening_word_for_word() -> None:
    state = fold([dispensed(2, (1, 1))], prescription(3))
    assert state is not None
    _, (opening, first) = opened(state)
    remaining = (RemainingLine(line_no=1, label="Paracétamol 1 g", remaining=2, quantity=3),)
    assert opening == ConversationOpened(
        prescription_id=NUMBER.value,
        conversation_id="c1",
        version=1,
        at=moment().at,
        finess=PHARMACY_A.value,
        patient_ins=PATIENT.value,
    )
    assert first == MessagePosted(
        prescription_id=NUMBER.value,
        conversation_id="c1",
        version=2,
        at=moment().at,
        message_id="m1",
        sender="patient",
        rpps=None,
        subject="Ordonnance",
        body="Je passe à 18 h",
        mails=(
            Mail(
                message_id="<m1@ordo.mssante.fr>",
                kind="message",
                sender=PATIENT_BOX,
                recipient=BAL_ORG,
                subject="Ordonnance",
                body="Je passe à 18 h",
                prescription_id=NUMBER.value,
                remaining=remaining,
                attachments=(
                    events.Attachment(
                        kind="qr_png",
                        ref=NUMBER.value,
                        filename=f"ordonnance-{NUMBER.value}.png",
                        content_type="image/png",
                        inline=True,
                    ),
                ),
            ),
        ),
    )


def test_the_notice_word_for_word() -> None:
    _, (_, first) = opened(pharmacy=None)
    assert isinstance(first, MessagePosted)
    assert first.mails == (
        Mail(
            message_id="<m1.notice@ordo.mssante.fr>",
            kind="no_mailbox_notice",
            sender=POSTMASTER,
            recipient=PATIENT_BOX,
            subject="Non distribué : Ordonnance",
            body="Je passe à 18 h",
            prescription_id=NUMBER.value,
            remaining=(RemainingLine(line_no=1, label="Paracétamol 1 g", remaining=3, quantity=3),),
        ),
    )


def test_the_answer_and_the_closing_word_for_word() -> None:
    state = fold([cancelled(2)], prescription(3))
    assert state is not None
    _, events = opened()
    posting = posting_of(PHARMACIST_ACTOR, "m2", "Fin", "Bonne journée")
    answer, closing = post(
        conversation(events), state, PHARMACIST_ACTOR, posting, LATER, addresses()
    )
    assert answer == MessagePosted(
        prescription_id=NUMBER.value,
        conversation_id="c1",
        version=3,
        at=LATER,
        message_id="m2",
        sender="pharmacy",
        rpps=PHARMACIST.value,
        subject="Fin",
        body="Bonne journée",
        mails=(
            Mail(
                message_id="<m2@ordo.mssante.fr>",
                kind="message",
                sender=BAL_ORG,
                recipient=PATIENT_BOX,
                subject="Fin",
                body="Bonne journée",
                prescription_id=NUMBER.value,
                # cancelled: nothing remains to dispense
                remaining=(
                    RemainingLine(line_no=1, label="Paracétamol 1 g", remaining=0, quantity=3),
                ),
            ),
        ),
    )
    assert closing == ConversationClosed(
        prescription_id=NUMBER.value,
        conversation_id="c1",
        version=4,
        at=LATER,
        rpps=PHARMACIST.value,
    )
    assert conversation([*events, answer, closing]) == Conversation(
        conversation_id="c1",
        prescription_id=NUMBER.value,
        finess=PHARMACY_A.value,
        patient_ins=PATIENT.value,
        version=4,
        opened_at=moment().at,
        last_activity_at=LATER,
        closed_at=LATER,
        messages=(
            Message(
                message_id="m1",
                sender="patient",
                rpps=None,
                subject="Ordonnance",
                body="Je passe à 18 h",
                at=moment().at,
            ),
            Message(
                message_id="m2",
                sender="pharmacy",
                rpps=PHARMACIST.value,
                subject="Fin",
                body="Bonne journée",
                at=LATER,
            ),
        ),
    )


def test_the_refusals_word_for_word() -> None:
    _, events = opened()
    events += posted(events, PHARMACIST_ACTOR, "FIN")
    with pytest.raises(DomainError) as closed:
        posted(events, PATIENT_ACTOR, "?")
    assert (closed.value.code, closed.value.detail) == (
        "conversation_closed",
        "this conversation was closed by the pharmacy; a new transmission opens a new one",
    )
    stranger = Actor(role="insurer", subject="x")
    with pytest.raises(DomainError) as hidden:
        posted(events, stranger, "?")
    assert (hidden.value.code, hidden.value.detail) == ("not_found", "no such conversation")


def test_a_fold_out_of_order_names_the_event_and_the_conversation() -> None:
    _, events = opened()
    with pytest.raises(ValueError, match=r"^MessagePosted before ConversationOpened for c1$"):
        fold_conversation(events[1:])


def test_the_last_activity_is_the_latest_event_opening_and_closing_included() -> None:
    _, events = opened()
    assert conversation(events[:1]).last_activity_at == moment().at
    closing = ConversationClosed(
        prescription_id=NUMBER.value,
        conversation_id="c1",
        version=3,
        at=LATER,
        rpps=PHARMACIST.value,
    )
    assert conversation([*events, closing]).last_activity_at == LATER
