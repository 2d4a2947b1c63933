"""The catalogue as servers use it: an immutable in-memory index per snapshot.

Rules look packs up for every prescription line and every dispensing, so a lookup is a dict
access, never a query. `LiveCatalogue.snapshot()` hands out the index in force; a background
task asks the store every few seconds which snapshot is in force and, when an import switched
it, loads the new one aside and swaps a single reference (readers holding the old index keep a
consistent view until they let it go). With no catalogue imported, every pack is unknown and
the rules take the prescriber's word.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, suppress
from datetime import date
from types import MappingProxyType

import structlog
from prometheus_client import Gauge

from adapters.catalogue.store import FACTS_DECODER, CatalogueStore, SnapshotInfo
from domain.catalogue import PackFacts

REFRESH_SECONDS = 2.0  # an import is in use within this (plus its loading time, well under 10 s)
log = structlog.get_logger("ordo.catalogue")
SNAPSHOT_GAUGE = Gauge("ordo_catalogue_snapshot", "Catalogue snapshot in force (0: none)")
PACKS_GAUGE = Gauge("ordo_catalogue_packs", "Packs in the catalogue snapshot in force")


class CatalogueSnapshot:
    """One snapshot's packs by CIP13. Immutable: safe to share between threads."""

    def __init__(self, info: SnapshotInfo | None, packs: Mapping[str, PackFacts]) -> None:
        self.info = info
        self._packs = MappingProxyType(dict(packs))

    @property
    def snapshot_id(self) -> int | None:
        return None if self.info is None else self.info.snapshot_id

    @property
    def snapshot_date(self) -> date | None:
        return None if self.info is None else self.info.snapshot_date

    def facts(self, cip13: str) -> PackFacts | None:
        """The pack's facts; None when this snapshot does not know it ("unknown")."""
        return self._packs.get(cip13)

    def __len__(self) -> int:
        return len(self._packs)

    def __iter__(self) -> Iterator[PackFacts]:
        return iter(self._packs.values())


EMPTY = CatalogueSnapshot(None, {})


async def load_snapshot(store: CatalogueStore) -> CatalogueSnapshot:
    """The snapshot in force, read whole into memory (EMPTY when none was imported)."""
    info = await store.current()
    if info is None:
        return EMPTY
    packs: dict[str, PackFacts] = {}
    async for page in store.packs(info.snapshot_id):
        for raw in page:
            facts = FACTS_DECODER.decode(raw)
            packs[facts.cip13] = facts
    return CatalogueSnapshot(info, packs)


class LiveCatalogue:
    """The catalogue of a running server: `snapshot()` is the index in force.

    The interface the rules use: `catalogue.snapshot().facts(cip13) -> PackFacts | None`
    (take the snapshot once per command, so a whole command sees one snapshot)."""

    def __init__(self, snapshot: CatalogueSnapshot = EMPTY) -> None:
        self._snapshot = snapshot

    def snapshot(self) -> CatalogueSnapshot:
        return self._snapshot

    def facts(self, cip13: str) -> PackFacts | None:
        return self._snapshot.facts(cip13)

    @property
    def loaded(self) -> bool:
        return self._snapshot.info is not None

    def in_force(self) -> CatalogueSnapshot | None:
        """The snapshot the rules read; None until a catalogue is imported (until then the
        rules take the prescriber's word)."""
        return self._snapshot if self.loaded else None

    async def refresh(self, store: CatalogueStore) -> bool:
        """Load the snapshot in force if it is not the one held; True when it changed."""
        if await store.current_id() == self._snapshot.snapshot_id:
            return False
        snapshot = await load_snapshot(store)
        changed = snapshot.snapshot_id != self._snapshot.snapshot_id
        self._snapshot = snapshot  # one reference swap: readers see the old or the new index
        SNAPSHOT_GAUGE.set(snapshot.snapshot_id or 0)
        PACKS_GAUGE.set(len(snapshot))
        if changed:
            log.info(
                "catalogue snapshot in force",
                snapshot_id=snapshot.snapshot_id,
                snapshot_date=str(snapshot.snapshot_date),
                packs=len(snapshot),
            )
        return changed

    @asynccontextmanager
    async def kept_current(
        self, store: CatalogueStore, every: float = REFRESH_SECONDS
    ) -> AsyncIterator[None]:
        """The snapshot in force loaded before the body runs, a new import's within `every`
        seconds (plus its loading time) while it runs."""
        await self.refresh(store)
        stopping = asyncio.Event()
        following = asyncio.create_task(self.follow(store, stopping, every))
        try:
            yield
        finally:
            stopping.set()
            await following

    async def follow(
        self, store: CatalogueStore, stopping: asyncio.Event, every: float = REFRESH_SECONDS
    ) -> None:
        """Refresh until stopped; a failure (the database restarting) keeps the index held."""
        while not stopping.is_set():
            try:
                await self.refresh(store)
            except Exception:
                log.exception("catalogue refresh failed; keeping the snapshot held")
            with suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), every)
