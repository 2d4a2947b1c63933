"""OpenTelemetry traces: one request followed through the API, the event store, Kafka and a worker.

With `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, `start_tracing`
installs the SDK, exporting spans in batches by OTLP/HTTP, and instruments asyncpg; without it,
nothing is installed and every span below is the API's no-op. The code opens its spans through
`TRACER` either way.

A trace's context crosses the two hops that are not calls: the event store keeps the W3C
`traceparent` of each event appended under a span (`ordo_event_traces`, written in the append's
transaction), and the relay puts it, as the parent of its publishing span, in the Kafka
message's `traceparent` header, where the worker finds it. So one dispensing is one trace: the
request, its append, its publication and its application to the read models.

No attribute carries a health identifier: routes are templates, SQL statements carry `$n`
placeholders and never their parameters, and messages are described by topic, partition, offset
and event type.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, MutableMapping
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, StatusCode

TRACER = trace.get_tracer("ordo")
TRACEPARENT = "traceparent"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_installed: list[Any] = []  # the SDK's provider, once installed in this process


def wanted() -> bool:
    """Whether the environment names a collector to export traces to."""
    return any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def active() -> bool:
    """Whether this process records spans (the SDK is installed)."""
    return bool(_installed)


def start_tracing(service: str) -> bool:
    """Install the SDK exporting to the OTLP/HTTP endpoint of the environment, if one is set.

    `service` names the process (`service.name`) unless OTEL_SERVICE_NAME does. True if the
    process now records spans."""
    if _installed or not wanted():
        return active()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    from adapters.tracing_sdk import provider_for  # noqa: PLC0415 - only when tracing

    install_tracing(provider_for(service), BatchSpanProcessor(OTLPSpanExporter()))
    return True


def install_tracing(provider: Any, processor: Any) -> None:
    """Make `provider` (an SDK TracerProvider), exporting through `processor`, the process's
    own, and instrument asyncpg (statements only, never their parameters)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor  # noqa: PLC0415

    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    AsyncPGInstrumentor(capture_parameters=False).instrument(  # type: ignore[no-untyped-call]
        tracer_provider=provider
    )
    _installed.append(provider)


def stop_tracing() -> None:
    """Export the spans still buffered (at the process's end)."""
    for provider in _installed:
        provider.force_flush()


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the span in progress, if one is recorded."""
    context = trace.get_current_span().get_span_context()
    if not (context.is_valid and context.trace_flags.sampled):
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get(TRACEPARENT)


def parent_of(traceparent: str | bytes | None) -> Context | None:
    """The context a `traceparent` names (None: none, or not one)."""
    if traceparent is None:
        return None
    text = traceparent.decode("latin-1") if isinstance(traceparent, bytes) else traceparent
    context = propagate.extract({TRACEPARENT: text})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def header_of(span: Span) -> tuple[str, bytes] | None:
    """The `traceparent` header naming `span`, for a Kafka message."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    found = carrier.get(TRACEPARENT)
    return (TRACEPARENT, found.encode()) if found else None


def traceparent_in(headers: Iterable[tuple[str, bytes]] | None) -> bytes | None:
    for name, value in headers or ():
        if name == TRACEPARENT:
            return value
    return None


def end_all(spans: Iterable[Span], error: BaseException | None = None) -> None:
    for span in spans:
        if error is not None:
            span.record_exception(error)
            span.set_status(StatusCode.ERROR, type(error).__name__)
        span.end()


def add_trace_id(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: the trace id of the span in progress, if any (`trace_id`)."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
    return event


class ServerSpans:
    """One server span per HTTP request, named by its method and route template.

    Its attributes are the method, the route template and the status: never the path (it holds a
    prescription number) nor the query (a search may name a patient). A caller's `traceparent`
    makes the request part of the caller's trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method, route = scope["method"], scope.get("path_template") or "unmatched"
        with TRACER.start_as_current_span(
            f"{method} {route}",
            context=parent_of(_header(scope, b"traceparent")),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": route},
        ) as span:

            async def answered(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(StatusCode.ERROR)
                await send(message)

            await self.app(scope, receive, answered)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value)
    return None
