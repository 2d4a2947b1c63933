"""The hash-chained log: each event's `hash = SHA-256(previous hash || canonical bytes)`.

The chain is extended where positions are assigned, in the appending transaction, so two
writers can never fork it: on PostgreSQL a row trigger on the event table (every writer takes
the table's EXCLUSIVE lock before it inserts, the trigger reads the head's hash once per
transaction and keeps the running head in a transaction-local setting); on SQLite the embedded
recorder chains its rows after inserting them (the insert holds the database's write lock).
The first event's previous hash is `GENESIS`. An event's canonical bytes are its stream,
version, topic and stored state, each length-prefixed (big-endian), so that no two events
share them; its log position is not in them (positions may have gaps), but the chain binds the
order: a row deleted, swapped or changed breaks it at the first position that follows.

A database written before the chain existed has its rows chained once at start, in log order,
recorded in `ordo_migrations` as `CHAIN_MIGRATION` (its `records` column counts the rows).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable

import msgspec

GENESIS = bytes(32)
CHAIN_MIGRATION = "log-hash-chain"
_LENGTH = struct.Struct(">i")
_VERSION = struct.Struct(">q")


class LogPoint(msgspec.Struct, frozen=True):
    """Where an appended event landed: its log position and its hash in the chain."""

    position: int
    hash: bytes


class ChainRow(msgspec.Struct, frozen=True, array_like=True):
    """One row of the log as the chain reads it, in log order."""

    position: int
    stream: str
    version: int
    topic: str
    state: bytes
    hash: bytes | None


class ChainBreak(msgspec.Struct, frozen=True):
    """The first position whose stored hash is not the one its predecessors give."""

    position: int
    reason: str


def canonical(stream: str, version: int, topic: str, state: bytes) -> bytes:
    """What an event's hash covers (the trigger's `ordo_event_bytes` computes the same)."""
    stream_bytes, topic_bytes = stream.encode(), topic.encode()
    return b"".join(
        (
            _LENGTH.pack(len(stream_bytes)),
            stream_bytes,
            _VERSION.pack(version),
            _LENGTH.pack(len(topic_bytes)),
            topic_bytes,
            state,
        )
    )


def chained(previous: bytes, stream: str, version: int, topic: str, state: bytes) -> bytes:
    return hashlib.sha256(previous + canonical(stream, version, topic, state)).digest()


class ChainCheck:
    """Recomputes the chain over the log read in order, batch by batch."""

    def __init__(self) -> None:
        self.previous = GENESIS
        self.checked = 0
        self.last_position = 0

    def check(self, rows: Iterable[ChainRow]) -> ChainBreak | None:
        """The first break among these rows (following those checked before), or None."""
        previous = self.previous
        for row in rows:
            expected = hashlib.sha256(
                previous + canonical(row.stream, row.version, row.topic, row.state)
            ).digest()
            if row.hash != expected:
                return ChainBreak(row.position, _why(row, previous))
            previous = expected
            self.checked += 1
            self.last_position = row.position
        self.previous = previous
        return None


def _why(row: ChainRow, previous: bytes) -> str:
    if row.hash is None:
        return "the event has no hash: the log was not chained"
    return (
        f"the stored hash {row.hash.hex()} is not SHA-256 of the previous hash "
        f"{previous.hex()} and the event ({row.stream} version {row.version}, {row.topic}): "
        "the event, or one before it, was changed, removed or moved"
    )


__all__ = [
    "CHAIN_MIGRATION",
    "GENESIS",
    "ChainBreak",
    "ChainCheck",
    "ChainRow",
    "LogPoint",
    "canonical",
    "chained",
]
