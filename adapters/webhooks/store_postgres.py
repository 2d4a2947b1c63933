"""The deliverer's state in the PostgreSQL schema of the log: the tables of `store` (see there),
so that every server sharing the log shares the subscriptions, and one deliverer leads behind an
advisory lock as the mailer does."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

from adapters.locks import leadership, lock_key
from adapters.webhooks.routing import Push, Watch
from adapters.webhooks.store import (
    Due,
    Failure,
    Queued,
    Stored,
    Subscription,
    encode_watch,
    stored,
    watch_of,
    webhook_id,
)
from projections.runner import PositionMoved


class PostgresWebhooks:
    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        q = f'"{schema}".ordo_webhook'
        self._subs, self._pos = f"{q}_subscriptions", f"{q}_position"
        self._deliveries, self._watches = f"{q}_deliveries", f"{q}_watches"

    async def create(self) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1)", lock_key(self.schema, "webhooks-ddl")
            )
            for statement in self._schema():
                await conn.execute(statement)

    def _schema(self) -> tuple[str, ...]:
        return (
            f"CREATE TABLE IF NOT EXISTS {self._subs} (subscription_id text PRIMARY KEY, "
            "owner text NOT NULL, owner_id text NOT NULL, url text NOT NULL, kinds text NOT NULL, "
            "secret bytea NOT NULL, active boolean NOT NULL DEFAULT true, idempotency_key text, "
            "UNIQUE (owner, owner_id, idempotency_key))",
            f"CREATE TABLE IF NOT EXISTS {self._pos} (id int PRIMARY KEY CHECK (id = 1), "
            "position bigint NOT NULL)",
            f"INSERT INTO {self._pos} VALUES (1, 0) ON CONFLICT DO NOTHING",
            f"CREATE TABLE IF NOT EXISTS {self._deliveries} (webhook_id text PRIMARY KEY, "
            "subscription_id text NOT NULL, position bigint NOT NULL, state text NOT NULL, "
            "attempts int NOT NULL DEFAULT 0, next_attempt_at double precision NOT NULL, "
            "delivered_at double precision, reason text, written_at double precision NOT NULL, "
            "body bytea NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS ordo_webhook_deliveries_order ON {self._deliveries} "
            "(subscription_id, state, position)",
            f"CREATE TABLE IF NOT EXISTS {self._watches} (prescription_id text PRIMARY KEY, "
            "watch bytea NOT NULL)",
        )

    async def subscribe(
        self, subscription: Subscription, sealed_secret: bytes, idempotency_key: str | None = None
    ) -> Stored:
        s = subscription
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO {self._subs} (subscription_id, owner, owner_id, url, kinds, secret, "
                "idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                s.subscription_id,
                s.owner,
                s.owner_id,
                s.url,
                ",".join(s.kinds),
                sealed_secret,
                idempotency_key,
            )
            row = await conn.fetchrow(
                f"{self._select()} WHERE owner = $1 AND owner_id = $2 AND (subscription_id = $3 "
                "OR idempotency_key = $4) ORDER BY subscription_id = $3 LIMIT 1",
                s.owner,
                s.owner_id,
                s.subscription_id,
                idempotency_key,
            )
        assert row is not None  # the row inserted, or the one holding the key
        return stored(tuple(row))

    def _select(self) -> str:
        return (
            f"SELECT subscription_id, owner, owner_id, url, kinds, secret, active FROM {self._subs}"
        )

    async def subscription(self, subscription_id: str) -> Stored | None:
        row = await self.pool.fetchrow(
            f"{self._select()} WHERE subscription_id = $1", subscription_id
        )
        return None if row is None else stored(tuple(row))

    async def deliveries(
        self, subscription_id: str, limit: int
    ) -> tuple[dict[str, int], list[Failure]]:
        rows = await self.pool.fetch(
            f"SELECT state, count(*) FROM {self._deliveries} WHERE subscription_id = $1 "
            "GROUP BY state",
            subscription_id,
        )
        failed = await self.pool.fetch(
            f"SELECT webhook_id, attempts, reason FROM {self._deliveries} WHERE "
            "subscription_id = $1 AND state = 'failed' ORDER BY position DESC LIMIT $2",
            subscription_id,
            limit,
        )
        counts = {"pending": 0, "delivered": 0, "failed": 0, **{r[0]: int(r[1]) for r in rows}}
        return counts, [Failure(webhook_id=r[0], attempts=r[1], reason=r[2] or "") for r in failed]

    async def unsubscribe(self, subscription_id: str) -> None:
        await self.pool.execute(
            f"UPDATE {self._subs} SET active = false WHERE subscription_id = $1", subscription_id
        )

    async def position(self) -> int:
        position: int = await self.pool.fetchval(f"SELECT position FROM {self._pos}")
        return position

    async def watches(self, prescription_ids: Collection[str]) -> dict[str, Watch]:
        rows = await self.pool.fetch(
            f"SELECT prescription_id, watch FROM {self._watches} "
            "WHERE prescription_id = ANY($1::text[])",
            list(prescription_ids),
        )
        return {r[0]: watch_of(r[1]) for r in rows}

    async def enqueue(
        self, queued: Sequence[Queued], watches: Mapping[str, Watch], reached: int, expected: int
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            moved = await conn.execute(
                f"UPDATE {self._pos} SET position = $1 WHERE position = $2", reached, expected
            )
            if moved != "UPDATE 1":
                raise PositionMoved(f"the deliverer is no longer at {expected}")
            await conn.executemany(
                f"INSERT INTO {self._watches} VALUES ($1, $2) ON CONFLICT (prescription_id) "
                "DO UPDATE SET watch = EXCLUDED.watch",
                [(key, encode_watch(watch)) for key, watch in watches.items()],
            )
            rows = [
                (webhook_id(sid, q.position), sid, q.position, q.written_at, q.body)
                for q in queued
                for sid in await self._subscribers(conn, q.push)
            ]
            await conn.executemany(
                f"INSERT INTO {self._deliveries} (webhook_id, subscription_id, position, state, "
                "next_attempt_at, written_at, body) VALUES ($1, $2, $3, 'pending', 0, $4, $5) "
                "ON CONFLICT (webhook_id) DO NOTHING",
                rows,
            )

    async def _subscribers(self, conn: Any, push: Push) -> list[str]:
        rows = await conn.fetch(
            f"SELECT subscription_id, kinds FROM {self._subs} WHERE active AND owner = $1 "
            "AND owner_id = $2 ORDER BY subscription_id",
            push.owner,
            push.owner_id,
        )
        return [r[0] for r in rows if push.kind in r[1].split(",")]

    async def due(self, now: float, limit: int) -> list[Due]:
        rows = await self.pool.fetch(
            "SELECT d.webhook_id, d.subscription_id, s.url, s.secret, d.body, d.written_at, "
            f"d.attempts FROM {self._deliveries} d JOIN {self._subs} s USING (subscription_id) "
            "WHERE d.state = 'pending' AND d.subscription_id IN (SELECT h.subscription_id FROM "
            f"{self._deliveries} h WHERE h.state = 'pending' GROUP BY h.subscription_id HAVING "
            "min(h.position) = min(CASE WHEN h.next_attempt_at <= $1 THEN h.position END)) "
            "ORDER BY d.position LIMIT $2",
            now,
            limit,
        )
        return [
            Due(
                webhook_id=r[0],
                subscription_id=r[1],
                url=r[2],
                sealed_secret=bytes(r[3]),
                body=bytes(r[4]),
                written_at=r[5],
                attempts=r[6],
            )
            for r in rows
        ]

    async def delivered(self, webhook_id: str, now: float) -> None:
        await self.pool.execute(
            f"UPDATE {self._deliveries} SET state = 'delivered', delivered_at = $1, reason = NULL "
            "WHERE webhook_id = $2",
            now,
            webhook_id,
        )

    async def postpone(self, webhook_id: str, attempts: int, at: float, reason: str) -> None:
        await self.pool.execute(
            f"UPDATE {self._deliveries} SET attempts = $1, next_attempt_at = $2, reason = $3 "
            "WHERE webhook_id = $4",
            attempts,
            at,
            reason,
            webhook_id,
        )

    async def failed(self, webhook_id: str, attempts: int, reason: str) -> None:
        await self.pool.execute(
            f"UPDATE {self._deliveries} SET state = 'failed', attempts = $1, reason = $2 "
            "WHERE webhook_id = $3",
            attempts,
            reason,
            webhook_id,
        )

    async def next_due(self) -> float | None:
        value = await self.pool.fetchval(
            f"SELECT min(next_attempt_at) FROM {self._deliveries} WHERE state = 'pending'"
        )
        return None if value is None else float(value)

    async def counts(self) -> dict[str, int]:
        rows = await self.pool.fetch(
            f"SELECT state, count(*) FROM {self._deliveries} GROUP BY state"
        )
        return {"pending": 0, "delivered": 0, "failed": 0, **{r[0]: int(r[1]) for r in rows}}

    def leadership(self) -> AbstractAsyncContextManager[None]:
        return leadership(self.pool, lock_key(self.schema, "webhooks"), poll_seconds=0.5)

    async def close(self) -> None:
        pass  # the pool belongs to whoever opened it
