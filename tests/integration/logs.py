"""Build event logs quickly and read the views back, for read-side and Kafka tests."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from adapters.eventstore import open_log
from adapters.readmodels.postgres import asyncpg_target
from domain.commands import (
    Dispense,
    DispenseLine,
    Moment,
    Withdraw,
    dispense,
    transmit,
    withdraw,
)
from domain.events import Event, PrescribedLine, PrescriptionIssued, Product
from domain.identifiers import Cip13, Finess, Ins, PrescriptionNumber, Rpps
from domain.prescription import Prescription, fold
from tests.integration.servers import REPO
from tools.cast import SECRET

TABLES = (
    "ordo_view_prescriptions",
    "ordo_view_inbox",
    "ordo_view_dispensings",
    "ordo_view_conversations",
)


def a_busy_day(prescriptions: int) -> list[Event]:
    """Prescriptions issued, sent to a pharmacy and dispensed in one or two visits; every
    seventh has its last dispensing withdrawn, so that the views agree on what counts."""
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
            history.append(dispense(_state(history), request, f"d{n}-{visit}", now).recorded)
        if n % 7 == 3:
            history.append(_withdrawn(_state(history), now))
        events += history
    return events


def _withdrawn(state: Prescription, now: Moment) -> Event:
    last = state.dispensations[-1].dispensation_id
    command = Withdraw(pharmacy=PHARMACY, pharmacist=PHARMACIST, dispensation_id=last, reason="x")
    decided = withdraw(state, command, now)
    assert decided is not None
    return decided[0]


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


def rebuild(database_url: str, tmp_path: Path) -> None:
    ordo_cli(["projections", "rebuild"], {"ORDO_DATABASE_URL": database_url}, tmp_path)


def ordo_cli(args: list[str], env: dict[str, str], tmp_path: Path) -> str:
    """Run `ordo ARGS…` to completion and return what it printed (wide, so tables stay whole)."""
    done = subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        cwd=REPO,
        env={
            **os.environ,
            "ORDO_DATA_DIR": str(tmp_path),
            "ORDO_AUTH_SECRET": SECRET,
            "COLUMNS": "200",
            **env,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"ordo {' '.join(args)} failed:\n{done.stdout}{done.stderr}"
    return done.stdout


def table_rows(printed: str) -> list[list[str]]:
    """The body rows of the tables `ordo` printed, as lists of cells."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in printed.splitlines()
        if line.lstrip().startswith("│")
    ]


async def scalar(database_url: str, query: str) -> Any:
    """One value, with the database URL's schema first on the search path."""
    dsn, schema = asyncpg_target(database_url)
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()
