"""Who leads: one holder of a job at a time, a standby taking over when the holder dies.

On PostgreSQL a session-level advisory lock (it dies with its connection, so a killed leader
frees it); on the embedded default an OS file lock (released when its process dies).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol

import asyncpg
import structlog

from projections.runner import PositionMoved


def lock_key(schema: str, purpose: str) -> int:
    """An advisory lock key per schema, so separate deployments never block each other."""
    digest = hashlib.sha256(f"ordo:{schema}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@asynccontextmanager
async def leadership(
    pool: asyncpg.Pool, key: int, poll_seconds: float = 1.0
) -> AsyncIterator[None]:
    """One holder of the advisory lock `key` at a time; a standby polls for it."""
    async with pool.acquire() as conn:
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):  # noqa: ASYNC110
            await asyncio.sleep(poll_seconds)  # a database lock has no event to await
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", key)


@asynccontextmanager
async def file_leadership(path: Path, poll_seconds: float = 1.0) -> AsyncIterator[None]:
    """One holder of the file lock on `path` at a time; a standby polls for it."""
    with path.open("w") as handle:
        while not _try_lock(handle.fileno()):  # noqa: ASYNC110
            await asyncio.sleep(poll_seconds)  # a file lock has no event to await
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class LeadingStore(Protocol):
    """The state of a reader of the log that delivers outside (the mailer, the webhooks)."""

    async def create(self) -> None: ...

    async def position(self) -> int: ...

    def leadership(self) -> AbstractAsyncContextManager[None]: ...


async def follow_while_leading(
    name: str,
    store: LeadingStore,
    follow: Callable[[asyncio.Event], Awaitable[None]],
    stopping: asyncio.Event,
) -> None:
    """`follow` until `stopping`, while this process leads; a failure starts again from the
    recorded state, and a position moved under it (another leader) makes it wait its turn."""
    log = structlog.get_logger(f"ordo.{name}")
    await store.create()
    while not stopping.is_set():
        try:
            async with store.leadership():
                log.info(f"{name} leading", position=await store.position())
                await follow(stopping)
        except PositionMoved:
            continue
        except Exception:
            log.exception(f"{name} failed; starting again from its recorded state in 1 s")
            await asyncio.sleep(1)
