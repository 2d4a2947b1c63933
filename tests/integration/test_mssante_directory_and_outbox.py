"""The MSSanté directory file, the `.eml` outbox, a relay's temporary refusal, and the Kafka
envelope of conversation events."""

from __future__ import annotations

import asyncio
import email
import os
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.bootstrap import mailer_for
from adapters.config import Settings
from adapters.kafka.messages import from_message, to_message
from adapters.mailer.compose import RENDERERS, compose
from adapters.mailer.run import mails_in
from adapters.mailer.transport import EmlTransport, eml_name
from adapters.messaging.directory import MssanteDirectory
from domain.conversation import qr_code
from domain.events import Attachment, ConversationClosed, Mail, MessagePosted, RemainingLine
from domain.identifiers import Finess, PrescriptionNumber
from tests.integration.smtp_relay import Relay
from tools.cast import SECRET, People

NUMBER = PrescriptionNumber.generate().value


def a_mail(
    message_id: str = "<m1@ordo.mssante.fr>", recipient: str = "x@pharmacie.mssante.fr"
) -> Mail:
    return Mail(
        message_id=message_id,
        kind="message",
        sender="184127645108946@patient.mssante.fr",
        recipient=recipient,
        subject="Ordonnance à préparer",
        body="Je passe à 18 h",
        prescription_id=NUMBER,
        remaining=(RemainingLine(line_no=1, label="Paracétamol 1 g", remaining=2, quantity=3),),
        attachments=(qr_code(NUMBER),),
    )


def test_the_directory_is_read_again_when_the_file_changes(tmp_path: Path, people: People) -> None:
    path = tmp_path / "mssante.csv"
    path.write_text(f"finess,address\n{people.pharmacy},a@pharmacie.mssante.fr\n")
    directory = MssanteDirectory(path)
    assert directory.bal_org(people.pharmacy) == "a@pharmacie.mssante.fr"
    assert directory.bal_org(people.other_pharmacy) is None

    time.sleep(0.01)
    path.write_text(
        f"{people.pharmacy},nouvelle.adresse@pharmacie.mssante.fr\n"
        f"{people.other_pharmacy},b@pharmacie.mssante.fr\n"
    )
    os.utime(path, (time.time() + 5, time.time() + 5))  # a change the clock's resolution sees
    assert directory.bal_org(people.pharmacy) == "nouvelle.adresse@pharmacie.mssante.fr"
    assert directory.bal_org(people.other_pharmacy) == "b@pharmacie.mssante.fr"

    path.unlink()
    assert directory.bal_org(people.pharmacy) is None


def test_the_directory_refuses_addresses_outside_mssante_and_invalid_finess(
    tmp_path: Path, people: People
) -> None:
    path = tmp_path / "mssante.csv"
    bad_finess = Finess.from_body("75071218").value[:-1] + "0"
    path.write_text(
        f"{people.pharmacy},officine@gmail.com\n"
        f"{people.other_pharmacy},officine@mssante.fr.example.com\n"
        f"{bad_finess},c@pharmacie.mssante.fr\n"
        "\n"
        "only-one-cell\n"
    )
    directory = MssanteDirectory(path)
    assert directory.bal_org(people.pharmacy) is None
    assert directory.bal_org(people.other_pharmacy) is None
    assert directory.bal_org(bad_finess) is None
    assert MssanteDirectory(None).bal_org(people.pharmacy) is None


def test_the_directory_lists_prescribers_by_rpps_beside_pharmacies(
    tmp_path: Path, people: People
) -> None:
    path = tmp_path / "mssante.csv"
    bad_rpps = people.prescriber[:-1] + str((int(people.prescriber[-1]) + 1) % 10)
    path.write_text(
        f"finess,address\n{people.pharmacy},a@pharmacie.mssante.fr\n"
        f"rpps,address\n{people.prescriber},Dr.Martin@medecin.mssante.fr\n"
        f"{people.other_prescriber},martin@gmail.com\n"
        f"{bad_rpps},x@medecin.mssante.fr\n"
    )
    directory = MssanteDirectory(path)

    assert directory.prescriber_mailbox(people.prescriber) == "dr.martin@medecin.mssante.fr"
    assert directory.prescriber_mailbox(people.other_prescriber) is None
    assert directory.prescriber_mailbox(bad_rpps) is None
    assert directory.bal_org(people.pharmacy) == "a@pharmacie.mssante.fr"
    assert directory.bal_org(people.prescriber) is None


