"""The log's copy in a real Kafka broker: relay, consumer-group workers, and their failures."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import People
from kafka import KafkaConsumer, KafkaProducer
from logs import a_busy_day, append_all, dump, ordo_cli, rebuild, scalar, table_rows
from servers import (
    REPO,
    dispense_two_of_three,
    free_port,
    listed_as_dispensed,
    ordo_process,
    ordo_server,
    wait_for,
)

from adapters.config import KafkaSettings
from adapters.kafka.lag import PartitionLag, group_lag

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


@pytest.fixture
def kafka_env(postgres_url: str, kafka_bootstrap: str, tmp_path: Path) -> dict[str, str]:
    """One schema, topic and consumer group per test."""
    tag = uuid.uuid4().hex[:8]
    return {
        "ORDO_DATABASE_URL": postgres_url,
        "ORDO_DATA_DIR": str(tmp_path),
        "ORDO_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "ORDO_KAFKA_TOPIC": f"ordo.test.{tag}",
        "ORDO_KAFKA_GROUP": f"ordo-test-{tag}",
        "ORDO_KAFKA_PARTITIONS": "6",
        # A killed worker's partitions move after this (the broker's minimum), not 45 s.
        "ORDO_KAFKA_SESSION_TIMEOUT_MS": "6000",
    }


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


def test_the_api_keeps_dispensing_while_the_broker_is_down_and_nothing_is_lost(
    kafka_env: dict[str, str], tmp_path: Path, people: People
) -> None:
    url = kafka_env["ORDO_DATABASE_URL"]
    statuses: list[int] = []
    stop = threading.Event()
    with (
        ordo_server(url, tmp_path, extra_env=kafka_env) as (base_url, _),
        relay(kafka_env, tmp_path),
        worker(kafka_env, tmp_path),
    ):
        wait_for(lambda: started(tmp_path, "relay", "relay leading"), what="the relay")
        wait_for(lambda: started(tmp_path, "worker", "worker consuming"), what="the worker")

        def pharmacy_day() -> None:
            with httpx.Client(base_url=base_url, timeout=30) as client:
                while not stop.is_set():
                    created = client.post(
                        "/v1/prescriptions",
                        json=people.prescription_body(2),
                        headers=people.as_prescriber(),
                    )
                    number = created.json()["prescription_id"]
                    dispensed = client.post(
                        f"/v1/prescriptions/{number}/dispensations",
                        json={"lines": [{"line_no": 1, "quantity": 1}]},
                        headers=people.as_pharmacist(),
                    )
                    statuses.extend([created.status_code, dispensed.status_code])

        writer = threading.Thread(target=pharmacy_day)
        writer.start()
        try:
            time.sleep(2)
            services(["down", "kafka"])
            during_outage = len(statuses)
            time.sleep(3)
            assert len(statuses) > during_outage, (
                "the API must keep answering while the broker is down"
            )
            services(["up", "kafka"])
            time.sleep(2)
        finally:
            stop.set()
            writer.join()
        prescriptions = len(statuses) // 2
        wait_for(
            lambda: views_hold(url, prescriptions, 2 * prescriptions),
            seconds=180,
            what="catching up",
        )
    assert set(statuses) == {201}
    assert_views_equal_a_fresh_rebuild(url, tmp_path)


def started(tmp_path: Path, name: str, line: str) -> bool:
    log = tmp_path / f"{name}.log"
    return log.exists() and line in log.read_text()


def services(arguments: list[str]) -> None:
    subprocess.run(
        [str(REPO / "scripts" / "services"), *arguments], check=True, capture_output=True
    )


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
