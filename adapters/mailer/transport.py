"""Where e-mails leave: an SMTP relay (`ORDO_SMTP_URL`) or, with none set, `.eml` files.

`smtp://[user:password@]host[:port]` uses STARTTLS when the relay offers it;
`smtps://…` speaks TLS from the start (port 465 by default). What the relay answers decides what
happens next: a 2xx is delivered, a 5xx for this message is permanent (the message fails with the
relay's reason), a 4xx is temporary (it is tried again later), and a relay that cannot be reached
or drops the connection is unavailable (everything waits, nothing is counted against a message).
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
import tempfile
from email.message import Message
from email.policy import SMTP
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit


class PermanentRefusal(Exception):  # noqa: N818 - reads as the relay's answer
    """The relay refused this message for good (5xx): it is marked failed, with the reason."""


class TemporaryRefusal(Exception):  # noqa: N818
    """The relay refused this message for now (4xx): it is tried again after a while."""


class RelayUnavailable(Exception):  # noqa: N818
    """The relay cannot be reached or dropped the connection: everything waits for it."""


class Transport(Protocol):
    def send(self, message: Message, sender: str, recipient: str) -> None: ...

    def close(self) -> None: ...


class SmtpTransport:
    """One connection, kept between messages and opened again when the relay drops it."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"}:
            msg = f"ORDO_SMTP_URL must start with smtp:// or smtps://, got {parts.scheme}://"
            raise ValueError(msg)
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (465 if self.tls else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password or "")
        self.timeout = timeout
        self._smtp: smtplib.SMTP | None = None

    def send(self, message: Message, sender: str, recipient: str) -> None:
        reused = self._smtp is not None
        try:
            self._send(message, sender, recipient)
        except RelayUnavailable:
            if not reused:
                raise
            # The relay may have closed a connection left idle: once more, on a new one.
            self._send(message, sender, recipient)

    def _send(self, message: Message, sender: str, recipient: str) -> None:
        try:
            self._connection().send_message(message, sender, [recipient])
        except smtplib.SMTPRecipientsRefused as error:
            code, answer = error.recipients.get(recipient, (550, b"refused"))
            raise _refusal(code, answer) from None
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
            raise _refusal(error.smtp_code, error.smtp_error) from None
        except smtplib.SMTPServerDisconnected as error:
            self.close()
            raise RelayUnavailable(f"disconnected: {error}") from None
        except smtplib.SMTPResponseException as error:
            if error.smtp_code == 421:  # the relay is closing the connection
                self.close()
                raise RelayUnavailable(f"{error.smtp_code} {_text(error.smtp_error)}") from None
            raise _refusal(error.smtp_code, error.smtp_error) from None
        except (smtplib.SMTPException, OSError) as error:
            self.close()
            raise RelayUnavailable(f"{type(error).__name__}: {error}") from None

    def _connection(self) -> smtplib.SMTP:
        if self._smtp is not None:
            return self._smtp
        context = ssl.create_default_context()
        if self.tls:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        smtp.ehlo()
        if not self.tls and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
        if self.user:
            smtp.login(self.user, self.password)
        self._smtp = smtp
        return smtp

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


class EmlTransport:
    """Each e-mail as `<Message-ID>.eml` in a directory: written under a temporary name, then
    renamed, so a reader never sees half a file and writing one again changes nothing."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: Message, sender: str, recipient: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / eml_name(str(message["Message-ID"]))
        if target.exists():
            return  # written before a crash that came before we recorded it
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(message.as_bytes(policy=SMTP))
                file.flush()
                os.fsync(file.fileno())
            Path(temporary).replace(target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def close(self) -> None:
        pass


def eml_name(message_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]", "", message_id) + ".eml"


def transport_for(smtp_url: str | None, data_dir: Path) -> Transport:
    return SmtpTransport(smtp_url) if smtp_url else EmlTransport(data_dir / "outbox")


def _refusal(code: int, answer: bytes | str) -> Exception:
    reason = f"{code} {_text(answer)}"
    return PermanentRefusal(reason) if 500 <= code < 600 else TemporaryRefusal(reason)


def _text(answer: bytes | str) -> str:
    return answer.decode(errors="replace") if isinstance(answer, bytes) else answer
