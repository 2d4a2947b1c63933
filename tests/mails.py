"""Reading the e-mails ordo sends, the way a mail client shows them."""

from __future__ import annotations

from email.message import EmailMessage


def body_text(mail: EmailMessage, subtype: str = "plain") -> str:
    """The text/<subtype> body of a mail; a mail without one fails the test."""
    body = mail.get_body((subtype,))
    assert body is not None, f"no text/{subtype} body in {mail['Subject']!r}"
    content = body.get_content()
    assert isinstance(content, str)
    return content
