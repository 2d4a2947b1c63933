"""A busy day's log (`tools.busy_day`) appended to a scratch schema, the scratch schemas and
Kafka topics of a run, and the settings of the servers and workers it starts."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from kafka import KafkaAdminClient

from adapters.config import Settings
from adapters.librarylog import open_library_log
from tools import busy_day, harness
from tools.bench.progress import say
from tools.bench_readside.report import Row
from tools.cast import SECRET

TABLES = ("ordo_view_prescriptions", "ordo_view_inbox", "ordo_view_dispensings")


# --- a busy day's log (tools.busy_day) -----------------------------------------------------------


@dataclass
class Built:
    prescriptions: int
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def appending(self) -> Row:
        """The table's row for appending this log."""
        return Row(
            "append the log (LibraryLog.append, 3,500 events each)",
            "postgres",
            f"{self.events:,} events",
            self.seconds,
            f"{self.rate:,.0f} events/s",
        )


def build_log(database_url: str | None, data_dir: Path, events: int) -> Built:
    """Append about `events` events (whole prescriptions, 1,000 per append); `seconds` is the
    time spent in LibraryLog.append, not in deciding the events."""
    log = open_library_log(database_url, data_dir, 2)
    now = busy_day.moment()
    prescriptions = round(events / 3.5)
    started = time.perf_counter()

    def progress(_: int, appended: int) -> None:
        say(f"  appended {appended:,} events ({appended / (time.perf_counter() - started):,.0f}/s)")

    try:
        appended, seconds = busy_day.append_prescriptions(
            log, prescriptions, lambda n: busy_day.sent_and_dispensed(n, now), progress
        )
    finally:
        log.close()
    return Built(prescriptions, appended, seconds)


# --- scratch schemas and topics ------------------------------------------------------------------


@dataclass
class Scratch:
    url: str
    schemas: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    bootstrap: str | None = None

    def schema(self, label: str) -> str:
        name = f"bench_rs_{label}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        self.schemas.append(name)
        return name

    def drop_schema(self, name: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        if name in self.schemas:
            self.schemas.remove(name)

    def topic(self, label: str) -> str:
        name = f"ordo.bench-readside.{label}.{uuid.uuid4().hex[:6]}"
        self.topics += [name, f"{name}.dead-letter"]
        return name

    def cleanup(self) -> None:
        for name in list(self.schemas):
            with contextlib.suppress(Exception):
                self.drop_schema(name)
        if self.topics and self.bootstrap:
            admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="bench-admin")
            try:
                existing = set(admin.list_topics())
                mine = [t for t in self.topics if t in existing]
                if mine:
                    admin.delete_topics(mine)
            except Exception as error:  # report, do not fail the run
                say(f"could not delete topics {self.topics}: {error}")
            finally:
                admin.close()


def settings_for(database_url: str | None, data_dir: Path, **extra: str) -> Settings:
    env = {"ORDO_DATA_DIR": str(data_dir), "ORDO_AUTH_SECRET": SECRET, **extra}
    if database_url:
        env["ORDO_DATABASE_URL"] = database_url
    return Settings.from_env(env)


def ordo_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    return harness.without_ordo_settings() | {
        "ORDO_DATABASE_URL": database_url,
        "ORDO_DATA_DIR": str(data_dir),
        "ORDO_AUTH_SECRET": SECRET,
        **extra,
    }
