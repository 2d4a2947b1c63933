"""The read side on a real PostgreSQL, with real `ordo serve` and `ordo project` processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from conftest import SECRET, People
from servers import REPO, ordo_server

from adapters.eventstore import open_log
from adapters.readmodels.postgres import asyncpg_target
from domain.commands import Dispense, DispenseLine, Moment, dispense, transmit
from domain.events import Event, PrescribedLine, PrescriptionIssued, Product
from domain.identifiers import Cip13, Finess, Ins, PrescriptionNumber, Rpps
from domain.prescription import Prescription, fold

pytestmark = pytest.mark.postgres
TABLES = ("ordo_view_prescriptions", "ordo_view_inbox", "ordo_view_dispensings")


def a_busy_day(prescriptions: int) -> list[Event]:
    """Prescriptions issued, sent to a pharmacy and dispensed in one or two visits."""
    now = Moment(at=datetime.now(UTC), today=date.today())
    events: list[Event] = []
    for n in range(prescriptions):
        history: list[Event] = [_issued(n, now)]
        history.append(transmit(_state(history), PHARMACY, "", now))
        for visit, quantity in enumerate((1 + n % 2, 1)[: 1 + n % 2]):
            request = Dispense(
                pharmacy=PHARMACY,
                pharmacist=PHARMACIST,
                lines=(DispenseLine(line_no=1, quantity=quantity),),
            )
            history.append(dispense(_state(history), request, f"d{n}-{visit}", now))
        events += history
    return events


PHARMACY, PHARMACIST = Finess.from_body("75071218"), Rpps.from_body("2000123456")
PARACETAMOL = Product(system="CIP13", code=Cip13.from_body("340093000000").value, label="Para")


def _issued(n: int, now: Moment) -> PrescriptionIssued:
    line = PrescribedLine(
        line_no=1, product=PARACETAMOL, quantity=3, dosage="x", duration_days=8, narcotic=False
    )
    return PrescriptionIssued(
        prescription_id=PrescriptionNumber.generate().value,
        version=1,
        at=now.at,
        prescriber_rpps=Rpps.from_body(f"10{n % 50:08d}").value,
        patient_ins=Ins.from_body(f"1840175{n % 1000:06d}").value,
        issued_on=now.today,
        kind="standard",
        execution_view_consent=n % 5 != 0,
        lines=(line,),
    )


def _state(history: list[Event]) -> Prescription:
    state = fold(history)
    assert state is not None
    return state


def append_all(database_url: str, tmp_path: Path, events: list[Event]) -> None:
    log = open_log(database_url, tmp_path)
    try:
        for start in range(0, len(events), 1000):
            log.append(events[start : start + 1000])
    finally:
        log.close()


async def dump(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    dsn, schema = asyncpg_target(database_url)
    conn = await asyncpg.connect(dsn)
    try:
        return {
            table: [
                tuple(row)
                for row in await conn.fetch(f'SELECT * FROM "{schema}".{table} ORDER BY 1, 2, 3')
            ]
            for table in TABLES
        }
    finally:
        await conn.close()


async def position(database_url: str) -> int:
    dsn, schema = asyncpg_target(database_url)
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval(
            "SELECT to_regclass($1)", f'"{schema}".ordo_projection_positions'
        )
        value = (
            await conn.fetchval(f'SELECT min(position) FROM "{schema}".ordo_projection_positions')
            if exists
            else 0
        )
        return int(value or 0)
    finally:
        await conn.close()


@contextmanager
def projector(database_url: str, tmp_path: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "ORDO_DATABASE_URL": database_url,
        "ORDO_DATA_DIR": str(tmp_path),
        "ORDO_AUTH_SECRET": SECRET,
    }
    with (tmp_path / f"{name}.log").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "project"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)


def wait_for(check: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def rebuild(database_url: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ORDO_DATABASE_URL": database_url,
        "ORDO_DATA_DIR": str(tmp_path),
        "ORDO_AUTH_SECRET": SECRET,
    }
    subprocess.run(
        [sys.executable, "-m", "adapters.cli", "projections", "rebuild"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )


def test_a_list_reflects_a_dispensing_within_a_second(
    postgres_url: str, tmp_path: Path, people: People
) -> None:
    with ordo_server(postgres_url, tmp_path) as (base_url, _):
        created = httpx.post(
            f"{base_url}/v1/prescriptions",
            json=people.prescription_body(3),
            headers=people.as_prescriber(),
        )
        number = created.json()["prescription_id"]
        dispensed = httpx.post(
            f"{base_url}/v1/prescriptions/{number}/dispensations",
            json={"lines": [{"line_no": 1, "quantity": 2}]},
            headers=people.as_pharmacist(),
        )
        assert dispensed.status_code == 201
        acknowledged = time.monotonic()

        def listed() -> bool:
            page = httpx.get(
                f"{base_url}/v1/prescribers/me/prescriptions", headers=people.as_prescriber()
            ).json()
            return bool(page["items"]) and page["items"][0]["lines"][0]["dispensed"] == 2

        wait_for(listed, seconds=5)
        assert time.monotonic() - acknowledged < 1.0


def test_a_projector_killed_mid_catch_up_resumes_to_the_same_views_as_a_rebuild(
    postgres_url: str, tmp_path: Path
) -> None:
    events = a_busy_day(4000)
    append_all(postgres_url, tmp_path, events)
    head = len(events)

    with projector(postgres_url, tmp_path, "first") as first:
        wait_for(lambda: asyncio.run(position(postgres_url)) > 0)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    stopped_at = asyncio.run(position(postgres_url))
    assert 0 < stopped_at < head, "the kill must land in the middle of the catch-up"

    with projector(postgres_url, tmp_path, "second"):
        wait_for(lambda: asyncio.run(position(postgres_url)) == head)
    incremental = asyncio.run(dump(postgres_url))
    rebuild(postgres_url, tmp_path)
    rebuilt = asyncio.run(dump(postgres_url))

    assert incremental == rebuilt
    assert len(incremental["ordo_view_prescriptions"]) == 4000
    assert len(incremental["ordo_view_dispensings"]) == sum(
        e.__class__.__name__ == "DispensationRecorded" for e in events
    )


def test_two_projectors_never_both_apply_and_the_second_takes_over(
    postgres_url: str, tmp_path: Path
) -> None:
    append_all(postgres_url, tmp_path, a_busy_day(200))

    with projector(postgres_url, tmp_path, "a") as a, projector(postgres_url, tmp_path, "b") as b:
        wait_for(
            lambda: "leading" in (tmp_path / "a.log").read_text() + (tmp_path / "b.log").read_text()
        )
        time.sleep(
            1.5
        )  # the standby polls the lock every second: give it the chance to (wrongly) lead
        leaders = [
            p
            for p, name in ((a, "a"), (b, "b"))
            if "leading" in (tmp_path / f"{name}.log").read_text()
        ]
        assert len(leaders) == 1
        leader = leaders[0]
        standby_log = tmp_path / ("b.log" if leader is a else "a.log")

        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=10)
        more = a_busy_day(50)
        append_all(postgres_url, tmp_path, more)
        wait_for(lambda: "leading" in standby_log.read_text(), seconds=10)
        head = asyncio.run(_head(postgres_url))
        wait_for(lambda: asyncio.run(position(postgres_url)) == head, seconds=10)

    assert len(asyncio.run(dump(postgres_url))["ordo_view_prescriptions"]) == 250


async def _head(database_url: str) -> int:
    dsn, schema = asyncpg_target(database_url)
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f'SELECT max(notification_id) FROM "{schema}".ordo_events'))
    finally:
        await conn.close()
