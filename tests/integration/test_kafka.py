"""The log's copy in a real Kafka broker: relay, consumer-group workers, and their failures."""

from __future__ import annotations

import asyncio
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, KafkaProducer

from adapters.config import KafkaSettings
from adapters.kafka.lag import PartitionLag, group_lag
from tests.conftest import missing_service
from tests.integration.broker import KAFKA_LIBS, PrivateBroker, kafka_jars_present
from tests.integration.logs import (
    a_busy_day,
    append_all,
    dump,
    ordo_cli,
    rebuild,
    scalar,
    table_rows,
)
from tests.integration.servers import (
    dispense_two_of_three,
    listed_as_dispensed,
    ordo_process,
    ordo_server,
    wait_for,
)
from tools.cast import People
from tools.harness import free_port

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


@pytest.fixture
def kafka_env(postgres_url: str, kafka_bootstrap: str, tmp_path: Path) -> dict[str, str]:
    return env_for(postgres_url, kafka_bootstrap, tmp_path)


def env_for(postgres_url: str, bootstrap: str, tmp_path: Path) -> dict[str, str]:
    """One schema, topic and consumer group per test."""
    tag = uuid.uuid4().hex[:8]
    return {
        "ORDO_DATABASE_URL": postgres_url,
        "ORDO_DATA_DIR": str(tmp_path),
        "ORDO_KAFKA_BOOTSTRAP": bootstrap,
        "ORDO_KAFKA_TOPIC": f"ordo.test.{tag}",
        "ORDO_KAFKA_GROUP": f"ordo-test-{tag}",
        "ORDO_KAFKA_PARTITIONS": "6",
        # A killed worker's partitions move after this (the broker's minimum), not 45 s.
        "ORDO_KAFKA_SESSION_TIMEOUT_MS": "6000",
    }


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A broker only this test uses, so that it can really stop and start it."""
    if not kafka_jars_present():
        missing_service(f"the Kafka jars in {KAFKA_LIBS} (`scripts/services up kafka`)")
    broker = PrivateBroker(tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def relay(env: dict[str, str], tmp_path: Path, name: str = "relay", **extra: str) -> Any:
    return ordo_process(["relay"], {**env, **extra}, tmp_path / f"{name}.log")


def worker(env: dict[str, str], tmp_path: Path, name: str = "worker", *args: str) -> Any:
    return ordo_process(["worker", *args], env, tmp_path / f"{name}.log")


def views_hold(url: str, prescriptions: int, events: int) -> bool:
    """Every prescription is in the views, each at the version its last event gave it."""
    try:
        found = asyncio.run(
            scalar(
                url,
                "SELECT count(*) || '/' || coalesce(sum(version), 0) FROM ordo_view_prescriptions",
            )
        )
    except Exception:
        return False
    return bool(found == f"{prescriptions}/{events}")


def relayed(url: str, topic: str) -> int:
    try:
        found = asyncio.run(
            scalar(url, f"SELECT position FROM ordo_relay_positions WHERE topic = '{topic}'")
        )
    except Exception:
        return 0
    return int(found or 0)


def assert_views_equal_a_fresh_rebuild(url: str, tmp_path: Path) -> None:
    applied = asyncio.run(dump(url))
    rebuild(url, tmp_path)
    assert asyncio.run(dump(url)) == applied


def test_a_dispensing_reaches_the_list_through_the_relay_kafka_and_a_worker(
    kafka_env: dict[str, str], tmp_path: Path, people: People
) -> None:
    url, metrics_port = kafka_env["ORDO_DATABASE_URL"], free_port()
    with (
        ordo_server(url, tmp_path, extra_env=kafka_env) as (base_url, _),
        relay(kafka_env, tmp_path),
        worker(kafka_env, tmp_path, "worker", "--metrics-port", str(metrics_port)),
    ):
        dispense_two_of_three(base_url, people)

        wait_for(
            lambda: listed_as_dispensed(base_url, people),
            seconds=30,
            what="the dispensing in the prescriber's list",
        )
        wait_for(lambda: nothing_left_behind(kafka_env, tmp_path), what="status to show no lag")
        wait_for(lambda: worker_reports_no_lag(metrics_port), what="the worker's /metrics")


def worker_reports_no_lag(port: int) -> bool:
    """The only worker holds all six partitions and has applied everything on each."""
    metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return all(f'ordo_worker_lag{{partition="{n}"}} 0.0' in metrics for n in range(6))


def nothing_left_behind(env: dict[str, str], tmp_path: Path) -> bool:
    """`ordo projections status`: the relay at the log head, every partition fully consumed."""
    rows = table_rows(ordo_cli(["projections", "status"], env, tmp_path))
    relay_row, partitions, total = rows[0], rows[1:-1], rows[-1]
    assert [p[0] for p in partitions] == [str(n) for n in range(6)]
    events = int(relay_row[0])
    return (
        events > 0
        and relay_row[1:] == [str(events), "0"]
        and total == ["all", "", str(events), "0"]
    )


def test_a_relay_killed_mid_stream_loses_nothing_and_duplicates_are_absorbed(
    kafka_env: dict[str, str], tmp_path: Path
) -> None:
    url, topic = kafka_env["ORDO_DATABASE_URL"], kafka_env["ORDO_KAFKA_TOPIC"]
    events = a_busy_day(2900)
    append_all(url, tmp_path, events)
    assert len(events) >= 10_000

    with relay(kafka_env, tmp_path, "first", ORDO_RELAY_BATCH_SIZE="500") as first:
        wait_for(lambda: relayed(url, topic) > 0, what="a first acknowledged batch")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    stopped_at = relayed(url, topic)
    assert 0 < stopped_at < len(events), "the kill must land in the middle of publishing"

    with relay(kafka_env, tmp_path, "second"), worker(kafka_env, tmp_path):
        wait_for(
            lambda: views_hold(url, 2900, len(events)), seconds=120, what="the views to converge"
        )
    assert_views_equal_a_fresh_rebuild(url, tmp_path)


def test_when_a_worker_dies_the_other_takes_its_partitions(
    kafka_env: dict[str, str], tmp_path: Path
) -> None:
    url = kafka_env["ORDO_DATABASE_URL"]
    first_half, second_half = a_busy_day(1500), a_busy_day(1500)

    with (
        relay(kafka_env, tmp_path),
        worker(kafka_env, tmp_path, "a") as a,
        worker(kafka_env, tmp_path, "b"),
    ):
        append_all(url, tmp_path, first_half)
        wait_for(lambda: views_hold(url, 1500, len(first_half)), seconds=120, what="the first half")
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=10)
        append_all(url, tmp_path, second_half)
        total = len(first_half) + len(second_half)
        wait_for(lambda: views_hold(url, 3000, total), seconds=120, what="the survivor to catch up")
    assert_views_equal_a_fresh_rebuild(url, tmp_path)


def committed_offsets(env: dict[str, str]) -> list[int | None]:
    return [p.committed for p in partitions_of(env)]


def all_committed(env: dict[str, str]) -> bool:
    """The consumer group has applied and committed every message of the topic."""
    return all(p.committed == p.end for p in partitions_of(env))


def partitions_of(env: dict[str, str]) -> list[PartitionLag]:
    settings = KafkaSettings.from_env(env)
    assert settings is not None
    return group_lag(settings)


def test_a_worker_killed_between_the_views_commit_and_the_offsets_commit_repeats_nothing(
    kafka_env: dict[str, str], tmp_path: Path
) -> None:
    url, topic = kafka_env["ORDO_DATABASE_URL"], kafka_env["ORDO_KAFKA_TOPIC"]
    events = a_busy_day(600)
    # Versions 1-2 (issued, sent to a pharmacy) first; the dispensings come after the crash
    # point, so the redelivered batch continues prescriptions the views already hold.
    issued = [e for e in events if e.version <= 2]
    later = [e for e in events if e.version > 2]
    append_all(url, tmp_path, issued)
    with relay(kafka_env, tmp_path):
        with worker(kafka_env, tmp_path, "before"):
            wait_for(lambda: views_hold(url, 600, len(issued)), seconds=60, what="the issuing")
        before = committed_offsets(kafka_env)
        append_all(url, tmp_path, later)
        wait_for(lambda: relayed(url, topic) == len(events), seconds=60, what="the relay")

        crashing = {**kafka_env, "ORDO_FAILPOINT": "crash_after_view_commit"}
        with worker(crashing, tmp_path, "crashing") as crashed:
            assert crashed.wait(timeout=60) == -signal.SIGKILL
        # It died with a batch in the views and its offsets not committed: that batch comes
        # again to the next worker, which must recognise every event of it.
        moved = asyncio.run(scalar(url, "SELECT sum(version) FROM ordo_view_prescriptions"))
        assert moved > len(issued)
        assert committed_offsets(kafka_env) == before

        with worker(kafka_env, tmp_path, "after"):
            # The views already hold everything: wait for the redelivered batch to be applied
            # again and committed, which is the step under test.
            wait_for(lambda: all_committed(kafka_env), seconds=60, what="the redelivery")
    assert views_hold(url, 600, len(events))
    assert_views_equal_a_fresh_rebuild(url, tmp_path)


class PharmacyDay(threading.Thread):
    """Issues and dispenses through the API until stopped; every answer but 201 is an error."""

    def __init__(self, base_url: str, people: People) -> None:
        super().__init__(daemon=True)
        self.base_url, self.people = base_url, people
        self.answered = 0
        self.errors: list[str] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self.stopping.is_set():
                try:
                    self._one_visit(client)
                except Exception as error:  # reported by the test, not lost in the thread
                    self.errors.append(repr(error))

    def _one_visit(self, client: httpx.Client) -> None:
        people = self.people
        created = client.post(
            "/v1/prescriptions", json=people.prescription_body(2), headers=people.as_prescriber()
        )
        if created.status_code != 201:
            self.errors.append(f"issue: {created.status_code} {created.text}")
            return
        number = created.json()["prescription_id"]
        dispensed = client.post(
            f"/v1/prescriptions/{number}/dispensations",
            json={"lines": [{"line_no": 1, "quantity": 1}]},
            headers=people.as_pharmacist(),
        )
        if dispensed.status_code != 201:
            self.errors.append(f"dispense: {dispensed.status_code} {dispensed.text}")
        self.answered += 1


def relay_metrics(port: int) -> dict[str, float]:
    """The relay's own ordo_relay_* samples, from its /metrics."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.TransportError:
        return {}
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if line.startswith("ordo_relay"))
    return {name: float(value) for name, value in samples}


