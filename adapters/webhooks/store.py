"""The deliverer's own state, in SQLite beside the embedded log (`webhooks.sqlite3`):

    ordo_webhook_subscriptions  who receives which kinds of events, at which URL, with the
                                secret sealed (see `signing`)
    ordo_webhook_position       the last log position whose deliveries are queued (one row)
    ordo_webhook_deliveries     one row per `webhook-id` (a subscription and a log position):
                                the body, its state (pending / delivered / failed), attempts,
                                next attempt, reason

Queueing a batch's deliveries and moving the position happen in one transaction, and a
`webhook-id` is queued once (its primary key), so following the log again after a crash queues
nothing twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

import msgspec

from adapters.locks import file_leadership
from adapters.readmodels.sqlite import Connection
from adapters.webhooks.routing import Kind, Owner, Push, Watch
from projections.runner import PositionMoved


class Subscription(msgspec.Struct, frozen=True, kw_only=True):
    subscription_id: str
    owner: Owner
    owner_id: str
    url: str
    kinds: tuple[Kind, ...]


class Stored(msgspec.Struct, frozen=True, kw_only=True):
    """A subscription as kept: its secret sealed, whether it was deleted."""

    subscription: Subscription
    sealed_secret: bytes
    active: bool


class Failure(msgspec.Struct, frozen=True, kw_only=True):
    webhook_id: str
    attempts: int
    reason: str


class Queued(msgspec.Struct, frozen=True, kw_only=True):
    """A push of one logged event, and the body each of its owner's subscriptions receives."""

    push: Push
    position: int
    written_at: float
    body: bytes


