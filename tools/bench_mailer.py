# scripts/bench_mailer: the MSSanté outbox delivered to a local SMTP server (not a test).
#
#   scripts/bench_mailer [--backlog 2000] [--rate 100] [--seconds 20]
#
# On the embedded default (SQLite, a scratch ORDO_DATA_DIR) with aiosmtpd on a free local port,
# in a process of its own (it records when it accepted each Message-ID):
# 1. throughput: `--backlog` e-mails already recorded in the log (half transmissions to a BAL
#    ORG with the QR code inline, half answers to the patient), then one mailer delivers them
#    all: e-mails per second accepted by the relay;
# 2. lag: messages posted at `--rate` e-mails per second for `--seconds` while the mailer runs
#    (woken by the appends, as in `ordo serve`); lag = the relay's acceptance minus the
#    message's event time, p50/p99/max.

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgspec
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent

from aiosmtpd.controller import Controller  # noqa: E402

from adapters.bootstrap import mailer_for  # noqa: E402
from adapters.config import Settings  # noqa: E402
from adapters.http.schemas import IssueBody  # noqa: E402
from adapters.librarylog import open_library_log  # noqa: E402
from adapters.messaging.directory import MssanteDirectory  # noqa: E402
from adapters.messaging.service import ConversationService  # noqa: E402
from adapters.readmodels.sqlite import SqliteEventFeed  # noqa: E402
from adapters.service import PrescriptionService  # noqa: E402
from adapters.store.embedded import EmbeddedEventStore  # noqa: E402
from domain.actors import Actor  # noqa: E402
from domain.identifiers import Finess  # noqa: E402
from tools.cast import SECRET, People  # noqa: E402
from tools.harness import free_port, wait_listening  # noqa: E402


class Accepting:
    """The relay's side, in a process of its own: appends `time Message-ID` per e-mail."""

    def __init__(self, out: Path) -> None:
        self.out = out.open("a", buffering=1)

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        head = envelope.content.split(b"\r\n\r\n", 1)[0]
        found = re.search(rb"^Message-ID: *(\S+)", head, re.MULTILINE | re.IGNORECASE)
        self.out.write(f"{time.time()} {found.group(1).decode() if found else '?'}\n")
        return "250 2.0.0 Accepted"


def serve_relay(port: int, out: Path) -> None:
    controller = Controller(Accepting(out), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


class RelayProcess:
    """aiosmtpd in its own process, so that the mailer's numbers are the mailer's."""

    def __init__(self, out: Path) -> None:
        self.port = free_port()
        self.out = out
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--relay", str(self.port), str(out)]
        )
        wait_listening(self.port, self.process)

    def accepted(self) -> dict[str, float]:
        if not self.out.exists():
            return {}
        lines = (line.split(" ", 1) for line in self.out.read_text().splitlines())
        return {mid: float(at) for at, mid in lines}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class World:
    def __init__(self, data_dir: Path, people: People, wake: list) -> None:  # type: ignore[type-arg]
        directory = data_dir / "mssante.csv"
        directory.write_text(f"{people.pharmacy},pharmacie@pharmacie.mssante.fr\n")

        def woken() -> None:
            for wake_up in wake:
                wake_up()

        self.log = open_library_log(None, data_dir)
        self.people = people
        store = EmbeddedEventStore(self.log)
        self.prescriptions = PrescriptionService(store)
        self.service = ConversationService(
            store,
            MssanteDirectory(directory),
            "ne-pas-repondre@ordo.mssante.fr",
            after_append=woken,
        )
        self.patient = Actor(role="patient", subject="p", ins=people.patient)
        self.prescriber = Actor(role="prescriber", subject="d", rpps=people.prescriber)
        self.pharmacist = Actor(
            role="pharmacist", subject="ph", rpps=people.pharmacist, finess=people.pharmacy
        )
        self.posted: dict[str, float] = {}

    def exchange(self) -> None:
        """A transmission and the pharmacy's answer: two e-mails (from the caller's thread)."""
        asyncio.run(self.converse())

    async def converse(self) -> None:
        body = msgspec.convert(self.people.prescription_body(2), IssueBody)
        number = (await self.prescriptions.issue(self.prescriber, body.command)).prescription_id
        pharmacy = Finess(self.people.pharmacy)
        sent = await self.service.transmit(self.patient, number, pharmacy, "18 h ?")
        assert sent.conversation_id is not None
        await self.service.post(self.pharmacist, sent.conversation_id, "Prête à 18 h", "")


