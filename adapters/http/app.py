"""The ASGI application: routes, errors, auth, logs, metrics and the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.types import ControllerRouterHandler

from adapters.access import AccessRecorder
from adapters.access.middleware import AccessLogMiddleware
from adapters.auth import TokenVerifier
from adapters.catalogue.index import LiveCatalogue
from adapters.http.access_log import AccessLogController
from adapters.http.conversations import ConversationsController
from adapters.http.dependencies import DEPENDENCIES
from adapters.http.docs import LocalSwaggerUI, docs_asset
from adapters.http.document import DocumentController
from adapters.http.fhir import FhirController
from adapters.http.fhir_openapi import complete_fhir_document
from adapters.http.fhir_outcomes import route_error
from adapters.http.hardening import (
    BodyTimeoutMiddleware,
    HardenedRequest,
    RateLimitMiddleware,
    TokenBuckets,
    add_security_headers,
)
from adapters.http.lists import ListsController
from adapters.http.openapi import complete_document
from adapters.http.problems import EXCEPTION_HANDLERS, STATUS_OF, Problem, problem
from adapters.http.products import ProductsController
from adapters.http.receipts import document_receipts, receipt_header, receipt_keys
from adapters.http.reconciliation import ReconciliationController
from adapters.http.routes import PrescriptionController
from adapters.http.sending import SendingController
from adapters.http.subscriptions import SubscriptionsController
from adapters.logging import RequestLogMiddleware
from adapters.messaging.service import ConversationService
from adapters.receipts import KeyRing
from adapters.service import PrescriptionService
from adapters.tracing import ServerSpans


@get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", include_in_schema=False)
async def readyz(state: State) -> Response[Any]:
    service: PrescriptionService = state.service
    try:
        position = await service.ready()
    except Exception as error:
        return problem(503, "not_ready", f"event store unreachable: {type(error).__name__}")
    return Response({"status": "ready", "log_position": position})


class MetricsController(PrometheusController):
    path = "/metrics"


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """The per-caller rate limit (0: none) and how long a request body may take to arrive."""

    rate_limit_per_minute: int = 0
    rate_limit_burst: int = 1
    request_timeout_seconds: float = 30.0

    def middleware(self, verifier: TokenVerifier) -> list[DefineMiddleware]:
        timeout = DefineMiddleware(BodyTimeoutMiddleware, seconds=self.request_timeout_seconds)
        if self.rate_limit_per_minute <= 0:
            return [timeout]
        buckets = TokenBuckets(self.rate_limit_per_minute, self.rate_limit_burst)
        return [DefineMiddleware(RateLimitMiddleware, buckets=buckets, verifier=verifier), timeout]


ROUTE_HANDLERS: list[ControllerRouterHandler] = [
    PrescriptionController,
    DocumentController,
    SendingController,
    SubscriptionsController,
    AccessLogController,
    ListsController,
    ReconciliationController,
    ProductsController,
    ConversationsController,
    FhirController,
    healthz,
    readyz,
    MetricsController,
    docs_asset,
    receipt_keys,
]


def create_app(
    service: PrescriptionService,
    verifier: TokenVerifier,
    *,
    max_body_bytes: int,
    lifespan: Sequence[Callable[[Litestar], AbstractAsyncContextManager[None]]] = (),
    on_shutdown: Sequence[Callable[[], object]] = (),
    catalogue: LiveCatalogue | None = None,
    access_log: AccessRecorder | None = None,
    record_access: bool = True,
    conversations: ConversationService,
    receipts: KeyRing,
    receipt_issuer: str = "ordo",
    limits: Limits | None = None,
    traced: bool = False,
) -> Litestar:
    prometheus = PrometheusConfig(
        app_name="ordo", prefix="ordo", group_path=True, exclude=["/metrics"]
    )
    recording = (
        [DefineMiddleware(AccessLogMiddleware, recorder=access_log, verifier=verifier)]
        if access_log is not None and record_access
        else []
    )
    return Litestar(
        route_handlers=ROUTE_HANDLERS,
        lifespan=list(lifespan),
        state=State(
            {
                "service": service,
                "verifier": verifier,
                "catalogue": catalogue or LiveCatalogue(),
                "access_log": access_log,
                "conversations": conversations,
                "receipts": receipts,
            }
        ),
        dependencies=DEPENDENCIES,
        exception_handlers={**EXCEPTION_HANDLERS, HTTPException: route_error},
        middleware=[
            *([ServerSpans] if traced else []),  # first: the request's log line has its trace id
            RequestLogMiddleware,
            prometheus.middleware,
            *recording,  # outside the limits: a call refused 429 is traced too
            *(limits or Limits()).middleware(verifier),
        ],
        before_send=[add_security_headers, receipt_header(receipts, receipt_issuer)],
        request_class=HardenedRequest,
        request_max_body_size=max_body_bytes,
        openapi_config=_openapi(),
        signature_namespace={"Request": Request, "Problem": Problem},
        on_startup=[_complete_openapi],
        on_shutdown=list(on_shutdown),
        logging_config=None,  # our structlog lines only; no root handler for libraries' logs
        debug=False,
    )


def _complete_openapi(app: Litestar) -> None:
    """The constraints, problems and links Litestar cannot infer (before the first request)."""
    complete_document(app.openapi_schema)
    complete_fhir_document(app.openapi_schema)
    document_receipts(app.openapi_schema)


API_DESCRIPTION = """Event-sourced backend for the ordonnance numérique (contract v1.1).

Every error is `application/problem+json` with a stable `code`; a client branches on it:

| code | status |
| --- | --- |
{codes}

`quantity_exceeds_allowed_now`, `narcotic_overlap`, `designated_pharmacy_only` and
`exceptional_supply_not_allowed` also carry `max_quantity`, the most that may be dispensed of the
line at that instant (`GET /v1/prescriptions/{{id}}/dispensable` says the same beforehand).
"""


def _openapi() -> OpenAPIConfig:
    codes = "\n".join(f"| `{code}` | {status} |" for code, status in STATUS_OF.items())
    return OpenAPIConfig(
        title="ordo",
        version="1.1.0",
        description=API_DESCRIPTION.format(codes=codes),
        path="/schema",
        render_plugins=[LocalSwaggerUI()],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
            }
        ),
        security=[{"bearer": []}],
    )
