"""`scripts/bench webhooks`: the webhooks' deliverer against a local receiver (not a test).

    scripts/bench webhooks [--backlog 4000] [--subscriptions 10] [--rate 100] [--seconds 20]
                           [--write BENCHMARKS.md --section webhooks]

On the embedded default (SQLite, a scratch ORDO_DATA_DIR), the receiver in a process of its own
(asyncio, keep-alive, answers 204, records when each `webhook-id` arrived and the event time its
body carries):

1. the receiver's capacity: the same POSTs as bytes on bare asyncio streams (no HTTP client);
2. the baseline, the receiver's raw rate: `--backlog` signed POSTs sent with httpx over
   `--subscriptions` connections side by side (a client each), each request after the one
   before, as the deliverer sends a subscription's deliveries, from this process;
3. the deliverer's rate: as many deliveries queued (transmissions and cancellations to one
   pharmacy with `--subscriptions` subscriptions), then one deliverer (`webhooks_for`, as
   `ordo webhooks` builds it) delivers them all;
4. the lag: transmissions appended at `--rate` per second for `--seconds` while the deliverer
   runs, woken by the appends as in `ordo serve`, to a pharmacy with one subscription: arrival
   at the receiver minus the event's time, p50 / p99 / max.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
from rich.console import Console
from rich.table import Table

from adapters.bootstrap import webhooks_for
from adapters.config import Settings
from adapters.http.schemas import IssueBody
from adapters.librarylog import open_library_log
from adapters.messaging.directory import MssanteDirectory
from adapters.messaging.service import ConversationService
from adapters.readmodels.sqlite import SqliteEventFeed
from adapters.service import PrescriptionService
from adapters.store.embedded import EmbeddedEventStore
from adapters.webhooks.run import Deliverer
from adapters.webhooks.signing import new_secret, signed_headers
from adapters.webhooks.subscriptions import subscribe
from domain.actors import Actor
from domain.identifiers import Finess
from tools import benchmarks_md
from tools.cast import SECRET, People
from tools.harness import free_port, wait_listening

LAG_AIM_SECONDS = 1.0
RATE_AIM = 1000.0


# --- the receiver, in a process of its own (tools/bench/webhook_receiver.py) ----------------


class ReceiverProcess:
    def __init__(self, out: Path) -> None:
        self.port = free_port()
        self.out = out
        command = [sys.executable, "-m", "tools.bench.webhook_receiver", str(self.port), str(out)]
        self.process = subprocess.Popen(command)
        try:
            wait_listening(self.port, self.process)
        except BaseException:
            self.process.kill()
            raise

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> ReceiverProcess:
        return self

    def __exit__(self, *_: object) -> None:
        if self.process.poll() is None:
            self.process.kill()

    def stop(self) -> list[tuple[float, str, str]]:
        """Stops it; each delivery's (arrival, webhook-id, event time)."""
        self.process.terminate()
        self.process.wait(30)
        rows = (line.split(" ") for line in self.out.read_text().splitlines() if line)
        return [(float(row[0]), row[1], row[2] if len(row) > 2 else "") for row in rows]


# --- who appends the events ------------------------------------------------------------------


class World:
    def __init__(self, data_dir: Path, people: People) -> None:
        directory = data_dir / "mssante.csv"
        directory.write_text(f"{people.pharmacy},pharmacie@pharmacie.mssante.fr\n")
        self.wake: list[SqliteEventFeed] = []
        self.log = open_library_log(None, data_dir)
        self.people = people
        store = EmbeddedEventStore(self.log)
        self.prescriptions = PrescriptionService(store)
        self.conversations = ConversationService(
            store,
            MssanteDirectory(directory),
            "ne-pas-repondre@ordo.mssante.fr",
            after_append=self.woken,
        )
        self.prescriber = Actor(role="prescriber", subject="d", rpps=people.prescriber)
        self.patient = Actor(role="patient", subject="p", ins=people.patient)
        self.settings = Settings.from_env(
            {"ORDO_DATA_DIR": str(data_dir), "ORDO_AUTH_SECRET": SECRET}
        )

    def woken(self) -> None:
        for feed in self.wake:
            feed.notify()

    async def issued(self) -> str:
        body = msgspec.convert(self.people.prescription_body(1), IssueBody)
        return (await self.prescriptions.issue(self.prescriber, body.command)).prescription_id

    async def transmitted(self, number: str) -> None:
        pharmacy = Finess(self.people.pharmacy)
        await self.conversations.transmit(self.patient, number, pharmacy, "18 h")

    async def sent_and_cancelled(self) -> None:
        number = await self.issued()
        await self.transmitted(number)
        await self.prescriptions.cancel(self.prescriber, number, "erreur de posologie")


