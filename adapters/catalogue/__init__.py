"""The medicines catalogue (BDPM): import of the official files, snapshots in the store, and
the in-memory index servers look packs up in (contract.md, "The medicines catalogue")."""

from __future__ import annotations

from pathlib import Path

from adapters.catalogue.index import EMPTY, CatalogueSnapshot, LiveCatalogue, load_snapshot
from adapters.catalogue.postgres import PostgresCatalogue
from adapters.catalogue.sqlite import SqliteCatalogue
from adapters.catalogue.store import CatalogueStore
from adapters.config import Settings

SAMPLE_DIR = Path(__file__).with_name("sample")


async def open_catalogue_store(settings: Settings) -> CatalogueStore:
    """Beside the instance's other data: its PostgreSQL schema, or `catalogue.sqlite3` under
    ORDO_DATA_DIR. The tables are created if missing."""
    store: CatalogueStore
    if settings.database_url is None:
        store = SqliteCatalogue(settings.data_dir)
    else:
        store = await PostgresCatalogue.connect(settings.database_url)
    try:
        await store.create()
    except BaseException:
        await store.close()
        raise
    return store


__all__ = [
    "EMPTY",
    "SAMPLE_DIR",
    "CatalogueSnapshot",
    "CatalogueStore",
    "LiveCatalogue",
    "load_snapshot",
    "open_catalogue_store",
]
