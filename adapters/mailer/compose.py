"""An outbox entry as an e-mail: plain text and HTML in French, the QR code inline for the
pharmacy. Composed at delivery time from what the event recorded, so every attempt writes the
same e-mail under the same `Message-ID`.

Attachments are rendered here from the reference the event keeps (`Attachment.kind` names a
renderer in `RENDERERS`): a document is never copied into the log.
"""

from __future__ import annotations

import functools
import hashlib
import html
import io
import itertools
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from email import encoders
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime

import segno

from adapters.document import french
from domain.events import Attachment, Mail
from domain.identifiers import PrescriptionNumber
from domain.views import qr_payload

Renderer = Callable[[str], bytes]


@functools.lru_cache(maxsize=4096)  # a prescription's QR never changes; its e-mails share it
def qr_png(prescription_id: str) -> bytes:
    """The prescription's QR code, as `GET /v1/prescriptions/{id}/qr.svg` draws it, in PNG."""
    buffer = io.BytesIO()
    # A fixed mask: choosing the best of eight is most of segno's time (8 ms of 9), and any
    # mask scans; an e-mail is written for every pharmacy message.
    code = segno.make(qr_payload(prescription_id), error="m", mask=0, boost_error=False)
    code.save(buffer, kind="png", scale=5, border=2)
    return buffer.getvalue()


RENDERERS: dict[str, Renderer] = {"qr_png": qr_png}


def compose(
    mail: Mail, written_at: datetime, renderers: Mapping[str, Renderer] = RENDERERS
) -> Message:
    """multipart/alternative (plain text, and HTML related to its inline images), inside a
    multipart/mixed when there are attachments. Written with `email.mime`, which does the same
    as `EmailMessage` in half the time (the mailer spends most of its time here)."""
    boundaries = _boundaries(mail.message_id)
    inline = [a for a in mail.attachments if a.inline]
    # Derived from the Message-ID, not drawn: every attempt writes the same e-mail.
    cids = {a.filename: f"<{a.filename}.{mail.message_id.strip('<>')}>" for a in inline}
    html: Message = MIMEText(html_text(mail, cids), "html", "utf-8")
    if inline:
        images = [_part(a, renderers, cid=cids[a.filename]) for a in inline]
        html = MIMEMultipart("related", boundary=next(boundaries), _subparts=[html, *images])
    plain = MIMEText(plain_text(mail), "plain", "utf-8")
    message: Message = MIMEMultipart(
        "alternative", boundary=next(boundaries), _subparts=[plain, html]
    )
    attached = [_part(a, renderers) for a in mail.attachments if not a.inline]
    if attached:
        message = MIMEMultipart("mixed", boundary=next(boundaries), _subparts=[message, *attached])
    message["Message-ID"] = mail.message_id
    message["Date"] = format_datetime(written_at)
    message["From"] = mail.sender
    message["To"] = mail.recipient
    message["Subject"] = Header(mail.subject, "utf-8").encode()
    if mail.in_reply_to:
        message["In-Reply-To"] = mail.in_reply_to
    return message


def _part(
    attachment: Attachment, renderers: Mapping[str, Renderer], cid: str | None = None
) -> Message:
    maintype, subtype = attachment.content_type.split("/", 1)
    part = MIMEBase(maintype, subtype)
    part.set_payload(_rendered(attachment, renderers))
    encoders.encode_base64(part)
    disposition = "inline" if cid else "attachment"
    part.add_header("Content-Disposition", disposition, filename=attachment.filename)
    if cid:
        part["Content-ID"] = cid
    return part


def _boundaries(message_id: str) -> Iterator[str]:
    """MIME boundaries derived from the Message-ID (the library draws random ones)."""
    seed = hashlib.sha256(message_id.encode()).hexdigest()[:24]
    return (f"=_ordo_{seed}_{number}" for number in itertools.count())


def _rendered(attachment: Attachment, renderers: Mapping[str, Renderer]) -> bytes:
    return renderers[attachment.kind](attachment.ref)


def _number(mail: Mail) -> str:
    return PrescriptionNumber(mail.prescription_id).display()


def _remaining(mail: Mail) -> list[str]:
    """Each line's remainder in boxes, and in units where the line is counted in units."""
    return [
        f"{line.label} : {line.remaining} boîte(s) sur {line.quantity}"
        + ("" if line.remaining_units is None else f" ({french.units(line.remaining_units)})")
        for line in mail.remaining
    ]


NOTICE = (
    "Votre message n'a pas pu être remis : cette pharmacie n'a pas de boîte aux lettres "
    "organisationnelle (BAL ORG) dans l'annuaire MSSanté. Elle a bien reçu votre ordonnance "
    "dans la liste des ordonnances qui lui sont transmises ; vous pouvez aussi la présenter "
    "au comptoir."
)


def plain_text(mail: Mail) -> str:
    lines = [NOTICE, "", "Votre message :", ""] if mail.kind == "no_mailbox_notice" else []
    lines += [mail.body, "", "--", f"Ordonnance n° {_number(mail)}", "Reste à délivrer :"]
    lines += [f"- {line}" for line in _remaining(mail)]
    if any(a.kind == "qr_png" for a in mail.attachments):
        lines.append("Le QR code de l'ordonnance est joint à ce message.")
    lines += ["", "Message transmis par la messagerie sécurisée de santé (MSSanté)."]
    return "\n".join(lines) + "\n"


def html_text(mail: Mail, cids: Mapping[str, str]) -> str:
    notice = (
        f"<p>{html.escape(NOTICE)}</p><p>Votre message :</p>"
        if mail.kind == "no_mailbox_notice"
        else ""
    )
    body = "<br>".join(html.escape(line) for line in mail.body.splitlines())
    remaining = "".join(f"<li>{html.escape(line)}</li>" for line in _remaining(mail))
    images = "".join(
        f'<p><img src="cid:{cid.strip("<>")}" alt="QR code de l\'ordonnance"></p>'
        for cid in cids.values()
    )
    return (
        '<!DOCTYPE html><html lang="fr"><body>'
        f"{notice}<p>{body}</p><hr>"
        f"<p>Ordonnance n° <strong>{html.escape(_number(mail))}</strong></p>"
        f"<p>Reste à délivrer :</p><ul>{remaining}</ul>{images}"
        "<p><small>Message transmis par la messagerie sécurisée de santé (MSSanté).</small></p>"
        "</body></html>"
    )
