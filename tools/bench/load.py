"""The load: who asks (tokens, request bodies), the HTTP clients, and the closed and open
loops that send requests and tally their latencies; a run's result."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, cast

import asyncpg
import httptools
import httpx
import msgspec

from adapters.auth import sign_token
from tools import cast as people
from tools.cast import SECRET
from tools.harness import HOST

PRESCRIBED = 999
MORPHINE = people.SKENAN.value
NARCOTIC_PATIENTS = (
    500_000  # the n-th narcotic prescription's patient: the cast's patient 500,000 + n
)
DISPENSE_BODY = b'{"lines":[{"line_no":1,"quantity":1}]}'


HUNG_AFTER = 30.0  # seconds after a window's end before a client still waiting is given up


# --- who asks: tokens and request bodies ----------------------------------------------------------


@dataclass(frozen=True)
class Cast:
    """A few prescribers and pharmacies, many patients; tokens are signed once, up front."""

    prescribers: tuple[str, ...]
    pharmacists: tuple[str, ...]
    patients: tuple[str, ...]
    product: str = people.DOLIPRANE.value


def make_cast(prescribers: int = 8, pharmacies: int = 16, patients: int = 500) -> Cast:
    ttl = 12 * 3600
    return Cast(
        prescribers=tuple(
            sign_token(
                SECRET,
                role="prescriber",
                subject=f"bench-prescriber-{i}",
                ttl_seconds=ttl,
                rpps=people.prescriber(i).value,
            )
            for i in range(prescribers)
        ),
        pharmacists=tuple(
            sign_token(
                SECRET,
                role="pharmacist",
                subject=f"bench-pharmacist-{i}",
                ttl_seconds=ttl,
                rpps=people.pharmacist(i).value,
                finess=people.pharmacy(i).value,
            )
            for i in range(pharmacies)
        ),
        patients=tuple(people.patient(i).value for i in range(patients)),
    )


def prescription_body(cast: Cast, rng: random.Random, lines: str, index: int) -> bytes:
    """A standard paracetamol line, or a secure morphine line for a patient of its own (two
    narcotic prescriptions of one patient would refuse each other: no overlap)."""
    if lines == "narcotic":
        product = {"system": "CIP13", "code": MORPHINE, "label": "Skenan LP 10 mg, 14 gélules"}
        line = {"product": product, "quantity": PRESCRIBED, "dosage": "1 gélule matin et soir"}
        line |= {"duration_days": 28, "narcotic": True}
        patient, kind = people.patient(NARCOTIC_PATIENTS + index).value, "secure"
    else:
        product = {"system": "CIP13", "code": cast.product, "label": "Paracétamol 1 g, 8 cp"}
        line = {"product": product, "quantity": PRESCRIBED, "dosage": "1 comprimé 3 fois par jour"}
        line |= {"duration_days": 8}
        patient, kind = rng.choice(cast.patients), "standard"
    body = {"patient": {"ins": patient}, "kind": kind, "execution_view_consent": True}
    return msgspec.json.encode(body | {"lines": [line]})


class Issued(msgspec.Struct):
    prescription_id: str


class ProblemCode(msgspec.Struct):
    code: str = "?"


# --- HTTP clients ---------------------------------------------------------------------------------


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time, parsed with httptools.

    A closed-loop client needs nothing more, and this costs a fraction of httpx's CPU per
    request: on 2 cores, every cycle the load generator spends is taken from the server.
    """

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(error)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        body, self._body = b"".join(self._body), []
        if waiter is not None and not waiter.done():
            waiter.set_result((self._parser.get_status_code(), body))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(exc or ConnectionResetError("the server closed the connection"))

    def _fail(self, error: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self._transport is None:
            raise ConnectionResetError("not connected")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class Session(Protocol):
    async def post(self, path: str, token: str, body: bytes) -> tuple[int, bytes]: ...

    async def get(self, path: str, token: str) -> tuple[int, bytes]: ...

    async def aclose(self) -> None: ...


class RawSession:
    """POSTs over one HttpConnection; reconnects after the server closed it."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._conn: HttpConnection | None = None

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        _, self._conn = await loop.create_connection(HttpConnection, self._host, self._port)

    async def post(self, path: str, token: str, body: bytes) -> tuple[int, bytes]:
        if self._conn is None or not self._conn.is_open:
            await self.connect()
        assert self._conn is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return await self._conn.exchange(head.encode() + body)

    async def get(self, path: str, token: str) -> tuple[int, bytes]:
        if self._conn is None or not self._conn.is_open:
            await self.connect()
        assert self._conn is not None
        head = (
            f"GET {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        )
        return await self._conn.exchange(head.encode())

    async def aclose(self) -> None:
        if self._conn is not None:
            self._conn.close()


class HttpxSession:
    """The same with httpx.AsyncClient (HTTP/1.1 keep-alive), to compare load generators."""

    def __init__(self, host: str, port: int) -> None:
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        self._client = httpx.AsyncClient(
            base_url=f"http://{host}:{port}", limits=limits, timeout=60.0
        )

    async def connect(self) -> None:
        await self._client.get("/healthz")

    async def post(self, path: str, token: str, body: bytes) -> tuple[int, bytes]:
        headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        response = await self._client.post(path, content=body, headers=headers)
        return response.status_code, response.content

    async def get(self, path: str, token: str) -> tuple[int, bytes]:
        response = await self._client.get(path, headers={"authorization": f"Bearer {token}"})
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self._client.aclose()


async def open_sessions(kind: str, port: int, count: int) -> list[Session]:
    sessions: list[Session] = []
    for _ in range(count):
        session = RawSession(HOST, port) if kind == "raw" else HttpxSession(HOST, port)
        await session.connect()
        sessions.append(session)
    return sessions


async def close_all(sessions: Iterable[Session]) -> None:
    for session in sessions:
        await session.aclose()


def error_label(status: int, body: bytes) -> str:
    try:
        return f"{status} {msgspec.json.decode(body, type=ProblemCode).code}"
    except msgspec.DecodeError:
        return str(status)


# --- closed loops ---------------------------------------------------------------------------------

C = TypeVar("C")
Command = Callable[[C], Awaitable[str | None]]  # None when it succeeded, else an error label


@dataclass(frozen=True)
class Window:
    """The measured interval (perf_counter times); clients start `warmup` seconds before it."""

    start: float
    end: float

    @classmethod
    def after(cls, warmup: float, seconds: float) -> Window:
        now = time.perf_counter()
        return cls(now + warmup, now + warmup + seconds)

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)

    def record(self, window: Window, started: float, done: float, error: str | None) -> None:
        if not window.start <= done <= window.end:
            return
        if error is None:
            self.latencies.append(done - started)
        else:
            self.errors[error] += 1


async def closed_loop(client: C, command: Command[C], window: Window, tally: Tally) -> None:
    """One client: the next request leaves as soon as the previous answer is in."""
    while (started := time.perf_counter()) < window.end:
        try:
            error = await command(client)
        except (OSError, asyncpg.PostgresError, httpx.HTTPError) as exc:
            error = type(exc).__name__
            await asyncio.sleep(0.01)
        tally.record(window, started, time.perf_counter(), error)


async def run_loops(clients: Sequence[C], command: Command[C], window: Window) -> Tally:
    """All clients until the window ends; one still waiting for an answer 30 s later counts
    as an error (a hung server must not hang the benchmark)."""
    tally = Tally()
    loops = [asyncio.create_task(closed_loop(c, command, window, tally)) for c in clients]
    done, hung = await asyncio.wait(loops, timeout=window.end - time.perf_counter() + HUNG_AFTER)
    for loop in hung:
        loop.cancel()
    if hung:
        tally.errors[f"no answer {HUNG_AFTER:g} s after the end"] += len(hung)
    for loop in done:
        loop.result()  # re-raise what the loop did not expect
    return tally


async def open_loop(
    sessions: Sequence[C], command: Command[C], window: Window, rate: float
) -> Tally:
    """Requests leave at a fixed rate whatever the answers do (wrk2-style, no coordinated
    omission): each one's latency runs from the moment it was *scheduled* to leave, so a
    stalled server is charged for the requests that queue behind the stall. A request waits
    for a free connection (of `sessions`) as it would for a socket; that wait counts too."""
    tally, idle = Tally(), asyncio.Queue[C]()
    for session in sessions:
        idle.put_nowait(session)

    async def one(scheduled: float) -> None:
        session = await idle.get()
        try:
            error = await command(session)
        except (OSError, httpx.HTTPError) as exc:
            error = type(exc).__name__
        finally:
            idle.put_nowait(session)
        tally.record(window, scheduled, time.perf_counter(), error)

    first, sent, flying = time.perf_counter(), 0, set[asyncio.Task[None]]()
    while (scheduled := first + sent / rate) < window.end:
        await sleep_until(scheduled)
        while first + sent / rate <= time.perf_counter() and first + sent / rate < window.end:
            task = asyncio.create_task(one(first + sent / rate))
            flying.add(task)
            task.add_done_callback(flying.discard)
            sent += 1
    if flying:
        _, hung = await asyncio.wait(flying, timeout=HUNG_AFTER)
        for task in hung:
            task.cancel()
        if hung:
            tally.errors[f"no answer {HUNG_AFTER:g} s after the end"] += len(hung)
    return tally


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.perf_counter()))


@dataclass(frozen=True)
class Observation:
    cores: dict[str, float]
    sessions: dict[str, float]


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    target: str  # "API", "API read", "SQL ordo_append", ...
    backend: str
    workers: int | None
    clients: int
    window: Window
    tally: Tally
    observation: Observation

    @property
    def ok(self) -> int:
        return len(self.tally.latencies)

    @property
    def rate(self) -> float:
        return self.ok / self.window.seconds

    @property
    def is_api(self) -> bool:
        return self.target.startswith("API")

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(self.tally.latencies)
        if not ordered:
            return math.nan
        return 1000 * ordered[min(len(ordered) - 1, max(0, math.ceil(quantile * len(ordered)) - 1))]


def median_rounds(runs: Sequence[Run]) -> list[Run]:
    """One run for each target, backend, workers and clients: the median by rate of its rounds
    (the lower of the two middle ones for an even count), in the order first measured."""
    rounds: dict[tuple[str, str, int | None, int], list[Run]] = {}
    for run in runs:
        rounds.setdefault((run.target, run.backend, run.workers, run.clients), []).append(run)
    return [sorted(same, key=lambda r: r.rate)[(len(same) - 1) // 2] for same in rounds.values()]
