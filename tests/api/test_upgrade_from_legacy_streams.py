"""Upgrading a database the previous release wrote (its records and claims were fake streams in
the log), on SQLite and on PostgreSQL.

Given a pharmacy's keyed dispensing, its keyed billing under an invoice number, and a keyed
dispensing whose recorded answer no use case returns any more, all stored by the previous
release (`previous_release`), when the new store starts, then the invoice number is still
taken, the retries get their first answers (or a refusal, never a second decision), the read
models rebuild over the legacy rows, and a second start migrates nothing again.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from kafka import KafkaConsumer
from litestar.testing import TestClient
from rich.console import Console

from adapters import operations
from adapters.bootstrap import build_app
from adapters.config import KafkaSettings, Settings
from adapters.eventfeed import PostgresEventFeed
from adapters.kafka.messages import from_message
from adapters.kafka.relay import Relay, create_positions_table, ensure_topics, producer
from adapters.postgres import asyncpg_target
from adapters.store.postgres import PostgresEventStore
from adapters.verify import verify
from projections.folds import READ_MODEL_NAMES
from tests.api.previous_release import as_previous_release, query
from tests.api.test_billing_api import bill, billings, dispensed
from tests.api.test_lists_api import eventually, prescriber_list
from tests.api.test_prescriptions_api import assert_problem, dispense, issue
from tests.conftest import Client
from tools.cast import People

# A shape no use case answers with: the previous release's answer to this request is lost.
LOST_ANSWER = b'{"detail":"an answer in a shape this release does not know"}'


@dataclass(frozen=True)
class BeforeTheUpgrade:
    number: str  # a prescription of 3 packs, 1 dispensed with the key "k-dispense"
    dispensing: dict[str, Any]
    billed_at: str  # '<number>/<dispensation>' billed as "F-42" with the key "k-bill"
    billing: dict[str, Any]
    lost: str  # a prescription of 3 packs, 1 dispensed with the key "k-lost"
    legacy_rows: int


def test_an_invoice_number_billed_before_the_upgrade_is_still_taken(
    upgraded: Client, before: BeforeTheUpgrade, people: People
) -> None:
    again = bill(upgraded, people, dispensed(upgraded, people), invoice_number="F-42")

    assert_problem(again, 409, "invoice_number_used")


def test_a_retried_dispensing_gets_its_first_receipt_and_dispenses_nothing_more(
    upgraded: Client, before: BeforeTheUpgrade, people: People
) -> None:
    retry = dispense(upgraded, people, before.number, (1, 1), **{"Idempotency-Key": "k-dispense"})

    assert (retry.status_code, retry.json()) == (201, before.dispensing)
    assert dispensations(upgraded, people, before.number) == 1


def test_a_retried_billing_gets_its_first_answer_and_records_nothing(
    upgraded: Client, before: BeforeTheUpgrade, people: People
) -> None:
    retry = bill(upgraded, people, before.billed_at, invoice_number="F-42", key="k-bill")

    assert (retry.status_code, retry.json()) == (201, before.billing)
    assert len(billings(upgraded, people, before.billed_at)) == 1


def test_an_old_key_with_another_body_is_still_refused(
    upgraded: Client, before: BeforeTheUpgrade, people: People
) -> None:
    other = dispense(upgraded, people, before.number, (1, 2), **{"Idempotency-Key": "k-dispense"})

    assert_problem(other, 422, "idempotency_key_reused")
    assert dispensations(upgraded, people, before.number) == 1


def test_a_retry_whose_old_answer_cannot_be_converted_is_refused_never_decided_again(
    upgraded: Client, before: BeforeTheUpgrade, people: People
) -> None:
    retry = dispense(upgraded, people, before.lost, (1, 1), **{"Idempotency-Key": "k-lost"})
    other = dispense(upgraded, people, before.lost, (1, 2), **{"Idempotency-Key": "k-lost"})

    assert "upgrade" in assert_problem(retry, 422, "idempotency_key_reused")["detail"]
    assert_problem(other, 422, "idempotency_key_reused")
    assert dispensations(upgraded, people, before.lost) == 1


def test_the_read_models_follow_and_rebuild_over_the_legacy_rows(
    upgraded: Client, before: BeforeTheUpgrade, people: People, settings: Settings
) -> None:
    after = issue(upgraded, people, 3)["prescription_id"]  # logged after the legacy rows
    listed = eventually(
        lambda: prescriber_list(upgraded, people).json(),
        lambda page: after in [item["prescription_id"] for item in page["items"]],
    )
    assert after in [item["prescription_id"] for item in listed["items"]]

    asyncio.run(operations.rebuild(settings, list(READ_MODEL_NAMES), Console(quiet=True)))

    rebuilt = prescriber_list(upgraded, people).json()
    assert {before.number, before.lost, after} <= {i["prescription_id"] for i in rebuilt["items"]}


@pytest.mark.kafka
@pytest.mark.parametrize("settings", ["postgres"], indirect=True)
def test_the_relay_publishes_past_the_legacy_rows_and_only_events(
    upgraded: Client, before: BeforeTheUpgrade, settings: Settings, kafka_bootstrap: str
) -> None:
    topic = f"ordo.test.{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings.from_env(
        {"ORDO_KAFKA_BOOTSTRAP": kafka_bootstrap, "ORDO_KAFKA_TOPIC": topic}
    )
    assert kafka is not None and settings.database_url is not None
    ensure_topics(kafka)

    reached, head = asyncio.run(relay_everything(settings.database_url, kafka))
    published = [from_message(m.value)[0] for m in messages_of(kafka_bootstrap, topic)]

    assert reached == head
    assert len(published) == head - before.legacy_rows  # every event, no legacy row
    assert {type(event).__name__ for event in published} == {
        "PrescriptionIssued",
        "DispensationRecorded",
        "BillingRecorded",
    }


async def relay_everything(database_url: str, kafka: KafkaSettings) -> tuple[int, int]:
    """Publish the whole log once, as `ordo relay` does batch after batch."""
    dsn, schema = asyncpg_target(database_url)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    send = producer(kafka)
    try:
        relay = Relay(pool, schema, send, kafka.topic, batch_size=3)
        await create_positions_table(pool, schema)
        while await relay.publish_next():
            pass
        return await relay.position(), await PostgresEventFeed(pool, schema).head()
    finally:
        send.close()
        await pool.close()


def messages_of(bootstrap: str, topic: str) -> list[Any]:
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5_000
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


def test_starting_twice_migrates_once(
    upgraded: Client, before: BeforeTheUpgrade, settings: Settings
) -> None:
    migrations = "SELECT name, ran_at, records, claims FROM ordo_migrations ORDER BY name"
    first = query(settings, migrations)
    with TestClient(build_app(settings)):
        second = query(settings, migrations)

    [(events,)] = query(settings, "SELECT count(*) FROM ordo_events")
    assert [(name, records, claims) for name, _, records, claims in first] == [
        ("legacy-streams-to-tables", 3, 1),
        ("log-hash-chain", events, 0),  # every row of the previous release, chained once
    ]
    assert second == first  # not run again: same row, same time
    assert before.legacy_rows == 4
    assert query(settings, "SELECT count(*) FROM ordo_idempotency") == [(3,)]
    assert query(settings, "SELECT count(*) FROM ordo_invoice_claims") == [(1,)]


def test_the_upgraded_log_is_chained_once_and_verifies(
    upgraded: Client, people: People, settings: Settings
) -> None:
    issue(upgraded, people, 3)  # chained by the append after the rows the upgrade chained

    out = io.StringIO()
    holds = asyncio.run(verify(settings, Console(file=out, width=200)))

    assert holds, out.getvalue()
    [(events,)] = query(settings, "SELECT count(*) FROM ordo_events WHERE hash IS NOT NULL")
    assert f"the log's chain holds: {events} events" in out.getvalue()


@pytest.mark.parametrize("settings", ["postgres"], indirect=True)
def test_servers_starting_at_once_copy_once(before: BeforeTheUpgrade, settings: Settings) -> None:
    assert settings.database_url is not None
    asyncio.run(start_together(settings.database_url, servers=4))

    assert query(settings, "SELECT name, records, claims FROM ordo_migrations ORDER BY name") == [
        ("legacy-streams-to-tables", 3, 1),
        ("log-hash-chain", before.legacy_rows + 7, 0),
    ]
    assert query(settings, "SELECT count(*) FROM ordo_idempotency") == [(3,)]


async def start_together(database_url: str, servers: int) -> None:
    stores = [PostgresEventStore(database_url, pool_size=2) for _ in range(servers)]
    try:
        await asyncio.gather(*(store.start() for store in stores))
    finally:
        await asyncio.gather(*(store.close() for store in stores))


# --- the database before the upgrade ---------------------------------------------------------


def dispensations(client: Client, people: People, number: str) -> int:
    history = client.get(f"/v1/prescriptions/{number}/events", headers=people.as_insurer())
    return sum(event["type"] == "DispensationRecorded" for event in history.json()["events"])


@pytest.fixture
def before(settings: Settings, people: People) -> BeforeTheUpgrade:
    """The requests made before the upgrade, stored as the previous release stored them."""
    with TestClient(build_app(settings)) as client:
        number = issue(client, people, 3)["prescription_id"]
        dispensing = dispense(client, people, number, (1, 1), **{"Idempotency-Key": "k-dispense"})
        billed_at = dispensed(client, people)
        billing = bill(client, people, billed_at, invoice_number="F-42", key="k-bill")
        lost = issue(client, people, 3)["prescription_id"]
        lost_receipt = dispense(client, people, lost, (1, 1), **{"Idempotency-Key": "k-lost"})
    assert {dispensing.status_code, billing.status_code, lost_receipt.status_code} == {201}
    lost_id = lost_receipt.json()["dispensation_id"].encode()

    def old_answer(result: bytes) -> tuple[int, bytes]:
        return (201, LOST_ANSWER) if lost_id in result else (201, result)

    return BeforeTheUpgrade(
        number=number,
        dispensing=dispensing.json(),
        billed_at=billed_at,
        billing=billing.json(),
        lost=lost,
        legacy_rows=as_previous_release(settings, old_answer),
    )


@pytest.fixture
def upgraded(settings: Settings, before: BeforeTheUpgrade) -> Iterator[Client]:
    """The new release started on the previous release's database."""
    with TestClient(build_app(settings)) as client:
        yield client