class Due(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery to attempt: where, signed with which sealed secret, which body."""

    webhook_id: str
    subscription_id: str
    url: str
    sealed_secret: bytes
    body: bytes
    written_at: float
    attempts: int


_encoder = msgspec.msgpack.Encoder()
_watch = msgspec.msgpack.Decoder(Watch)


def encode_watch(watch: Watch) -> bytes:
    return _encoder.encode(watch)


def watch_of(record: bytes) -> Watch:
    return _watch.decode(record)


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ordo_webhook_subscriptions (subscription_id TEXT PRIMARY KEY, "
    "owner TEXT NOT NULL, owner_id TEXT NOT NULL, url TEXT NOT NULL, kinds TEXT NOT NULL, "
    "secret BLOB NOT NULL, active INTEGER NOT NULL DEFAULT 1, idempotency_key TEXT, "
    "UNIQUE (owner, owner_id, idempotency_key))",
    "CREATE TABLE IF NOT EXISTS ordo_webhook_position (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "position INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO ordo_webhook_position VALUES (1, 0)",
    "CREATE TABLE IF NOT EXISTS ordo_webhook_deliveries (webhook_id TEXT PRIMARY KEY, "
    "subscription_id TEXT NOT NULL, position INTEGER NOT NULL, state TEXT NOT NULL, "
    "attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, delivered_at REAL, "
    "reason TEXT, written_at REAL NOT NULL, body BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ordo_webhook_watches (prescription_id TEXT PRIMARY KEY, "
    "watch BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ordo_webhook_deliveries_order ON ordo_webhook_deliveries "
    "(subscription_id, state, position)",
)


def webhook_id(subscription_id: str, position: int) -> str:
    """The same on every attempt of a delivery, for the receiver to recognise a repeat."""
    return f"{subscription_id}.{position}"


class WebhookStore(Protocol):
    """The subscriptions and the deliverer's state: `SqliteWebhooks`, or `PostgresWebhooks`
    in the log's schema."""

    async def create(self) -> None: ...

    async def subscribe(
        self, subscription: Subscription, sealed_secret: bytes, idempotency_key: str | None = None
    ) -> Stored: ...

    async def subscription(self, subscription_id: str) -> Stored | None: ...

    async def deliveries(
        self, subscription_id: str, limit: int
    ) -> tuple[dict[str, int], list[Failure]]: ...

    async def unsubscribe(self, subscription_id: str) -> None: ...

    async def position(self) -> int: ...

    async def watches(self, prescription_ids: Collection[str]) -> dict[str, Watch]: ...

    async def enqueue(
        self, queued: Sequence[Queued], watches: Mapping[str, Watch], reached: int, expected: int
    ) -> None: ...

    async def due(self, now: float, limit: int) -> list[Due]: ...

    async def delivered(self, webhook_id: str, now: float) -> None: ...

    async def postpone(self, webhook_id: str, attempts: int, at: float, reason: str) -> None: ...

    async def failed(self, webhook_id: str, attempts: int, reason: str) -> None: ...

    async def next_due(self) -> float | None: ...

    async def counts(self) -> dict[str, int]: ...

    def leadership(self) -> AbstractAsyncContextManager[None]: ...

    async def close(self) -> None: ...


class SqliteWebhooks:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = Connection(path)

    async def create(self) -> None:
        def work(cur: sqlite3.Cursor) -> None:
            for statement in _SCHEMA:
                cur.execute(statement)

        await self.db.run(work, write=True)

    async def subscribe(
        self, subscription: Subscription, sealed_secret: bytes, idempotency_key: str | None = None
    ) -> Stored:
        """The new subscription; or, when its owner used `idempotency_key` already, that one."""
        s = subscription
        row = (s.subscription_id, s.owner, s.owner_id, s.url, ",".join(s.kinds), sealed_secret)

        def work(cur: sqlite3.Cursor) -> Stored:
            cur.execute(
                "INSERT OR IGNORE INTO ordo_webhook_subscriptions (subscription_id, owner, "
                "owner_id, url, kinds, secret, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*row, idempotency_key),
            )
            found = cur.execute(
                f"{_SELECT} WHERE owner = ? AND owner_id = ? AND (subscription_id = ? "
                "OR idempotency_key = ?) ORDER BY subscription_id = ? LIMIT 1",
                (s.owner, s.owner_id, s.subscription_id, idempotency_key, s.subscription_id),
            ).fetchone()
            return stored(found)

        return await self.db.run(work, write=True)

    async def subscription(self, subscription_id: str) -> Stored | None:
        row = await self.db.run(
            lambda cur: cur.execute(
                f"{_SELECT} WHERE subscription_id = ?", (subscription_id,)
            ).fetchone()
        )
        return None if row is None else stored(row)

    async def deliveries(
        self, subscription_id: str, limit: int
    ) -> tuple[dict[str, int], list[Failure]]:
        """A subscription's deliveries counted by state, and its latest failures with why."""

        def work(cur: sqlite3.Cursor) -> tuple[dict[str, int], list[Failure]]:
            rows = cur.execute(
                "SELECT state, count(*) FROM ordo_webhook_deliveries WHERE subscription_id = ? "
                "GROUP BY state",
                (subscription_id,),
            ).fetchall()
            failed = cur.execute(
                "SELECT webhook_id, attempts, reason FROM ordo_webhook_deliveries WHERE "
                "subscription_id = ? AND state = 'failed' ORDER BY position DESC LIMIT ?",
                (subscription_id, limit),
            ).fetchall()
            counts = {"pending": 0, "delivered": 0, "failed": 0, **{r[0]: r[1] for r in rows}}
            return counts, [
                Failure(webhook_id=r[0], attempts=r[1], reason=r[2] or "") for r in failed
            ]

        return await self.db.run(work)

    async def unsubscribe(self, subscription_id: str) -> None:
        await self.db.run(
            lambda cur: cur.execute(
                "UPDATE ordo_webhook_subscriptions SET active = 0 WHERE subscription_id = ?",
                (subscription_id,),
            ),
            write=True,
        )

    async def position(self) -> int:
        return await self.db.run(
            lambda cur: int(cur.execute("SELECT position FROM ordo_webhook_position").fetchone()[0])
        )

    async def watches(self, prescription_ids: Collection[str]) -> dict[str, Watch]:
        """What the pushes of these prescriptions depend on, as far as the position."""
        wanted = list(prescription_ids)
        marks = ",".join("?" * len(wanted))
        sql = (
            "SELECT prescription_id, watch FROM ordo_webhook_watches "
            f"WHERE prescription_id IN ({marks})"
        )
        rows = await self.db.run(lambda cur: cur.execute(sql, wanted).fetchall())
        return {r[0]: watch_of(r[1]) for r in rows}

    async def enqueue(
        self,
        queued: Sequence[Queued],
        watches: Mapping[str, Watch],
        reached: int,
        expected: int,
    ) -> None:
        """Each push queued for its owner's active subscriptions to its kind, the changed
        watches written, and the position moved to `reached`, in one transaction."""

        def work(cur: sqlite3.Cursor) -> None:
            cur.execute(
                "UPDATE ordo_webhook_position SET position = ? WHERE position = ?",
                (reached, expected),
            )
            if cur.rowcount != 1:
                raise PositionMoved(f"the deliverer is no longer at {expected}")
            cur.executemany(
                "INSERT OR REPLACE INTO ordo_webhook_watches VALUES (?, ?)",
                [(key, encode_watch(watch)) for key, watch in watches.items()],
            )
            for q in queued:
                for subscription_id in _subscribers(cur, q.push):
                    cur.execute(
                        "INSERT OR IGNORE INTO ordo_webhook_deliveries (webhook_id, "
                        "subscription_id, position, state, next_attempt_at, written_at, body) "
                        "VALUES (?, ?, ?, 'pending', 0, ?, ?)",
                        (
                            webhook_id(subscription_id, q.position),
                            subscription_id,
                            q.position,
                            q.written_at,
                            q.body,
                        ),
                    )

        await self.db.run(work, write=True)

    async def due(self, now: float, limit: int) -> list[Due]:
        """The pending deliveries, in log order, of the subscriptions whose oldest pending one
        is due: a subscription's deliveries are attempted in order, each after the one before."""
        rows = await self.db.run(
            lambda cur: cur.execute(
                "SELECT d.webhook_id, d.subscription_id, s.url, s.secret, d.body, d.written_at, "
                "d.attempts FROM ordo_webhook_deliveries d JOIN ordo_webhook_subscriptions s "
                "USING (subscription_id) WHERE d.state = 'pending' AND d.subscription_id IN "
                "(SELECT h.subscription_id FROM ordo_webhook_deliveries h WHERE h.state = "
                "'pending' GROUP BY h.subscription_id HAVING min(h.position) = min(CASE WHEN "
                "h.next_attempt_at <= ? THEN h.position END)) ORDER BY d.position LIMIT ?",
                (now, limit),
            ).fetchall()
        )
        return [
            Due(
                webhook_id=r[0],
                subscription_id=r[1],
                url=r[2],
                sealed_secret=r[3],
                body=r[4],
                written_at=r[5],
                attempts=r[6],
            )
            for r in rows
        ]

    async def delivered(self, webhook_id: str, now: float) -> None:
        await self._update(
            "UPDATE ordo_webhook_deliveries SET state = 'delivered', delivered_at = ?, "
            "reason = NULL WHERE webhook_id = ?",
            (now, webhook_id),
        )

    async def postpone(self, webhook_id: str, attempts: int, at: float, reason: str) -> None:
        await self._update(
            "UPDATE ordo_webhook_deliveries SET attempts = ?, next_attempt_at = ?, reason = ? "
            "WHERE webhook_id = ?",
            (attempts, at, reason, webhook_id),
        )

    async def failed(self, webhook_id: str, attempts: int, reason: str) -> None:
        await self._update(
            "UPDATE ordo_webhook_deliveries SET state = 'failed', attempts = ?, reason = ? "
            "WHERE webhook_id = ?",
            (attempts, reason, webhook_id),
        )

    async def _update(self, sql: str, params: tuple[object, ...]) -> None:
        await self.db.run(lambda cur: cur.execute(sql, params), write=True)

    async def next_due(self) -> float | None:
        row = await self.db.run(
            lambda cur: cur.execute(
                "SELECT min(next_attempt_at) FROM ordo_webhook_deliveries WHERE state = 'pending'"
            ).fetchone()
        )
        return None if row[0] is None else float(row[0])

    async def counts(self) -> dict[str, int]:
        rows = await self.db.run(
            lambda cur: cur.execute(
                "SELECT state, count(*) FROM ordo_webhook_deliveries GROUP BY state"
            ).fetchall()
        )
        return {"pending": 0, "delivered": 0, "failed": 0, **{r[0]: int(r[1]) for r in rows}}

    def leadership(self) -> AbstractAsyncContextManager[None]:
        """One deliverer per data directory: an OS file lock, released when its process dies."""
        return file_leadership(self.path.with_suffix(".lock"), poll_seconds=0.5)

    async def close(self) -> None:
        self.db.close()


_SELECT = (
    "SELECT subscription_id, owner, owner_id, url, kinds, secret, active "
    "FROM ordo_webhook_subscriptions"
)


def stored(row: Sequence[Any]) -> Stored:
    subscription = Subscription(
        subscription_id=str(row[0]),
        owner=msgspec.convert(row[1], Owner),
        owner_id=str(row[2]),
        url=str(row[3]),
        kinds=msgspec.convert(str(row[4]).split(","), tuple[Kind, ...]),
    )
    return Stored(subscription=subscription, sealed_secret=bytes(row[5]), active=bool(row[6]))


def _subscribers(cur: sqlite3.Cursor, push: Push) -> list[str]:
    rows = cur.execute(
        "SELECT subscription_id, kinds FROM ordo_webhook_subscriptions WHERE active = 1 "
        "AND owner = ? AND owner_id = ? ORDER BY subscription_id",
        (push.owner, push.owner_id),
    ).fetchall()
    return [r[0] for r in rows if push.kind in r[1].split(",")]
