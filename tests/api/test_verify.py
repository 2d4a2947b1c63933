"""`ordo verify` on SQLite and PostgreSQL: the log's hash chain and the read models.

Given a few prescriptions issued and dispensed through the API, an untouched log verifies; one
byte of an event's payload changed, a row deleted, or two rows swapped, and the verification
fails naming the first position whose hash does not follow; a read model's row lost, and it
names the read model.
"""

from __future__ import annotations

import asyncio
import io
import sqlite3
from typing import Any

import psycopg
import pytest
from rich.console import Console

from adapters.bootstrap import read_models_for
from adapters.chain import GENESIS, chained
from adapters.cli import main
from adapters.config import Settings
from adapters.postgres import asyncpg_target
from adapters.verify import verify
from tests.api.previous_release import query
from tests.api.test_prescriptions_api import dispense, issue
from tests.conftest import Client
from tools.cast import People


def verified(settings: Settings) -> tuple[bool, str]:
    out = io.StringIO()
    holds = asyncio.run(verify(settings, Console(file=out, width=200, soft_wrap=True)))
    return holds, out.getvalue()


def position_column(settings: Settings) -> str:
    return "rowid" if settings.database_url is None else "notification_id"


def log_positions(settings: Settings) -> list[int]:
    column = position_column(settings)
    return [row[0] for row in query(settings, f"SELECT {column} FROM ordo_events ORDER BY 1")]


def execute(settings: Settings, sql: str, *params: Any, file: str = "ordo.sqlite3") -> None:
    """One statement with parameters (%s on PostgreSQL, ? on SQLite, in `file`)."""
    if settings.database_url is None:
        with sqlite3.connect(settings.data_dir / file) as conn:
            conn.execute(sql.replace("%s", "?"), params)
        return
    dsn, schema = asyncpg_target(settings.database_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute(sql, params)


def issue_and_dispense(client: Client, people: People, settings: Settings) -> list[int]:
    for _ in range(3):
        number = issue(client, people, 2, 1)["prescription_id"]
        assert dispense(client, people, number, (1, 1)).status_code == 201
    return log_positions(settings)


def test_an_untouched_log_verifies_and_its_hashes_follow_each_other(
    client: Client, people: People, settings: Settings
) -> None:
    issue_and_dispense(client, people, settings)
    column = position_column(settings)
    rows = query(
        settings,
        f"SELECT originator_id, originator_version, topic, state, hash FROM ordo_events "
        f"ORDER BY {column}",
    )

    holds, said = verified(settings)

    assert holds, said
    assert "the log's chain holds: 6 events" in said
    assert "every read model equals a rebuild" in said
    previous = GENESIS
    for stream, version, topic, state, stored in rows:
        previous = chained(previous, stream, version, topic, bytes(state))
        assert bytes(stored) == previous


def test_one_byte_changed_in_an_event_fails_at_its_position(
    client: Client, people: People, settings: Settings
) -> None:
    log = issue_and_dispense(client, people, settings)
    column = position_column(settings)
    [(state,)] = query(settings, f"SELECT state FROM ordo_events WHERE {column} = {log[4]}")
    changed = bytearray(state)
    changed[20] ^= 0x01
    execute(
        settings, f"UPDATE ordo_events SET state = %s WHERE {column} = %s", bytes(changed), log[4]
    )

    holds, said = verified(settings)

    assert not holds
    assert f"the log's chain breaks at position {log[4]}" in said


def test_a_row_deleted_fails_at_the_position_after_it(
    client: Client, people: People, settings: Settings
) -> None:
    log = issue_and_dispense(client, people, settings)
    execute(settings, f"DELETE FROM ordo_events WHERE {position_column(settings)} = %s", log[3])

    holds, said = verified(settings)

    assert not holds
    assert f"the log's chain breaks at position {log[4]}" in said


def test_two_rows_swapped_fail_at_the_first_of_them(
    client: Client, people: People, settings: Settings
) -> None:
    log = issue_and_dispense(client, people, settings)
    column = position_column(settings)
    for old, new in ((log[2], -1), (log[5], log[2]), (-1, log[5])):
        execute(settings, f"UPDATE ordo_events SET {column} = %s WHERE {column} = %s", new, old)

    holds, said = verified(settings)

    assert not holds
    assert f"the log's chain breaks at position {log[2]}" in said


def verified_once_views_changed(
    client: Client, people: People, settings: Settings, statement: str
) -> tuple[bool, str]:
    """`ordo verify` after a few prescriptions, once `statement` changed the live views."""
    issue_and_dispense(client, people, settings)
    asyncio.run(caught_up(settings))
    execute(settings, statement, file="views.sqlite3")
    return verified(settings)


def test_a_read_model_row_lost_names_the_read_model(
    client: Client, people: People, settings: Settings
) -> None:
    holds, said = verified_once_views_changed(
        client,
        people,
        settings,
        "DELETE FROM ordo_view_prescriptions WHERE prescription_id = "
        "(SELECT min(prescription_id) FROM ordo_view_prescriptions)",
    )

    assert not holds
    assert "read model prescriptions" in said
    assert "is in a rebuild but not in the live table" in said


def test_a_read_model_value_changed_names_the_read_model(
    client: Client, people: People, settings: Settings
) -> None:
    holds, said = verified_once_views_changed(
        client,
        people,
        settings,
        "UPDATE ordo_view_dispensings SET quantity = 9 WHERE prescription_id = "
        "(SELECT min(prescription_id) FROM ordo_view_dispensings)",
    )

    assert not holds
    assert "read model dispensings" in said
    assert ", 9, " in said  # the live row as changed: a live row is named before a rebuilt one


def test_a_row_added_to_a_read_model_is_in_the_live_table_but_not_in_a_rebuild(
    client: Client, people: People, settings: Settings
) -> None:
    columns = (
        "line_no, patient_ins, product_code, quantity, narcotic, duration_days, dispensed_at, "
        "finess"
    )
    holds, said = verified_once_views_changed(
        client,
        people,
        settings,
        f"INSERT INTO ordo_view_dispensings (prescription_id, dispensation_id, {columns}) "
        f"SELECT prescription_id, 'forged', {columns} FROM ordo_view_dispensings LIMIT 1",
    )

    assert not holds
    assert "read model dispensings: the row (" in said and "'forged'" in said
    assert "is in the live table but not in a rebuild" in said


async def caught_up(settings: Settings) -> None:
    async with read_models_for(settings) as read_models:
        await read_models.caught_up(await read_models.source.head(), patience=5.0)


def test_ordo_verify_exits_non_zero_naming_the_position(
    client: Client,
    people: People,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = issue_and_dispense(client, people, settings)
    monkeypatch.setenv("ORDO_DATA_DIR", str(settings.data_dir))
    if settings.database_url is not None:
        monkeypatch.setenv("ORDO_DATABASE_URL", settings.database_url)
    assert main(["verify"]) == 0
    execute(settings, f"DELETE FROM ordo_events WHERE {position_column(settings)} = %s", log[0])

    assert main(["verify"]) == 1
    assert f"the log's chain breaks at position {log[1]}" in capsys.readouterr().out
