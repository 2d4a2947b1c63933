"""The outbox delivered to a real SMTP server (aiosmtpd on a free local port): every e-mail
once, with its addresses and headers; a relay stopped for 10 s; a permanent 550; a mailer
killed mid-batch and started again; and the views equal a fresh rebuild afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import msgspec
from rich.console import Console

from adapters.bootstrap import mailer_for
from adapters.config import Settings
from adapters.http.schemas import IssueBody
from adapters.librarylog import LibraryLog, open_library_log
from adapters.mailer.cli import status
from adapters.mailer.run import FAILED
from adapters.messaging.directory import MssanteDirectory
from adapters.messaging.service import ConversationService
from adapters.service import PrescriptionService
from adapters.store.embedded import EmbeddedEventStore
from domain.actors import Actor
from domain.events import MessagePosted
from domain.identifiers import Finess
from tests.integration.smtp_relay import Relay
from tools.cast import SECRET, People

BAL_ORG = "pharmacie.centrale@pharmacie.mssante.fr"
OTHER_BAL_ORG = "officine.refusee@pharmacie.mssante.fr"
POSTMASTER = "ne-pas-repondre@ordo.mssante.fr"


def settings_with(tmp_path: Path, relay: Relay, people: People) -> Settings:
    directory = tmp_path / "mssante.csv"
    directory.write_text(f"{people.pharmacy},{BAL_ORG}\n{people.other_pharmacy},{OTHER_BAL_ORG}\n")
    env = {
        "ORDO_DATA_DIR": str(tmp_path),
        "ORDO_AUTH_SECRET": SECRET,
        "ORDO_SMTP_URL": relay.url,
        "ORDO_MSSANTE_DIRECTORY": str(directory),
    }
    return Settings.from_env(env)


class Conversations:
    """Patients sending prescriptions and pharmacies answering, straight through the use cases."""

    def __init__(self, settings: Settings, people: People) -> None:
        self.log: LibraryLog = open_library_log(None, settings.data_dir)
        self.people = people
        store = EmbeddedEventStore(self.log)
        self.prescriptions = PrescriptionService(store)
        assert settings.mssante_directory is not None
        self.service = ConversationService(
            store, MssanteDirectory(settings.mssante_directory), POSTMASTER
        )
        self.patient = Actor(role="patient", subject="p", ins=people.patient)
        self.prescriber = Actor(role="prescriber", subject="d", rpps=people.prescriber)

    def pharmacist(self, finess: str) -> Actor:
        return Actor(role="pharmacist", subject="ph", rpps=self.people.pharmacist, finess=finess)

    def exchange(self, finess: str | None = None) -> None:
        """A transmission and the pharmacy's answer: two e-mails."""
        asyncio.run(self._exchange(finess or self.people.pharmacy))

    async def _exchange(self, pharmacy: str) -> None:
        body = msgspec.convert(self.people.prescription_body(2), IssueBody)
        issued = await self.prescriptions.issue(self.prescriber, body.command)
        sent = await self.service.transmit(
            self.patient, issued.prescription_id, Finess(pharmacy), "Je passe à 18 h"
        )
        assert sent.conversation_id is not None
        await self.service.post(self.pharmacist(pharmacy), sent.conversation_id, "Prête à 18 h", "")

    def mails(self) -> dict[str, tuple[str, str]]:
        """Message-ID → (sender, recipient) of every e-mail the log records."""
        found = {}
        for notification in self.log.notifications(0, 100_000):
            if notification.topic.startswith("MessagePosted."):
                event = self.log.mapper.decode(notification.topic, notification.state)
                assert isinstance(event, MessagePosted)
                found.update({m.message_id: (m.sender, m.recipient) for m in event.mails})
        return found


async def deliver_everything(settings: Settings, seconds: float = 30) -> dict[str, int]:
    async with mailer_for(settings) as mailer:
        await mailer.store.create()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await mailer.step()
            counts = await mailer.store.counts()
            if (
                counts["pending"] == 0
                and await mailer.store.position() == await mailer.source.head()
            ):
                return counts
            await asyncio.sleep(0.05)
        return await mailer.store.counts()


