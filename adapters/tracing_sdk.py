"""The OpenTelemetry SDK's side of `adapters.tracing`, imported only when a process traces."""

from __future__ import annotations

import os
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes


class OperationsOnly(Sampler):
    """Samples a trace's root when it is one of ours (a request, an append, a publication):
    a database call made outside any of them (a runner's poll, a lock's wait) would otherwise be
    a trace of its own, every second."""

    def __init__(self, inner: Sampler = ALWAYS_ON) -> None:
        self.inner = inner

    def should_sample(  # noqa: PLR0917 - the SDK's signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind == SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return self.inner.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"OperationsOnly{{{self.inner.get_description()}}}"


def provider_for(service: str) -> TracerProvider:
    """A TracerProvider naming `service` (unless OTEL_SERVICE_NAME does): a span is recorded
    when its parent was, and a root when `OperationsOnly` keeps it."""
    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    return TracerProvider(
        resource=Resource.create(named), sampler=ParentBased(root=OperationsOnly())
    )
