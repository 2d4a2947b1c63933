"""Where catalogue snapshots live, whichever database holds them.

Tables (PostgreSQL in the instance's schema; SQLite in `catalogue.sqlite3` under ORDO_DATA_DIR):

    ordo_catalogue_snapshots  one row per import: content hash, date, counts per file, and
                              whether it is still `loading` or `ready`
    ordo_catalogue_packs      (snapshot_id, cip13) -> the pack's facts (MessagePack), plus its
                              CIS and label for people reading the table
    ordo_catalogue_current    one row: the snapshot in force

An import writes its packs under a new snapshot id, in as many transactions as it likes: no
reader looks at a snapshot the `current` row does not name. Switching `current` is one
transaction, so readers see the old snapshot or the new one, never a mix; an import killed
before it leaves the old one in force, and its rows are deleted by the next import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from typing import Protocol

import msgspec

from domain.catalogue import PackFacts

PACKS_PER_BATCH = 2_000
MALFORMED_KEPT = 200  # per snapshot, for `ordo catalogue status`; all are counted


class FileCount(msgspec.Struct, frozen=True, kw_only=True):
    file: str
    lines: int
    imported: int
    malformed: int


class SnapshotInfo(msgspec.Struct, frozen=True, kw_only=True):
    snapshot_id: int
    content_hash: str
    snapshot_date: date
    imported_at: datetime
    source: str
    packs: int
    files: tuple[FileCount, ...]
    malformed: tuple[str, ...]  # the first MALFORMED_KEPT, as "FILE:LINE: reason"


class NewSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """What an import knows when it has read every file: the snapshot row, once published."""

    content_hash: str
    snapshot_date: date
    source: str
    packs: int
    files: tuple[FileCount, ...]
    malformed: tuple[str, ...]


PackRow = tuple[str, str, str, bytes]  # cip13, cis, label, facts
FACTS_ENCODER = msgspec.msgpack.Encoder()
FACTS_DECODER = msgspec.msgpack.Decoder(PackFacts)


def pack_row(facts: PackFacts) -> PackRow:
    return facts.cip13, facts.cis, facts.label, FACTS_ENCODER.encode(facts)


class CatalogueStore(Protocol):
    async def create(self) -> None: ...

    async def close(self) -> None: ...

    def importing(self) -> AbstractAsyncContextManager[None]:
        """Held for a whole import: one import at a time per instance. An import that dies
        frees it (a session's advisory lock, a file lock)."""

    async def current_id(self) -> int | None:
        """The snapshot in force, cheaply: servers ask every few seconds."""

    async def current(self) -> SnapshotInfo | None: ...

    async def loading(self) -> list[int]:
        """Snapshots whose import did not finish (running now, or killed)."""

    async def begin(self) -> int:
        """A new snapshot id, `loading`, that no reader sees."""

    async def add_packs(self, snapshot_id: int, rows: Sequence[PackRow]) -> None: ...

    async def publish(self, snapshot_id: int, snapshot: NewSnapshot) -> None:
        """In one transaction: the snapshot is `ready` and in force."""

    async def prune(self) -> int:
        """Delete every snapshot but the one in force (call with `importing` held); returns how
        many went."""

    def packs(self, snapshot_id: int) -> AsyncIterator[list[bytes]]:
        """The snapshot's facts, in pages (MessagePack, `FACTS_DECODER`)."""
