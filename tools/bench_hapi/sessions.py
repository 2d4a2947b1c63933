"""tools/bench's raw keep-alive client, made to honour `Connection: close`: HAPI's Tomcat ends
a connection after 100 requests, and a request sent on it then would meet a reset."""

from __future__ import annotations

import asyncio

from tools.bench.load import HttpConnection, RawSession, Session
from tools.harness import HOST


class ClosableConnection(HttpConnection):
    """Closes its end once an answer that says `Connection: close` is in."""

    def __init__(self) -> None:
        super().__init__()
        self._closing = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"connection" and value.strip().lower() == b"close":
            self._closing = True

    def on_message_complete(self) -> None:
        closing, self._closing = self._closing, False
        super().on_message_complete()
        if closing:
            self.close()


class ClosableSession(RawSession):
    """A RawSession whose next request opens a new connection after a `Connection: close`."""

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, self._conn = await loop.create_connection(ClosableConnection, self._host, self._port)


async def open_sessions(port: int, count: int) -> list[Session]:
    sessions: list[Session] = []
    for _ in range(count):
        session = ClosableSession(HOST, port)
        await session.connect()
        sessions.append(session)
    return sessions
