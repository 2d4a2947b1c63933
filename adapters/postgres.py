"""PostgreSQL as every adapter reaches it: ORDO_DATABASE_URL as a DSN and a schema, each
connection named after the process that opened it, the pools opened so, and what a lost
database looks like.

ORDO_DATABASE_URL may name several servers, libpq style
(`postgresql://h1:5432,h2:5432/ordo?target_session_attrs=read-write`): asyncpg and libpq
(psycopg, eventsourcing) both try them in order and keep the first that accepts writes, so a
connection opened after a failover reaches the promoted standby.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import psycopg
from eventsourcing.persistence import InterfaceError, OperationalError
from psycopg.conninfo import conninfo_to_dict
from psycopg.errors import ReadOnlySqlTransaction

from adapters.config import schema_of

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn = PoolConnectionProxy[asyncpg.Record]

# ORDO_DATABASE_URL's options that are ordo's own, not the server's.
OUR_OPTIONS = {"schema", "pool_size", "max_overflow"}
# Seconds a new connection may take (each server of the URL in turn): a server that does not
# answer at all during a failover holds a request no longer than this.
CONNECT_TIMEOUT = 5.0

# What a client raises when the database is gone, restarting, or not (yet) the primary: the
# request is refused with 503 `database_unavailable` and a Retry-After, never acknowledged.
DATABASE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    ConnectionError,  # refused, reset: the server's address answers no more
    TimeoutError,
    socket.gaierror,
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.OperatorInterventionError,  # class 57: shutting down, crashed, starting up
    asyncpg.ReadOnlySQLTransactionError,  # a standby reached before its promotion
    asyncpg.InternalClientError,  # no server of the URL is the primary (yet)
    psycopg.OperationalError,
    ReadOnlySqlTransaction,
    OperationalError,  # eventsourcing's wrapping of the two above
    InterfaceError,
)


# The network's own errors that are not ConnectionError: no route, host or network down.
UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


def database_unavailable(error: BaseException | None) -> bool:
    """Whether `error` (or what caused it) says the database cannot be reached just now: a
    closed asyncpg connection (`InterfaceError`) counts, a misconfigured URL does not."""
    while error is not None:
        if isinstance(error, asyncpg.ClientConfigurationError):
            return False
        if isinstance(error, (*DATABASE_UNAVAILABLE, asyncpg.InterfaceError)):
            return True
        if isinstance(error, OSError) and _unreachable(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _unreachable(error: OSError) -> bool:
    """asyncio's connect to several addresses raises a bare OSError for all of them."""
    return error.errno in UNREACHABLE or (
        type(error) is OSError and str(error).startswith("Multiple exceptions")
    )


def asyncpg_target(database_url: str) -> tuple[str, str]:
    """The DSN asyncpg and libpq understand (one server or several), and the schema (ordo's own
    `?schema=` option)."""
    url = urlsplit(database_url)
    kept = urlencode([(k, v) for k, v in parse_qsl(url.query) if k not in OUR_OPTIONS])
    return urlunsplit(url._replace(scheme="postgresql", query=kept)), schema_of(database_url)


def libpq_parameters(database_url: str) -> dict[str, str]:
    """ORDO_DATABASE_URL as libpq's keywords (`host` and `port` comma-separated lists when it
    names several servers), for the connections psycopg opens."""
    dsn, _ = asyncpg_target(database_url)
    return {name: str(value) for name, value in conninfo_to_dict(dsn).items()}


def servers_of(database_url: str) -> str:
    """The servers the URL names, without credentials: `h1:5432,h2:5432/ordo`."""
    url = urlsplit(database_url)
    return f"{url.netloc.rpartition('@')[2]}{url.path}"


def connection_settings() -> dict[str, str]:
    """Name every connection after the process that opened it, so an operator (and a test)
    reading pg_stat_activity, or a trigger, knows which runner, relay or worker did what."""
    name = f"ordo-{os.getpid()}@{socket.gethostname()}"
    return {"application_name": name[:63]}  # PostgreSQL keeps 63 bytes of it


async def open_pool(database_url: str, max_size: int) -> tuple[asyncpg.Pool, str]:
    """A pool on the instance's database, its connections named, and the instance's schema."""
    dsn, schema = asyncpg_target(database_url)
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        server_settings=connection_settings(),
        timeout=CONNECT_TIMEOUT,
    )
    return pool, schema
