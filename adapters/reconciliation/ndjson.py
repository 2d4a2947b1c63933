"""NDJSON in: a byte stream cut into chunks of whole lines as it arrives, and lines parsed.

The upload is never held whole: `Chunker` keeps at most one chunk (about `CHUNK_LINES` lines)
plus the piece being received, and a line that grows beyond `MAX_LINE_BYTES` without ending
is cut short and remembered as too long (a marker in its place), so a body with no newline
cannot exhaust memory either.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

from domain.reconciliation.invoices import Entry, Invoice, invalid_reason

CHUNK_LINES = 10_000
MAX_CHUNK_BYTES = 16 * 1024 * 1024
MAX_LINE_BYTES = 64 * 1024
OVERLONG = b"\x00overlong"  # never valid JSON, so never taken for an invoice


class RawChunk(NamedTuple):
    """Whole lines of the upload: the first one's number (1-based), how many are not blank."""

    first_line: int
    invoices: int
    body: bytes


class Chunker:
    """Feed it the pieces of a body as they arrive; it hands back chunks of whole lines."""

    def __init__(
        self, chunk_lines: int = CHUNK_LINES, max_line_bytes: int = MAX_LINE_BYTES
    ) -> None:
        self.chunk_lines = chunk_lines
        self.max_line_bytes = max_line_bytes
        self.bytes_received = 0
        self._buffer = bytearray()
        self._newlines = 0  # in the buffer
        self._next_line = 1  # number of the buffer's first line
        self._skipping = False  # inside a line already cut short

    def feed(self, piece: bytes) -> list[RawChunk]:
        self.bytes_received += len(piece)
        if self._skipping:
            end = piece.find(b"\n")
            if end < 0:
                return []
            self._skipping = False
            piece = piece[end:]  # keeps the newline that ends the overlong line
        self._buffer += piece
        self._newlines += piece.count(b"\n")
        tail = len(self._buffer) - (self._buffer.rfind(b"\n") + 1)
        if tail > self.max_line_bytes:
            del self._buffer[len(self._buffer) - tail :]
            self._buffer += OVERLONG
            self._skipping = True
        chunks: list[RawChunk] = []
        while self._newlines >= self.chunk_lines:  # exactly chunk_lines lines each
            chunks += self._cut(self._end_of_line(self.chunk_lines))
        if len(self._buffer) >= MAX_CHUNK_BYTES:  # long lines: fewer of them per chunk
            chunks += self._cut(self._buffer.rfind(b"\n") + 1)
        return chunks

    def _end_of_line(self, count: int) -> int:
        """Where the `count`-th line of the buffer ends (just after its newline)."""
        end = -1
        for _ in range(count):
            end = self._buffer.find(b"\n", end + 1)
        return end + 1

    def close(self) -> list[RawChunk]:
        """The rest, once the body has ended (its last line may lack a newline)."""
        self._skipping = False
        return self._cut(len(self._buffer))

    def _cut(self, end: int) -> list[RawChunk]:
        if end <= 0:
            return []
        body = bytes(self._buffer[:end])
        del self._buffer[:end]
        lines = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
        self._newlines -= body.count(b"\n")
        first = self._next_line
        self._next_line += lines
        invoices = sum(1 for line in body.split(b"\n") if line and not line.isspace())
        return [RawChunk(first, invoices, body)] if invoices else []


class Rejected(msgspec.Struct, frozen=True, gc=False):
    """A line that is not an invoice: its number, its invoice number if one could be read."""

    line: int
    invoice_number: str | None
    reason: str


class _NumberOnly(msgspec.Struct):
    invoice_number: str | None = None


_decoder = msgspec.json.Decoder(Invoice)
_number_decoder = msgspec.json.Decoder(_NumberOnly)


def parse_chunk(body: bytes, first_line: int) -> list[Entry | Rejected]:
    """Each line that is not blank, as an invoice entry or a rejection with its reason."""
    parsed: list[Entry | Rejected] = []
    for offset, raw in enumerate(body.split(b"\n")):
        if not raw or raw.isspace():
            continue
        parsed.append(parse_line(raw, first_line + offset))
    return parsed


def parse_line(raw: bytes, line: int) -> Entry | Rejected:
    if raw.startswith(OVERLONG) or len(raw) > MAX_LINE_BYTES:
        return Rejected(line, None, f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        invoice = _decoder.decode(raw)
    except msgspec.ValidationError as error:
        return Rejected(line, _invoice_number(raw), f"not a valid invoice: {error}")
    except msgspec.DecodeError as error:
        return Rejected(line, None, f"not valid JSON: {error}")
    reason = invalid_reason(invoice)
    if reason is not None:
        return Rejected(line, invoice.invoice_number, f"not a valid invoice: {reason}")
    return Entry.of(line, invoice)


def _invoice_number(raw: bytes) -> str | None:
    """The invoice number of a line that is JSON but not an invoice, when it has one."""
    try:
        number = _number_decoder.decode(raw).invoice_number
    except msgspec.DecodeError:
        return None
    return number[:64] if number else None
