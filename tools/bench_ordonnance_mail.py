# scripts/bench_ordonnance_mail: the ordonnance sent through MSSanté, delivered to a local SMTP
# server (not a test).
#
#   scripts/bench_ordonnance_mail [--backlog 400]
#
# On the embedded default (SQLite, a scratch ORDO_DATA_DIR) with aiosmtpd's Sink on a free local
# port, in a process of its own: `--backlog` sendings already recorded in the log (half
# send-to-patient, half a prescriber's transmission to a BAL ORG), then one mailer delivers them
# all, each PDF drawn at delivery from the log. Prints e-mails per second, the mailer's CPU per
# e-mail and the size of one e-mail.

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import structlog
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent

from adapters.bootstrap import mailer_for, renderers_for  # noqa: E402
from adapters.config import Settings  # noqa: E402
from adapters.http.schemas import IssueBody  # noqa: E402
from adapters.librarylog import LibraryLog, open_library_log  # noqa: E402
from adapters.mailer.compose import compose  # noqa: E402
from adapters.mailer.run import mails_in  # noqa: E402
from adapters.messaging.directory import MssanteDirectory  # noqa: E402
from adapters.messaging.service import ConversationService  # noqa: E402
from adapters.service import PrescriptionService  # noqa: E402
from adapters.store.embedded import EmbeddedEventStore  # noqa: E402
from domain.actors import Actor  # noqa: E402
from domain.identifiers import Finess  # noqa: E402
from tools.cast import SECRET, People  # noqa: E402
from tools.harness import free_port, wait_listening  # noqa: E402


def relay_process(port: int) -> subprocess.Popen[bytes]:
    """aiosmtpd's Sink (accepts and drops) in its own process: the CPU measured is the mailer's."""
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"]
    process = subprocess.Popen([*command, "-c", "aiosmtpd.handlers.Sink"])
    wait_listening(port, process)
    return process


async def record_sendings(data_dir: Path, log: LibraryLog, people: People, count: int) -> None:
    directory = data_dir / "mssante.csv"
    directory.write_text(f"{people.pharmacy},pharmacie@pharmacie.mssante.fr\n")
    store = EmbeddedEventStore(log)
    prescriptions = PrescriptionService(store)
    sending = ConversationService(
        store, MssanteDirectory(directory), "ne-pas-repondre@ordo.mssante.fr"
    )
    prescriber = Actor(role="prescriber", subject="d", rpps=people.prescriber)
    body = msgspec.convert(people.prescription_body(2), IssueBody)
    for n in range(count):
        number = (await prescriptions.issue(prescriber, body.command)).prescription_id
        if n % 2:
            await sending.transmit(prescriber, number, Finess(people.pharmacy), "Sortie ce soir")
        else:
            await sending.send_to_patient(prescriber, number, "Sans papier")


def one_email_size(log: LibraryLog) -> int:
    for notification in log.notifications(0, 1000):
        event = log.mapper.decode(notification.topic, notification.state)
        for mail in mails_in(event):
            return len(compose(mail, event.at, renderers_for(log)).as_bytes())
    return 0


async def throughput(backlog: int) -> tuple[int, float, float, int]:
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        port = free_port()
        relay = relay_process(port)
        log = open_library_log(None, data_dir)
        await record_sendings(data_dir, log, People(), backlog)
        settings = Settings.from_env(
            {
                "ORDO_DATA_DIR": str(data_dir),
                "ORDO_AUTH_SECRET": SECRET,
                "ORDO_SMTP_URL": f"smtp://127.0.0.1:{port}",
            }
        )
        started, cpu = time.perf_counter(), time.process_time()
        async with mailer_for(settings, log) as mailer:
            await mailer.store.create()
            while await mailer.step():
                pass
            delivered = (await mailer.store.counts())["delivered"]
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        size = one_email_size(log)
        relay.terminate()
        relay.wait(10)
        log.close()
        return delivered, elapsed, cpu, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backlog", type=int, default=400)
    arguments = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    delivered, elapsed, cpu, size = asyncio.run(throughput(arguments.backlog))
    table = Table(title="ordonnance e-mails (PDF drawn at delivery) to a local SMTP server")
    for name in ("delivered", "seconds", "e-mails/s", "mailer CPU per e-mail", "one e-mail"):
        table.add_column(name, justify="right")
    table.add_row(
        f"{delivered}/{arguments.backlog}",
        f"{elapsed:.2f}",
        f"{delivered / elapsed:.0f}",
        f"{cpu / max(delivered, 1) * 1000:.2f} ms",
        f"{size / 1024:.1f} KiB",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