def test_the_api_keeps_dispensing_while_the_broker_is_down_and_nothing_is_lost(
    postgres_url: str, private_broker: PrivateBroker, tmp_path: Path, people: People
) -> None:
    env = env_for(postgres_url, private_broker.bootstrap, tmp_path)
    port = free_port()

    def relay_says(**expected: Callable[[float], bool]) -> bool:
        metrics = relay_metrics(port)
        return all(
            f"ordo_relay_{name}" in metrics and check(metrics[f"ordo_relay_{name}"])
            for name, check in expected.items()
        )

    with (
        ordo_server(postgres_url, tmp_path, extra_env=env) as (base_url, _),
        ordo_process(["relay", "--metrics-port", str(port)], env, tmp_path / "relay.log"),
        worker(env, tmp_path),
    ):
        day = PharmacyDay(base_url, people)
        day.start()
        try:
            wait_for(lambda: relay_says(position=bool, broker_connections=bool), what="relaying")
            private_broker.stop()
            # The relay saw it: events it cannot get acknowledged, no broker connected.
            wait_for(
                lambda: relay_says(broker_connections=lambda n: n == 0, unacknowledged=bool),
                what="the relay's metrics to show the outage",
            )
            stuck_at, answered = relay_metrics(port)["ordo_relay_position"], day.answered
            wait_for(lambda: day.answered >= answered + 20, what="the API while the broker is down")
            assert relay_metrics(port)["ordo_relay_position"] == stuck_at, "no broker acknowledged"
            private_broker.start()
            wait_for(
                lambda: relay_says(position=lambda p: p > stuck_at, broker_connections=bool),
                seconds=60,
                what="the relay's metrics to show it publishing again",
            )
        finally:
            day.stopping.set()
            day.join(timeout=60)
        assert day.errors == [], "the API must answer 201 throughout, broker or not"
        head = int(
            asyncio.run(scalar(postgres_url, "SELECT max(notification_id) FROM ordo_events"))
        )
        wait_for(
            lambda: relay_says(position=lambda p: p == head, unacknowledged=lambda n: n == 0),
            seconds=60,
            what="the relay to reach the log head",
        )
        wait_for(
            lambda: views_hold(postgres_url, day.answered, 2 * day.answered),
            seconds=120,
            what="the views to catch up",
        )
    assert_views_equal_a_fresh_rebuild(postgres_url, tmp_path)


def test_a_poison_message_goes_to_the_dead_letter_topic_and_the_worker_goes_on(
    kafka_env: dict[str, str], tmp_path: Path
) -> None:
    url, topic, bootstrap = (
        kafka_env[k] for k in ("ORDO_DATABASE_URL", "ORDO_KAFKA_TOPIC", "ORDO_KAFKA_BOOTSTRAP")
    )
    events = a_busy_day(5)
    with relay(kafka_env, tmp_path), worker(kafka_env, tmp_path):
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        producer.send(topic, key=b"junk", value=b'{"type": "NotAnEvent"').get(timeout=30)
        producer.close()
        append_all(url, tmp_path, events)
        wait_for(
            lambda: views_hold(url, 5, len(events)),
            seconds=60,
            what="the good events after the poison",
        )

    dead = KafkaConsumer(
        f"{topic}.dead-letter",
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    letters = [message for message in dead if message.key == b"junk"]
    dead.close()
    assert len(letters) == 1
    assert dict(letters[0].headers)["reason"].startswith(b"undecodable")
