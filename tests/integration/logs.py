"""Build event logs quickly and read the views back, for read-side and Kafka tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg

from adapters.librarylog import open_library_log
from adapters.postgres import asyncpg_target
from domain.events import Event
from tests.integration.servers import REPO
from tools import busy_day
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
    now = busy_day.moment()
    return [
        event
        for n in range(prescriptions)
        for event in busy_day.sent_and_dispensed(n, now, withdraw_last=n % 7 == 3)
    ]


PHARMACY = busy_day.PHARMACY


def append_all(database_url: str, tmp_path: Path, events: list[Event]) -> None:
    log = open_library_log(database_url, tmp_path)
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
