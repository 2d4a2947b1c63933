"""What a reviewer expects of a health API's surface, whatever the route.

- Every body that cannot be decoded is a 400 problem, a 5,000-level deep one or one that is not
  UTF-8 included (msgspec gives up on them with a RecursionError or a UnicodeDecodeError, which
  Litestar would have answered 500).
- `Cache-Control: no-store` on every `/v1` and `/fhir` answer (prescriptions must not linger in
  a proxy or a browser cache), `X-Content-Type-Options: nosniff`, no framing, no referrer, and a
  Content-Security-Policy: `default-src 'none'` for the API, the docs pages' own for them.
- A request body that stalls for `request_timeout_seconds` is answered 408 (a client that stops
  sending cannot hold a worker forever).
- A per-caller rate limit (token bucket) on `/v1` and `/fhir`, answered 429 with `Retry-After`;
  off unless configured.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from typing import Any

import anyio
from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions import ClientException, TooManyRequestsException
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from adapters.auth import TokenVerifier, UnauthenticatedError

API_PREFIX = "/v1/"
FHIR_PREFIX = "/fhir/"
API_PREFIXES = (API_PREFIX, FHIR_PREFIX)  # the answers that carry health data
DOCS_PREFIX = "/schema"
# The docs pages load only their own pinned assets (adapters/http/docs.py) and the document.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
CALLERS_REMEMBERED = 100_000


class UndecodableBody(ClientException):
    """A body msgspec gives up on without a DecodeError, which Litestar would answer 500."""

    status_code = 400


class HardenedRequest(Request[Any, Any, Any]):
    """Litestar's request, whose JSON decoding fails with a 400 whatever the body."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:  # nested beyond Python's recursion limit
            raise UndecodableBody("the body is not valid JSON: nested too deeply") from None
        except UnicodeDecodeError as error:
            raise UndecodableBody(f"the body is not valid UTF-8: {error.reason}") from None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def add_security_headers(message: Message, scope: Scope) -> None:
    """A `before_send` hook: it sees every answer, unmatched routes' 404s included."""
    if message["type"] != "http.response.start" or scope["type"] != ScopeType.HTTP:
        return
    headers = list(message.get("headers", []))
    present = {name.lower() for name, _ in headers}
    headers.extend((n, v) for n, v in security_headers(scope["path"]) if n not in present)
    message["headers"] = headers


def security_headers(path: str) -> list[tuple[bytes, bytes]]:
    docs = path == DOCS_PREFIX or path.startswith(f"{DOCS_PREFIX}/")
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", (DOCS_POLICY if docs else API_POLICY).encode()),
    ]
    if path.startswith(API_PREFIXES):
        headers.append((b"cache-control", b"no-store"))
    return headers


class RequestTimeout(ClientException):
    status_code = 408


class BodyTimeoutMiddleware:
    """Answers 408 when the request body stalls: no part of it arrives within `seconds`.

    An idle timeout rather than a total one, so that a large reconciliation batch sent over a
    slow link still arrives, while a client that stops sending frees its worker.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return

        async def receive_in_time() -> ReceiveMessage:
            try:
                with anyio.fail_after(self.seconds):
                    return await receive()
            except TimeoutError:
                detail = f"the request body stalled for {self.seconds:g} s"
                raise RequestTimeout(detail, headers={"Connection": "close"}) from None

        await self.app(scope, receive_in_time, send)


class TokenBuckets:
    """One bucket per caller: `per_minute` calls a minute on average, `burst` at once.

    Bounded: past CALLERS_REMEMBERED callers the least recently seen is forgotten (its bucket
    would be full again by then anyway, unless the server is flooded by that many callers).
    """

    def __init__(self, per_minute: int, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(max(burst, 1))
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, caller: str, now: float) -> float:
        """0 when the call may go ahead, else the seconds until it may."""
        tokens, then = self._buckets.pop(caller, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            self._remember(caller, (tokens - 1.0, now))
            return 0.0
        self._remember(caller, (tokens, now))
        return (1.0 - tokens) / self.rate

    def _remember(self, caller: str, bucket: tuple[float, float]) -> None:
        self._buckets[caller] = bucket
        if len(self._buckets) > CALLERS_REMEMBERED:
            self._buckets.popitem(last=False)


class RateLimitMiddleware:
    """429 `rate_limited` with `Retry-After` past a caller's allowance on `/v1` and `/fhir`.

    The caller is the verified token's role and subject; a call without a valid token counts
    against its client address (so that garbage tokens cannot each get a fresh bucket). The
    buckets live in the process: with several workers each has its own allowance.
    """

    def __init__(self, app: ASGIApp, buckets: TokenBuckets, verifier: TokenVerifier) -> None:
        self.app = app
        self.buckets = buckets
        self.verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not scope["path"].startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(await self.caller(scope), time.monotonic())
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        raise TooManyRequestsException(
            "too many calls from this caller; retry after the Retry-After delay",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )

    async def caller(self, scope: Scope) -> str:
        try:
            actor = await self.verifier.caller(_header(scope, b"authorization"))
        except UnauthenticatedError:
            client = scope.get("client")
            address = client[0] if client else "unknown"
            return f"address:{_network_of(address)}"
        return f"token:{actor.role}:{actor.subject}"


def _network_of(address: str) -> str:
    """An IPv6 client controls its whole /64: count it as one caller."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
