"""The hash-chained log: each event's `hash = SHA-256(previous hash || canonical bytes)`.

The chain is extended where positions are assigned, in the appending transaction, so two
writers can never fork it: on PostgreSQL by `ordo_append_group`, every writer's insert, once
per transaction under the event table's EXCLUSIVE lock (the head read once, the rows' positions
taken and hashes computed there; a row inserted without its hash is refused); on SQLite the
embedded recorder chains its rows after inserting them (the insert holds the database's write
lock).
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


# One row of the log as the chain reads it, in log order: its position, its event's head
# (`event_head`), its stored state and its stored hash (None: not chained).
ChainRow = tuple[int, bytes, bytes, bytes | None]


class ChainBreak(msgspec.Struct, frozen=True):
    """The first position whose stored hash is not the one its predecessors give."""

    position: int
    reason: str


def event_head(stream: str, version: int, topic: str) -> bytes:
    """What precedes the stored state in an event's canonical bytes (PostgreSQL's
    `ordo_event_head` computes the same)."""
    stream_bytes, topic_bytes = stream.encode(), topic.encode()
    return b"".join(
        (
            _LENGTH.pack(len(stream_bytes)),
            stream_bytes,
            _VERSION.pack(version),
            _LENGTH.pack(len(topic_bytes)),
            topic_bytes,
        )
    )


def canonical(stream: str, version: int, topic: str, state: bytes) -> bytes:
    """What an event's hash covers, after the previous hash."""
    return event_head(stream, version, topic) + state


def chained(previous: bytes, stream: str, version: int, topic: str, state: bytes) -> bytes:
    return hashlib.sha256(previous + canonical(stream, version, topic, state)).digest()


class ChainCheck:
    """Recomputes the chain over the log read in order, batch by batch (`ordo verify`: kept
    to the bare loop, as it runs over every event of the log)."""

    def __init__(self) -> None:
        self.previous = GENESIS
        self.checked = 0
        self.last_position = 0

    def check(self, rows: Iterable[ChainRow]) -> ChainBreak | None:
        """The first break among these rows (following those checked before), or None."""
        previous, sha256, position = self.previous, hashlib.sha256, self.last_position
        checked = self.checked
        for position, head, state, stored in rows:
            expected = sha256(previous + head + state).digest()
            if stored != expected:
                self.previous, self.last_position, self.checked = previous, position, checked
                return ChainBreak(position, _why(head, stored, previous))
            previous = expected
            checked += 1
        self.previous, self.last_position, self.checked = previous, position, checked
        return None


def _why(head: bytes, stored: bytes | None, previous: bytes) -> str:
    if stored is None:
        return "the event has no hash: the log was not chained"
    (length,) = _LENGTH.unpack_from(head)
    stream = head[4 : 4 + length].decode(errors="replace")
    (version,) = _VERSION.unpack_from(head, 4 + length)
    topic = head[4 + length + 8 + 4 :].decode(errors="replace")
    return (
        f"the stored hash {bytes(stored).hex()} is not SHA-256 of the previous hash "
        f"{previous.hex()} and the event ({stream} version {version}, {topic}): "
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
    "event_head",
]
