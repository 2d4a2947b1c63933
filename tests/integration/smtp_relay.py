"""A real SMTP server for the tests (aiosmtpd), on a free local port, that can be stopped and
started again on the same port, refuse a recipient for good, or hold a message mid-DATA."""

from __future__ import annotations

import asyncio
import email
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

from aiosmtpd.controller import Controller

from tools.harness import free_port


@dataclass
class Received:
    message_id: str
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class Handler:
    refused: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    # Hold the DATA of the n-th message (1-based) and of every later one, unanswered, until
    # released; `holding` is set once `hold_count` of them are held (one per connection).
    hold_from: int | None = None
    hold_count: int = 1
    held: int = 0
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    _data_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        with self._lock:
            self._data_count += 1
            number = self._data_count
        if self.hold_from is not None and number >= self.hold_from:
            with self._lock:
                self.held += 1
                if self.held >= self.hold_count:
                    self.holding.set()
            while not self.release.is_set():  # noqa: ASYNC110 - a thread sets it
                await asyncio.sleep(0.01)
            return "451 4.3.0 Aborted"  # the client is gone: nothing was accepted
        message = email.message_from_bytes(envelope.content, policy=SMTP)
        with self._lock:
            self.received.append(
                Received(
                    message_id=str(message["Message-ID"]),
                    sender=envelope.mail_from,
                    recipients=list(envelope.rcpt_tos),
                    message=message,
                )
            )
        return "250 2.0.0 Accepted"

    def message_ids(self) -> list[str]:
        with self._lock:
            return [r.message_id for r in self.received]


class Relay:
    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler or Handler()
        self.port = free_port()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