async def subscribed(deliverer: Deliverer, receiver: ReceiverProcess, count: int) -> None:
    await deliverer.store.create()
    for n in range(count):
        await subscribe(
            deliverer.store,
            deliverer.box,
            ("pharmacy", People().pharmacy),
            receiver.url(f"/lgo/{n}"),
            ("transmission", "cancellation"),
            allow_http=True,
        )


# --- the three measures ----------------------------------------------------------------------


async def raw_rate(total: int, connections: int) -> float:
    """Signed POSTs per second from httpx straight to the receiver (the baseline): a client per
    connection, each request after the one before, as `Senders` gives each subscription."""
    secret, body = new_secret(), b'{"type":"transmission","timestamp":"","data":{}}'
    each = total // connections

    async def stream(url: str, n: int) -> None:
        async with httpx.AsyncClient(timeout=10) as client:
            for k in range(each):
                headers = signed_headers(secret, f"raw.{n}.{k}", datetime.now(UTC), body)
                (await client.post(url, content=body, headers=headers)).raise_for_status()

    with (
        tempfile.TemporaryDirectory() as scratch,
        ReceiverProcess(Path(scratch) / "arrivals.txt") as receiver,
    ):
        started = time.perf_counter()
        await asyncio.gather(*(stream(receiver.url(f"/lgo/{n}"), n) for n in range(connections)))
        elapsed = time.perf_counter() - started
        return len(receiver.stop()) / elapsed


