"""One dispensing is one trace: the request, its append, the relay's publication and a worker's
apply, joined by the traceparent the log keeps and the Kafka message carries; no span names a
patient."""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from litestar.testing import TestClient
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased
from opentelemetry.trace import SpanKind

from adapters import tracing
from adapters.bootstrap import build_app
from adapters.config import KafkaSettings, Settings
from adapters.kafka.relay import Relay, create_positions_table, ensure_topics, producer
from adapters.kafka.worker import Worker, consumer
from adapters.postgres import asyncpg_target
from adapters.readmodels.postgres import PostgresReadModels
from adapters.tracing_sdk import OperationsOnly
from tests.conftest import settings_for
from tests.integration.otlp_receiver import ReceivedSpan, otlp_receiver
from tests.integration.servers import dispense_two_of_three, ordo_process, ordo_server, wait_for
from tools.cast import SECRET, People

DISPENSING = "POST /v1/prescriptions/{prescription_id}/dispensations"
APPEND = "event store append"
INS_SHAPED = re.compile(r"\d{13}")
PRESCRIPTION_NUMBER = re.compile(r"[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}")


def kafka_env_for(postgres_url: str, bootstrap: str, tmp_path: Path) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        "ORDO_DATABASE_URL": postgres_url,
        "ORDO_DATA_DIR": str(tmp_path),
        "ORDO_AUTH_SECRET": SECRET,
        "ORDO_KAFKA_BOOTSTRAP": bootstrap,
        "ORDO_KAFKA_TOPIC": f"ordo.test.{tag}",
        "ORDO_KAFKA_GROUP": f"ordo-test-{tag}",
        "ORDO_KAFKA_PARTITIONS": "2",
        "ORDO_KAFKA_SESSION_TIMEOUT_MS": "6000",
    }


@pytest.mark.postgres
@pytest.mark.kafka
def test_a_dispensing_exported_over_otlp_is_one_trace_from_the_api_to_a_worker(
    postgres_url: str, kafka_bootstrap: str, tmp_path: Path, people: People
) -> None:
    serve_log = tmp_path / "serve.log"
    with otlp_receiver() as (endpoint, received):
        env = {
            **kafka_env_for(postgres_url, kafka_bootstrap, tmp_path),
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        with (
            ordo_server(postgres_url, tmp_path, extra_env=env, log=serve_log) as (base_url, _),
            ordo_process(["relay"], env, tmp_path / "relay.log"),
            ordo_process(["worker"], env, tmp_path / "worker.log"),
        ):
            dispense_two_of_three(base_url, people)
            wait_for(lambda: received.named(DISPENSING), what="the dispensing's server span")
            trace_id = received.named(DISPENSING)[0].trace_id
            wait_for(
                lambda: services_in(received.of_trace(trace_id)) >= {"ordo-worker"},
                seconds=60,
                what="the worker's span in the dispensing's trace",
            )
        spans = received.of_trace(trace_id)
        assert services_in(spans) == {"ordo-api", "ordo-relay", "ordo-worker"}
        assert_one_chain(spans)
        assert_no_patient_in(received.spans, people)
    assert trace_id in logged_trace_ids(serve_log)


def services_in(spans: list[ReceivedSpan]) -> set[str]:
    return {span.service for span in spans}


def assert_one_chain(spans: list[ReceivedSpan]) -> None:
    """request -> append -> publication -> apply, each the parent of the next."""
    (request,) = [span for span in spans if span.name == DISPENSING]
    assert request.kind == SpanKind.SERVER.value + 1  # the protocol counts from UNSPECIFIED
    assert request.attributes["http.route"] == "/v1/prescriptions/{prescription_id}/dispensations"
    assert request.attributes["http.response.status_code"] == 201
    (append,) = [span for span in spans if span.name == APPEND]
    assert append.parent_span_id == request.span_id
    published = [span for span in spans if span.service == "ordo-relay"]
    assert published
    assert all(span.parent_span_id == append.span_id for span in published)
    applied = [span for span in spans if span.service == "ordo-worker"]
    assert {span.parent_span_id for span in applied} == {span.span_id for span in published}
    assert {span.attributes["ordo.event.type"] for span in applied} == {"DispensationRecorded"}


def assert_no_patient_in(spans: list[Any], people: People) -> None:
    """No attribute holds the patient's INS, anything shaped like a NIR, or a prescription's
    number (the logs hash it: it opens the prescription)."""
    for span in spans:
        for name, value in dict(span.attributes or {}).items():
            text = str(value)
            assert people.patient not in text, (span.name, name)
            assert not INS_SHAPED.search(text), (span.name, name, text)
            assert not PRESCRIPTION_NUMBER.search(text), (span.name, name, text)


def logged_trace_ids(log: Path) -> set[str]:
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return {line["trace_id"] for line in lines if line.get("event") == "request"}


class InMemoryTracing:
    """This process's tracer provider for the tests, recording in memory while a test runs.

    The API lets a process set its provider once: between tests its roots are sampled out and
    asyncpg is not instrumented, so the other tests of the process run untraced."""

    def __init__(self) -> None:
        self.exporter, self.roots = InMemorySpanExporter(), OperationsOnly(ALWAYS_OFF)
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": "ordo-test"}),
            sampler=ParentBased(root=self.roots),
        )
        tracing.install_tracing(self.provider, SimpleSpanProcessor(self.exporter))
        self.stop()

    def start(self) -> None:
        self.exporter.clear()
        self.roots.inner = ALWAYS_ON
        AsyncPGInstrumentor().instrument(  # type: ignore[no-untyped-call]
            tracer_provider=self.provider
        )
        tracing._installed.append(self.provider)

    def stop(self) -> None:
        self.roots.inner = ALWAYS_OFF
        AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
        tracing._installed.clear()