def test_the_eml_outbox_writes_each_message_once_under_its_message_id(tmp_path: Path) -> None:
    outbox = EmlTransport(tmp_path / "outbox")
    mail = a_mail()
    message = compose(mail, datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    outbox.send(message, mail.sender, mail.recipient)
    outbox.send(compose(mail, datetime(2026, 12, 1, 9, 5, tzinfo=UTC)), mail.sender, mail.recipient)

    (written,) = (tmp_path / "outbox").iterdir()
    assert written.name == eml_name(mail.message_id) == "m1@ordo.mssante.fr.eml"
    parsed = email.message_from_bytes(written.read_bytes(), policy=SMTP)
    assert parsed["Date"] == "Tue, 01 Dec 2026 09:00:00 +0000"  # the first one stays
    assert parsed["Subject"] == "Ordonnance à préparer"


def test_every_attempt_writes_the_same_email(tmp_path: Path) -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert compose(a_mail(), at).as_bytes() == compose(a_mail(), at).as_bytes()


def test_a_temporary_refusal_is_tried_again_later(
    tmp_path: Path, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = Relay()
    relay.handler.refused = set()
    tries: list[str] = []
    original = relay.handler.handle_RCPT

    async def defer_once(
        server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        tries.append(address)
        if len(tries) == 1:
            return "451 4.7.1 Greylisted, try again"
        return await original(server, session, envelope, address, options)

    monkeypatch.setattr(relay.handler, "handle_RCPT", defer_once)
    relay.start()
    try:
        settings = Settings.from_env(
            {"ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH_SECRET": SECRET, "ORDO_SMTP_URL": relay.url}
        )
        asyncio.run(_deliver_one(settings, a_mail()))
    finally:
        relay.stop()
    assert len(tries) == 2
    assert relay.handler.message_ids() == ["<m1@ordo.mssante.fr>"]


async def _deliver_one(settings: Settings, mail: Mail) -> None:
    from adapters.mailer.store import Queued  # noqa: PLC0415

    async with mailer_for(settings) as mailer:
        await mailer.store.create()
        queued = Queued(mail=mail, written_at=datetime.now(UTC), position=1)
        await mailer.store.enqueue([queued], 0, 0)
        await mailer.deliver_due()
        assert (await mailer.store.counts())["pending"] == 1  # deferred: 4xx
        due = await mailer.store.next_due()
        assert due is not None and due > time.time()
        mailer.clock = lambda: due + 0.001  # the back-off has passed
        await mailer.deliver_due()
        assert await mailer.store.counts() == {"pending": 0, "delivered": 1, "failed": 0}


def test_conversation_events_travel_on_kafka_keyed_by_their_prescription() -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    posted = MessagePosted(
        prescription_id=NUMBER,
        conversation_id="5f8ad91b-3b68-43d0-9ff8-17604dbf81dd",
        version=2,
        at=at,
        message_id="m1",
        sender="pharmacy",
        rpps="20001234564",
        subject="FIN",
        body="",
        mails=(a_mail(),),
    )
    closed = ConversationClosed(
        prescription_id=NUMBER, conversation_id=posted.conversation_id, version=3, at=at, rpps="1"
    )
    for event, position in ((posted, 41), (closed, 42)):
        key, value, _ = to_message(event, position)
        assert key == NUMBER.encode()
        assert from_message(value) == (event, position)


def test_an_attachment_is_rendered_at_delivery_from_the_reference_the_event_keeps() -> None:
    """The extension point for documents (the ordonnance as a PDF): a renderer by kind."""
    document = Attachment(
        kind="ordonnance_pdf",
        ref=NUMBER,
        filename=f"ordonnance-{NUMBER}.pdf",
        content_type="application/pdf",
    )
    mail = msgspec.structs.replace(a_mail(), attachments=(qr_code(NUMBER), document))
    rendered: list[str] = []

    def render_pdf(ref: str) -> bytes:
        rendered.append(ref)
        return b"%PDF-1.7 " + ref.encode()

    written = compose(
        mail, datetime(2026, 12, 1, 9, 0, tzinfo=UTC), {**RENDERERS, "ordonnance_pdf": render_pdf}
    )
    message = email.message_from_bytes(written.as_bytes(), policy=SMTP)
    assert isinstance(message, EmailMessage)

    assert rendered == [NUMBER]
    (pdf,) = [p for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == f"ordonnance-{NUMBER}.pdf"
    assert pdf.get_content() == b"%PDF-1.7 " + NUMBER.encode()
    inline = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert len(inline) == 1


def test_the_mailer_takes_the_emails_of_any_event_that_records_some() -> None:
    posted = MessagePosted(
        prescription_id=NUMBER,
        conversation_id="c",
        version=2,
        at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
        message_id="m1",
        sender="patient",
        rpps=None,
        subject="s",
        body="",
        mails=(a_mail(),),
    )
    assert mails_in(posted) == (a_mail(),)
    closed = ConversationClosed(
        prescription_id=NUMBER, conversation_id="c", version=3, at=posted.at, rpps="1"
    )
    assert mails_in(closed) == ()