async def socket_rate(total: int, connections: int) -> float:
    """The receiver's own capacity: the same POSTs written as bytes on asyncio streams, with no
    HTTP client library, over `connections` connections side by side."""
    body = b'{"type":"transmission","timestamp":"","data":{}}'
    each = total // connections

    async def stream(port: int, n: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for k in range(each):
            head = f"POST /lgo/{n} HTTP/1.1\r\nhost: 127.0.0.1\r\nwebhook-id: raw.{n}.{k}\r\n"
            writer.write(f"{head}content-length: {len(body)}\r\n\r\n".encode() + body)
            await reader.readuntil(b"\r\n\r\n")  # 204: no body
        writer.close()

    with (
        tempfile.TemporaryDirectory() as scratch,
        ReceiverProcess(Path(scratch) / "arrivals.txt") as receiver,
    ):
        started = time.perf_counter()
        await asyncio.gather(*(stream(receiver.port, n) for n in range(connections)))
        elapsed = time.perf_counter() - started
        return len(receiver.stop()) / elapsed


async def deliverer_rate(total: int, subscriptions: int) -> tuple[float, float]:
    """Deliveries per second of one deliverer emptying a backlog; its CPU ms per delivery."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        ReceiverProcess(Path(scratch) / "arrivals.txt") as receiver,
    ):
        world = World(Path(scratch), People())
        async with webhooks_for(world.settings, world.log) as deliverer:
            await subscribed(deliverer, receiver, subscriptions)
            for _ in range(total // (2 * subscriptions)):
                await world.sent_and_cancelled()
            started, cpu = time.perf_counter(), time.process_time()
            while await deliverer.step():
                pass
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        arrived = len({webhook_id for _, webhook_id, _ in receiver.stop()})
    return arrived / elapsed, cpu / max(arrived, 1) * 1000


async def lags(rate: float, seconds: float) -> list[float]:
    """Seconds from each transmission's event time to its arrival at the receiver."""
    with (
        tempfile.TemporaryDirectory() as scratch,
        ReceiverProcess(Path(scratch) / "arrivals.txt") as receiver,
    ):
        world = World(Path(scratch), People())
        numbers = [await world.issued() for _ in range(int(rate * seconds))]
        async with webhooks_for(world.settings, world.log) as deliverer:
            await subscribed(deliverer, receiver, 1)
            assert isinstance(deliverer.source, SqliteEventFeed)
            world.wake.append(deliverer.source)
            stopping = asyncio.Event()
            running = asyncio.create_task(deliverer.run(stopping))
            await asyncio.sleep(1)  # caught up with the issued ones

            def append_at_the_rate() -> None:
                start = time.perf_counter()
                for n, number in enumerate(numbers):
                    time.sleep(max(start + n / rate - time.perf_counter(), 0))
                    asyncio.run(world.transmitted(number))

            await asyncio.to_thread(append_at_the_rate)
            await all_delivered(deliverer, len(numbers))
            stopping.set()
            await running
        arrivals = receiver.stop()
    return sorted(at - datetime.fromisoformat(stamp).timestamp() for at, _, stamp in arrivals)


async def all_delivered(deliverer: Deliverer, count: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while (await deliverer.store.counts())["delivered"] < count and time.monotonic() < deadline:  # noqa: ASYNC110 - the store's rows: nothing to await
        await asyncio.sleep(0.1)


# --- the report ------------------------------------------------------------------------------


def rows(
    args: argparse.Namespace, rates: tuple[float, float, float], cpu: float, lag: list[float]
) -> list[list[str]]:
    """`rates`: the receiver's over bare sockets, through httpx, and the deliverer's."""
    sockets, raw, rate = rates
    p99 = lag[max(int(len(lag) * 0.99) - 1, 0)]
    window = f"{args.rate:.0f} events/s for {args.seconds:.0f} s, {len(lag)} deliveries"
    aim = "meets" if p99 <= LAG_AIM_SECONDS else "misses"
    return [
        ["receiver's rate over bare sockets (no HTTP client)", f"{sockets:,.0f} /s", ""],
        ["receiver's raw rate (httpx → receiver, the baseline)", f"{raw:,.0f} /s", "1.00"],
        [
            f"deliverer's rate ({args.subscriptions} subscriptions, {args.backlog} queued)",
            f"{rate:,.0f} /s",
            f"{rate / raw:.2f}",
        ],
        ["deliverer's CPU per delivery", f"{cpu:.2f} ms", ""],
        [f"lag p50 ({window})", f"{statistics.median(lag) * 1000:.0f} ms", ""],
        [f"lag p99 ({aim} the aim of {LAG_AIM_SECONDS:.0f} s)", f"{p99 * 1000:.0f} ms", ""],
        ["lag max", f"{lag[-1] * 1000:.0f} ms", ""],
    ]


def report(args: argparse.Namespace, argv: Sequence[str], body: list[list[str]]) -> None:
    head = ["measure", "value", "ratio to the baseline"]
    table = Table(title="scripts/bench webhooks (SQLite, the receiver in its own process)")
    for column in head:
        table.add_column(column)
    for row in body:
        table.add_row(*row)
    Console().print(table)
    if args.write:
        command = shlex.join(["scripts/bench", "webhooks", *argv])
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
        text = (
            f"### `{args.section}`: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\n"
            f"Command: `{command}` (tools/bench/webhooks.py says what each row measures)\n\n"
            f"Machine: nproc: {os.cpu_count()}; load average at the end: {load}; "
            f"ordo: commit {commit}.\n\n{benchmarks_md.markdown_table(head, body)}\n"
        )
        benchmarks_md.update_benchmarks(Path(args.write), args.section, text)


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench webhooks")
    parser.add_argument("--backlog", type=int, default=4000, help="deliveries queued")
    parser.add_argument("--subscriptions", type=int, default=10, help="side by side")
    parser.add_argument("--rate", type=float, default=100, help="events per second (lag)")
    parser.add_argument("--seconds", type=float, default=20, help="of the lag run")
    parser.add_argument("--write", help="BENCHMARKS.md: rewrite the block --section")
    parser.add_argument("--section", default="webhooks")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    sockets = asyncio.run(socket_rate(args.backlog, args.subscriptions))
    raw = asyncio.run(raw_rate(args.backlog, args.subscriptions))
    rate, cpu = asyncio.run(deliverer_rate(args.backlog, args.subscriptions))
    lag = asyncio.run(lags(args.rate, args.seconds))
    report(args, argv, rows(args, (sockets, raw, rate), cpu, lag))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
