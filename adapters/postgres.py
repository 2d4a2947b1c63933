"""PostgreSQL as every adapter reaches it through asyncpg: ORDO_DATABASE_URL as a DSN and a
schema, each connection named after the process that opened it, and the pools opened so."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from adapters.config import schema_of

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn = PoolConnectionProxy[asyncpg.Record]

# ORDO_DATABASE_URL's options that are ordo's own, not the server's.
OUR_OPTIONS = {"schema", "pool_size", "max_overflow"}


def asyncpg_target(database_url: str) -> tuple[str, str]:
    """The DSN asyncpg understands, and the schema (ordo's own `?schema=` option)."""
    url = urlsplit(database_url)
    kept = urlencode([(k, v) for k, v in parse_qsl(url.query) if k not in OUR_OPTIONS])
    return urlunsplit(url._replace(scheme="postgresql", query=kept)), schema_of(database_url)


def connection_settings() -> dict[str, str]:
    """Name every connection after the process that opened it, so an operator (and a test)
    reading pg_stat_activity, or a trigger, knows which runner, relay or worker did what."""
    name = f"ordo-{os.getpid()}@{socket.gethostname()}"
    return {"application_name": name[:63]}  # PostgreSQL keeps 63 bytes of it


async def open_pool(database_url: str, max_size: int) -> tuple[asyncpg.Pool, str]:
    """A pool on the instance's database, its connections named, and the instance's schema."""
    dsn, schema = asyncpg_target(database_url)
    pool = await asyncpg.create_pool(
        dsn, min_size=1, max_size=max_size, server_settings=connection_settings()
    )
    return pool, schema