@pytest.fixture(scope="session")
def in_memory_tracing() -> InMemoryTracing:
    if tracing.active():
        pytest.skip("this process already exports its traces")
    return InMemoryTracing()


@pytest.fixture
def in_memory_spans(in_memory_tracing: InMemoryTracing) -> Iterator[InMemorySpanExporter]:
    in_memory_tracing.start()
    try:
        yield in_memory_tracing.exporter
    finally:
        in_memory_tracing.stop()


def logged_to_a_buffer(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Where an app built next logs (its log goes to the stdout of then). Called in the test's
    body (pytest sets its own stdout again after the fixtures); a buffer, not capsys's stream,
    which closes while loggers cached by then may still write to it."""
    lines = io.StringIO()
    monkeypatch.setattr(sys, "stdout", lines)
    return lines


def test_a_dispensing_on_sqlite_is_a_request_span_around_its_append(
    tmp_path: Path,
    people: People,
    in_memory_spans: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log_lines = logged_to_a_buffer(monkeypatch)
    with TestClient(build_app(settings_for(tmp_path))) as client:
        assert dispense_in(client, people).status_code == 201
    spans = in_memory_spans.get_finished_spans()
    (request,) = [span for span in spans if span.name == DISPENSING]
    (append,) = [span for span in spans if span.name == APPEND and span.parent == request.context]
    assert dict(append.attributes or {})["db.system"] == "sqlite"
    assert dict(request.attributes or {}) == {
        "http.request.method": "POST",
        "http.route": "/v1/prescriptions/{prescription_id}/dispensations",
        "http.response.status_code": 201,
    }
    assert f"{request.context.trace_id:032x}" in logged_trace_ids_in(log_lines.getvalue())


def dispense_in(client: TestClient[Any], people: People) -> Any:
    """A prescriber registers 3 packs and a pharmacy dispenses 2; the dispensing's answer."""
    created = client.post(
        "/v1/prescriptions", json=people.prescription_body(3), headers=people.as_prescriber()
    )
    number = created.json()["prescription_id"]
    return client.post(
        f"/v1/prescriptions/{number}/dispensations",
        json={"lines": [{"line_no": 1, "quantity": 2}]},
        headers=people.as_pharmacist(),
    )


@pytest.mark.postgres
@pytest.mark.kafka
def test_a_dispensing_is_one_trace_through_the_append_kafka_and_the_worker_in_memory(
    *,
    postgres_url: str,
    kafka_bootstrap: str,
    tmp_path: Path,
    people: People,
    in_memory_spans: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings.from_env(kafka_env_for(postgres_url, kafka_bootstrap, tmp_path))
    assert settings.kafka is not None
    log_lines = logged_to_a_buffer(monkeypatch)
    with TestClient(build_app(settings_for(tmp_path, postgres_url))) as client:
        dispensed = dispense_in(client, people)
        assert dispensed.status_code == 201, dispensed.text
    asyncio.run(relay_and_apply(postgres_url, settings.kafka))

    spans = in_memory_spans.get_finished_spans()
    (request,) = [span for span in spans if span.name == DISPENSING]
    trace_id = request.context.trace_id
    chain = [span for span in spans if span.context.trace_id == trace_id]
    names = {span.name for span in chain}
    assert {DISPENSING, APPEND} <= names
    assert {SpanKind.PRODUCER, SpanKind.CONSUMER} <= {span.kind for span in chain}
    assert_parents_within(chain)
    assert_no_patient_in(list(spans), people)
    assert f"{trace_id:032x}" in logged_trace_ids_in(log_lines.getvalue())


def assert_parents_within(chain: list[ReadableSpan]) -> None:
    """Every span of the trace but its root has its parent in the trace."""
    ids = {span.context.span_id for span in chain}
    roots = [span for span in chain if span.parent is None]
    assert len(roots) == 1 and roots[0].name == DISPENSING
    assert all(span.parent.span_id in ids for span in chain if span.parent is not None)


def logged_trace_ids_in(output: str) -> set[str]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return {line["trace_id"] for line in lines if line.get("event") == "request"}


async def relay_and_apply(postgres_url: str, kafka: KafkaSettings) -> None:
    """What `ordo relay` and `ordo worker` do, in this process: publish the log, apply it."""
    dsn, schema = asyncpg_target(postgres_url)
    await asyncio.to_thread(ensure_topics, kafka)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    send, dead_letters = producer(kafka), producer(kafka)
    source = await asyncio.to_thread(consumer, kafka)
    try:
        relay = Relay(pool, schema, send, kafka.topic)
        await create_positions_table(pool, schema)
        while await relay.publish_next():
            pass
        views = PostgresReadModels(pool, schema)
        await views.create()
        worker = Worker(views, source, dead_letters, kafka)
        applied = 0
        for _ in range(60):
            applied += await worker.step()
            if applied >= 2:  # the prescribing and the dispensing
                break
        assert applied >= 2
    finally:
        await asyncio.to_thread(source.close)
        send.close()
        dead_letters.close()
        await pool.close()