def settings_for(data_dir: Path, relay: RelayProcess) -> Settings:
    return Settings.from_env(
        {"ORDO_DATA_DIR": str(data_dir), "ORDO_AUTH_SECRET": SECRET, "ORDO_SMTP_URL": relay.url}
    )


async def throughput(backlog: int) -> tuple[int, float, float]:
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        relay = RelayProcess(data_dir / "accepted.txt")
        world = World(data_dir, People(), [])
        for _ in range(backlog // 2):
            await world.converse()
        started, cpu = time.perf_counter(), time.process_time()
        async with mailer_for(settings_for(data_dir, relay), world.log) as mailer:
            await mailer.store.create()
            while await mailer.step():
                pass
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        relay.stop()
        return len(relay.accepted()), elapsed, cpu


async def lag(rate: float, seconds: float) -> list[float]:
    wake: list = []  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        relay = RelayProcess(data_dir / "accepted.txt")
        world = World(data_dir, People(), wake)
        stopping = asyncio.Event()
        async with mailer_for(settings_for(data_dir, relay), world.log) as mailer:
            assert isinstance(mailer.source, SqliteEventFeed)
            wake.append(mailer.source.notify)
            running = asyncio.create_task(mailer.run(stopping))
            await asyncio.sleep(0.5)

            def post() -> None:  # two e-mails per exchange
                interval = 2 / rate
                start = time.perf_counter()
                for n in range(int(rate * seconds / 2)):
                    time.sleep(max(start + n * interval - time.perf_counter(), 0))
                    world.exchange()

            thread = threading.Thread(target=post)
            thread.start()
            await asyncio.to_thread(thread.join)
            expected = int(rate * seconds / 2) * 2
            deadline = time.monotonic() + 30
            while len(relay.accepted()) < expected and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)  # the relay is another process: nothing to await
            stopping.set()
            await running
            written = {}
            for n in world.log.notifications(0, 1_000_000):
                if n.topic.startswith("MessagePosted."):
                    event = world.log.mapper.decode(n.topic, n.state)
                    for mail in event.mails:  # type: ignore[attr-defined]
                        written[mail.message_id] = event.at.timestamp()
        accepted = relay.accepted()
        relay.stop()
    return [accepted[m] - written[m] for m in accepted]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--relay", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay:
        serve_relay(int(args.relay[0]), Path(args.relay[1]))
        return
    console = Console()
    delivered, elapsed, cpu = asyncio.run(throughput(args.backlog))
    lags = sorted(asyncio.run(lag(args.rate, args.seconds)))
    table = Table(title="scripts/bench_mailer (SQLite outbox, aiosmtpd in its own process)")
    for column in ("measure", "value"):
        table.add_column(column)
    table.add_row("backlog delivered", f"{delivered} e-mails in {elapsed:.2f} s")
    table.add_row("throughput", f"{delivered / elapsed:.0f} e-mails/s")
    table.add_row("mailer CPU per e-mail", f"{cpu / delivered * 1000:.2f} ms")
    window = f"{args.rate:.0f} e-mails/s for {args.seconds:.0f} s ({len(lags)} e-mails)"
    table.add_row("lag at", window)
    table.add_row("lag p50", f"{statistics.median(lags) * 1000:.0f} ms")
    table.add_row("lag p99", f"{lags[int(len(lags) * 0.99) - 1] * 1000:.0f} ms")
    table.add_row("lag max", f"{lags[-1] * 1000:.0f} ms")
    console.print(table)


if __name__ == "__main__":
    main()
