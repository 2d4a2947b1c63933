"""Webhooks delivered to a real local HTTP receiver that checks every Standard Webhooks
signature: each transmission, cancellation and message once per subscription, in log order; a
receiver refusing for a while; a delivery given up after an hour; a deliverer process SIGKILLed
mid-batch. The receiver down (its port closed) and masking through a real server are in
test_webhooks_outages.py; who is pushed what, as a fold, in
tests/adapters/test_webhook_routing.py."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pytest
from standardwebhooks.webhooks import Webhook

from adapters.http.schemas import IssueBody
from adapters.librarylog import LibraryLog, open_library_log
from adapters.messaging.directory import MssanteDirectory
from adapters.messaging.service import ConversationService
from adapters.readmodels.sqlite import SqliteEventFeed
from adapters.service import PrescriptionService
from adapters.store.embedded import EmbeddedEventStore
from adapters.webhooks.routing import Kind, Owner
from adapters.webhooks.run import MAX_ATTEMPTS, Deliverer, Senders
from adapters.webhooks.signing import SecretBox, webhooks_key
from adapters.webhooks.store import SqliteWebhooks
from adapters.webhooks.subscriptions import UrlRefused, check_url, subscribe
from domain.actors import Actor
from domain.identifiers import Finess
from domain.views import display_number
from tools.cast import SECRET, People


@dataclass
class Receiver:
    """A local HTTP server: verifies each delivery with its path's secret, answers `status`."""

    secrets: dict[str, str] = field(default_factory=dict)
    received: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    status: int = 200
    hold_from: int | None = None  # the delivery received from which the receiver stops answering
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0  # a free one unless given (a receiver started again on its port)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.status == 200:
                    payload = Webhook(receiver.secrets[self.path]).verify(body, dict(self.headers))
                    receiver.received.append((self.path, self.headers["webhook-id"], payload))
                if receiver.hold_from is not None and len(receiver.received) >= receiver.hold_from:
                    receiver.holding.set()
                    receiver.release.wait(30)
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Down: the port closed, so a delivery's connection is refused."""
        self.server.shutdown()
        self.server.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str) -> list[tuple[str, str]]:
        return [
            (str(p["type"]), json.dumps(p["data"], sort_keys=True))
            for at, _, p in self.received
            if at == path
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.release.set()
    server.server.shutdown()


class World:
    def __init__(self, tmp_path: Path, people: People) -> None:
        self.log: LibraryLog = open_library_log(None, tmp_path)
        self.people = people
        store = EmbeddedEventStore(self.log)
        self.prescriptions = PrescriptionService(store)
        directory = tmp_path / "mssante.csv"
        directory.write_text(f"{people.pharmacy},a@pharmacie.mssante.fr\n")
        self.conversations = ConversationService(
            store, MssanteDirectory(directory), "ne-pas-repondre@ordo.mssante.fr"
        )
        self.prescriber = Actor(role="prescriber", subject="d", rpps=people.prescriber)
        self.patient = Actor(role="patient", subject="p", ins=people.patient)
        self.hooks = SqliteWebhooks(tmp_path / "webhooks.sqlite3")
        self.box = SecretBox(webhooks_key(None, tmp_path))

    async def send_and_cancel(self) -> str:
        body = msgspec.convert(self.people.prescription_body(1), IssueBody)
        issued = await self.prescriptions.issue(self.prescriber, body.command)
        pid = issued.prescription_id
        await self.conversations.transmit(self.patient, pid, Finess(self.people.pharmacy), "18 h")
        await self.prescriptions.cancel(self.prescriber, pid, "erreur de posologie")
        return display_number(pid)  # a webhook names it as the API does

    def deliverer(self, clock: list[float]) -> Deliverer:
        feed = SqliteEventFeed(self.log)
        senders = Senders(timeout=5)
        return Deliverer(feed, self.hooks, self.box, senders, clock=lambda: time.time() + clock[0])

    async def subscribe(
        self,
        receiver: Receiver,
        path: str,
        owner: tuple[Owner, str],
        kinds: tuple[Kind, ...] = ("transmission", "cancellation"),
    ) -> None:
        url = receiver.url(path)
        _, secret = await subscribe(self.hooks, self.box, owner, url, kinds, allow_http=True)
        receiver.secrets[path] = secret


async def drain(deliverer: Deliverer, seconds: float = 20) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await deliverer.step()
        counts = await deliverer.store.counts()
        if (
            counts["pending"] == 0
            and await deliverer.store.position() == await deliverer.source.head()
        ):
            return counts
        await asyncio.sleep(0.01)
    return await deliverer.store.counts()


def pushed(receiver: Receiver, path: str) -> list[tuple[str, str]]:
    """(type, prescription) of what `path` received, in order."""
    return [(kind, json.loads(data)["prescription_id"]) for kind, data in receiver.bodies(path)]


def sent_then_cancelled(ids: list[str]) -> list[tuple[str, str]]:
    return [(kind, pid) for pid in ids for kind in ("transmission", "cancellation")]


def test_each_push_arrives_once_per_subscription_signed_and_in_log_order(
    tmp_path: Path, people: People, receiver: Receiver
) -> None:
    world = World(tmp_path, people)

    async def scenario() -> tuple[list[str], dict[str, int]]:
        await world.hooks.create()
        await world.subscribe(receiver, "/pharmacy/1", ("pharmacy", people.pharmacy))
        await world.subscribe(receiver, "/pharmacy/2", ("pharmacy", people.pharmacy))
        await world.subscribe(receiver, "/prescriber", ("prescriber", people.prescriber))
        await world.subscribe(receiver, "/other", ("pharmacy", people.other_pharmacy))
        await world.subscribe(receiver, "/messages", ("pharmacy", people.pharmacy), ("message",))
        ids = [await world.send_and_cancel() for _ in range(5)]
        return ids, await drain(world.deliverer([0.0]))

    ids, counts = asyncio.run(scenario())

    assert counts == {"pending": 0, "delivered": 30, "failed": 0}
    for path in ("/pharmacy/1", "/pharmacy/2"):
        assert pushed(receiver, path) == sent_then_cancelled(ids)
    assert pushed(receiver, "/prescriber") == [("cancellation", pid) for pid in ids]
    assert pushed(receiver, "/messages") == [("message", pid) for pid in ids]
    assert receiver.bodies("/other") == []
    assert len({webhook_id for _, webhook_id, _ in receiver.received}) == 30


def test_a_receiver_refusing_for_a_while_loses_nothing_and_keeps_the_order(
    tmp_path: Path, people: People, receiver: Receiver
) -> None:
    world = World(tmp_path, people)
    clock = [0.0]

    async def scenario() -> tuple[list[str], dict[str, int]]:
        await world.hooks.create()
        await world.subscribe(receiver, "/pharmacy", ("pharmacy", people.pharmacy))
        deliverer = world.deliverer(clock)
        receiver.status = 503
        ids = []
        for _ in range(3):
            ids.append(await world.send_and_cancel())
            await deliverer.step()
        for wait in (1, 2, 4, 8):  # the back-off, run on a clock moved forward
            clock[0] += wait
            await deliverer.step()
        assert receiver.received == []
        receiver.status = 200
        clock[0] += 16
        return ids, await drain(deliverer)

    ids, counts = asyncio.run(scenario())

    assert counts == {"pending": 0, "delivered": 6, "failed": 0}
    assert pushed(receiver, "/pharmacy") == sent_then_cancelled(ids)


def test_a_delivery_refused_for_an_hour_fails_with_its_reason_and_the_next_one_goes(
    tmp_path: Path, people: People, receiver: Receiver
) -> None:
    world = World(tmp_path, people)
    clock = [0.0]

    async def scenario() -> tuple[str, dict[str, int]]:
        await world.hooks.create()
        await world.subscribe(
            receiver, "/pharmacy", ("pharmacy", people.pharmacy), ("transmission",)
        )
        deliverer = world.deliverer(clock)
        receiver.status = 410
        await world.send_and_cancel()
        for _ in range(MAX_ATTEMPTS):
            await deliverer.step()
            clock[0] += 3600
        receiver.status = 200
        second = await world.send_and_cancel()
        return second, await drain(deliverer)

    second, counts = asyncio.run(scenario())

    assert counts == {"pending": 0, "delivered": 1, "failed": 1}
    assert [json.loads(d)["prescription_id"] for _, d in receiver.bodies("/pharmacy")] == [second]


def test_a_webhook_url_is_https_unless_plain_http_is_allowed() -> None:
    assert check_url("https://pharmacie.example/hooks", allow_http=False)
    assert check_url("http://127.0.0.1:8080/hooks", allow_http=True)
    for url in ("http://pharmacie.example/hooks", "https:///hooks", "ftp://x/y"):
        with pytest.raises(UrlRefused):
            check_url(url, allow_http=False)


def test_a_deliverer_killed_mid_batch_loses_nothing_and_repeats_only_under_the_same_id(
    tmp_path: Path, people: People, receiver: Receiver
) -> None:
    world = World(tmp_path, people)

    async def given() -> list[str]:
        await world.hooks.create()
        await world.subscribe(receiver, "/pharmacy", ("pharmacy", people.pharmacy))
        await world.subscribe(receiver, "/prescriber", ("prescriber", people.prescriber))
        return [await world.send_and_cancel() for _ in range(20)]

    ids = asyncio.run(given())
    receiver.hold_from = 15  # each subscription has one delivery in flight when it is killed
    env = {**os.environ, "ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH_SECRET": SECRET}
    first = subprocess.Popen([sys.executable, "-m", "adapters.cli", "webhooks"], env=env)
    try:
        assert receiver.holding.wait(60), "the deliverer never reached the 15th delivery"
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(10) == -signal.SIGKILL  # killed, not finished
    finally:
        first.kill()
    at_the_kill = asyncio.run(world.hooks.counts())
    assert at_the_kill["delivered"] > 0 and at_the_kill["pending"] > 0  # mid-batch
    assert at_the_kill["delivered"] + at_the_kill["pending"] == 60  # the batch all queued
    receiver.hold_from = None
    receiver.release.set()
    second = subprocess.Popen([sys.executable, "-m", "adapters.cli", "webhooks"], env=env)
    try:
        deadline = time.monotonic() + 60
        while len({w for _, w, _ in receiver.received}) < 60 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(15)

    by_id: dict[str, set[str]] = {}
    for path, webhook_id, payload in receiver.received:
        by_id.setdefault(webhook_id, set()).add(f"{path} {json.dumps(payload, sort_keys=True)}")
    assert len(by_id) == 60
    assert len(receiver.received) > 60  # those held when it was killed came again
    assert all(len(bodies) == 1 for bodies in by_id.values())  # a repeat is the same delivery
    first_arrivals = {
        path: [
            (k, json.loads(d)["prescription_id"]) for k, d in dict.fromkeys(receiver.bodies(path))
        ]
        for path in ("/pharmacy", "/prescriber")
    }
    assert first_arrivals["/pharmacy"] == sent_then_cancelled(ids)
    assert first_arrivals["/prescriber"] == [("cancellation", pid) for pid in ids]