def test_every_email_is_received_once_with_its_addresses_and_headers(
    tmp_path: Path, relay: Relay, people: People
) -> None:
    settings = settings_with(tmp_path, relay, people)
    world = Conversations(settings, people)
    for _ in range(10):
        world.exchange()

    counts = asyncio.run(deliver_everything(settings))

    expected = world.mails()
    assert len(expected) == 20
    assert counts == {"pending": 0, "delivered": 20, "failed": 0}
    assert sorted(relay.handler.message_ids()) == sorted(expected)
    for received in relay.handler.received:
        sender, recipient = expected[received.message_id]
        assert (received.sender, received.recipients) == (sender, [recipient])
        assert (received.message["From"], received.message["To"]) == (sender, recipient)
        assert received.message["Date"]
        assert received.message["Subject"].startswith(("Ordonnance", "Prête"))
    patient_box = f"{people.patient}@patient.mssante.fr"
    assert Counter(r.recipients[0] for r in relay.handler.received) == {
        BAL_ORG: 10,
        patient_box: 10,
    }

    # Following the log again (a restart) delivers nothing twice.
    asyncio.run(deliver_everything(settings))
    assert len(relay.handler.received) == 20


def test_a_permanent_550_fails_that_message_with_the_reason_and_the_rest_goes_on(
    tmp_path: Path, relay: Relay, people: People
) -> None:
    relay.handler.refused = {OTHER_BAL_ORG}
    settings = settings_with(tmp_path, relay, people)
    world = Conversations(settings, people)
    world.exchange()
    world.exchange(people.other_pharmacy)
    world.exchange()
    failed_before = FAILED._value.get()

    counts = asyncio.run(deliver_everything(settings))

    assert counts == {"pending": 0, "delivered": 5, "failed": 1}
    assert FAILED._value.get() == failed_before + 1
    assert OTHER_BAL_ORG not in {r.recipients[0] for r in relay.handler.received}
    console = Console(record=True, width=200)
    asyncio.run(status(settings, console))
    shown = console.export_text()
    assert "550" in shown and "Mailbox unavailable" in shown


def test_a_relay_stopped_for_ten_seconds_gets_everything_once_when_it_is_back(
    tmp_path: Path, relay: Relay, people: People
) -> None:
    settings = settings_with(tmp_path, relay, people)
    world = Conversations(settings, people)

    async def scenario() -> None:
        stopping = asyncio.Event()
        async with mailer_for(settings) as mailer:
            running = asyncio.create_task(mailer.run(stopping))
            await asyncio.to_thread(world.exchange)
            relay.stop()
            for _ in range(10):  # messages keep coming while the relay is away
                await asyncio.to_thread(world.exchange)
                await asyncio.sleep(1)
            relay.start()
            deadline = time.monotonic() + 60
            while len(relay.handler.received) < 22 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)  # the relay's thread receives: no event to await
            await asyncio.sleep(0.5)  # and nothing more arrives
            stopping.set()
            await running

    asyncio.run(scenario())

    ids = relay.handler.message_ids()
    assert sorted(ids) == sorted(world.mails())
    assert len(ids) == len(set(ids)) == 22


def test_a_mailer_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, relay: Relay, people: People
) -> None:
    settings = settings_with(tmp_path, relay, people)
    world = Conversations(settings, people)
    for _ in range(50):
        world.exchange()
    # From the 40th e-mail on, the relay holds each DATA unanswered: once every connection of
    # the mailer waits on one, none is between the relay's 250 and its own record of it.
    relay.handler.hold_from = 40
    relay.handler.hold_count = settings.mailer_connections
    env = {
        **os.environ,
        "ORDO_DATA_DIR": str(tmp_path),
        "ORDO_AUTH_SECRET": SECRET,
        "ORDO_SMTP_URL": relay.url,
    }

    first = subprocess.Popen([sys.executable, "-m", "adapters.cli", "mailer"], env=env)
    try:
        assert relay.handler.holding.wait(60), "the mailer never reached the 40th e-mail"
        os.kill(first.pid, signal.SIGKILL)  # mid-batch: 39 delivered, some in flight
        first.wait(10)
    finally:
        first.kill()
    relay.handler.hold_from = None  # the relay answers normally again
    relay.handler.release.set()  # the held ones get 451: their client is gone anyway
    assert len(relay.handler.received) == 39

    second = subprocess.Popen([sys.executable, "-m", "adapters.cli", "mailer"], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(relay.handler.received) < 100 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(15)

    ids = relay.handler.message_ids()
    assert sorted(ids) == sorted(world.mails())
    assert len(ids) == len(set(ids)) == 100
