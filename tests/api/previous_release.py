"""A database as the release that kept records and claims as streams left it.

That release kept an idempotency record and an invoice claim as one-event streams in the event
table. The encoding below is copied from it (`git show f0d58b5:adapters/eventstore.py`), not
imported from `adapters.legacy`, so that the migration is tested against what was really
written: the same structs, stream ids, topics and msgspec JSON, appended through the same
eventsourcing recorder.

`as_previous_release` takes a database the current code wrote (the requests a pharmacy made) and
turns it into the one the previous release would have written for the same requests: each row of
`ordo_idempotency` and `ordo_invoice_claims` becomes its fake stream in the log, and the tables
the previous release did not have are dropped, as is the log's hash chain (its column, and on
PostgreSQL the constraint on it). Keys and fingerprints are computed the same way
by both releases (`adapters.service._scoped` is unchanged), and the old record's body is the
JSON of the same view the new record's result holds, with status 201.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from typing import Any

import msgspec
import psycopg
from eventsourcing.persistence import StoredEvent

from adapters.config import Settings
from adapters.librarylog import open_library_log
from adapters.postgres import asyncpg_target

IDEMPOTENCY_PREFIX = "idempotency:"
INVOICE_PREFIX = "invoice:"
NEW_TABLES = ("ordo_idempotency", "ordo_invoice_claims", "ordo_migrations")


class IdempotencyRecord(msgspec.Struct, frozen=True, kw_only=True):
    schema_version = 1

    key: str
    fingerprint: str
    status: int
    body: bytes


class InvoiceClaim(msgspec.Struct, frozen=True, kw_only=True):
    schema_version = 1

    finess: str
    invoice_number: str
    prescription_id: str
    dispensation_id: str


def invoice_stream(finess: str, invoice_number: str) -> str:
    digest = hashlib.sha256(f"{finess}|{invoice_number}".encode()).hexdigest()
    return INVOICE_PREFIX + digest


def topic_of(kind: type[Any]) -> str:
    return f"{kind.__name__}.v{kind.schema_version}"


def query(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one statement on the test's database (its schema first on PostgreSQL)."""
    if settings.database_url is None:
        with sqlite3.connect(settings.data_dir / "ordo.sqlite3") as conn:
            return conn.execute(sql).fetchall()
    dsn, schema = asyncpg_target(settings.database_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        cursor = conn.execute(sql)
        return cursor.fetchall() if cursor.description else []


def as_previous_release(
    settings: Settings, old_answer: Callable[[bytes], tuple[int, bytes]] = lambda r: (201, r)
) -> int:
    """Move the records and claims into the log as the previous release stored them; returns
    how many legacy rows were appended. `old_answer` gives the status and body the previous
    release recorded for a result (by default: 201 and the same JSON)."""
    records = query(settings, "SELECT key, fingerprint, result FROM ordo_idempotency")
    claims = query(settings, "SELECT * FROM ordo_invoice_claims")
    legacy = [
        _record_event(key, fingerprint, old_answer(bytes(result)))
        for key, fingerprint, result in records
    ]
    legacy += [
        _claim_event(InvoiceClaim(finess=f, invoice_number=n, prescription_id=p, dispensation_id=d))
        for f, n, p, d in claims
    ]
    log = open_library_log(settings.database_url, settings.data_dir)
    try:
        for stored in legacy:  # one append each, as each came with its own request
            log.recorder.insert_events([stored])
    finally:
        log.close()
    for table in NEW_TABLES:
        query(settings, f"DROP TABLE {table}")
    query(settings, "ALTER TABLE ordo_events DROP COLUMN hash")
    return len(legacy)


def _record_event(key: str, fingerprint: str, answer: tuple[int, bytes]) -> StoredEvent:
    status, body = answer
    record = IdempotencyRecord(key=key, fingerprint=fingerprint, status=status, body=body)
    return StoredEvent(
        originator_id=IDEMPOTENCY_PREFIX + key,
        originator_version=1,
        topic=topic_of(IdempotencyRecord),
        state=msgspec.json.encode(record),
    )


def _claim_event(claim: InvoiceClaim) -> StoredEvent:
    return StoredEvent(
        originator_id=invoice_stream(claim.finess, claim.invoice_number),
        originator_version=1,
        topic=topic_of(InvoiceClaim),
        state=msgspec.json.encode(claim),
    )
