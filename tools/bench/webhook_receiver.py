"""The receiver of `scripts/bench webhooks`, in a process of its own, importing little so that
it listens at once: `python -m tools.bench.webhook_receiver PORT FILE`. Until SIGTERM it answers
each POST 204 (HTTP/1.1, keep-alive), then writes `arrival webhook-id event-time` per delivery
to FILE."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import uvloop


class Receiving(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, just enough for POSTs with a content-length: answers 204."""

    def __init__(self, arrivals: list[str]) -> None:
        self.arrivals = arrivals
        self.buffer = b""
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream's: it writes

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].decode("latin-1").lower().split("\r\n")
            fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
            size = int(fields.get("content-length", "0"))
            if len(self.buffer) < end + 4 + size:
                return
            body, self.buffer = self.buffer[end + 4 : end + 4 + size], self.buffer[end + 4 + size :]
            self.arrived(fields.get("webhook-id", "?"), body)
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")

    def arrived(self, webhook_id: str, body: bytes) -> None:
        stamp = json.loads(body).get("timestamp", "") if body else ""
        self.arrivals.append(f"{time.time()} {webhook_id} {stamp}")


def serve_receiver(port: int, out: Path) -> None:
    """Until SIGTERM, then writes `arrival webhook-id event-time` per delivery to `out`."""
    arrivals: list[str] = []

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopping.set)
        server = await loop.create_server(lambda: Receiving(arrivals), "127.0.0.1", port)
        await stopping.wait()
        server.close()

    uvloop.run(serve())
    out.write_text("\n".join(arrivals) + "\n")


if __name__ == "__main__":
    serve_receiver(int(sys.argv[1]), Path(sys.argv[2]))
