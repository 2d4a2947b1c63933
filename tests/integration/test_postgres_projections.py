"""The read side on a real PostgreSQL, with real `ordo serve` and `ordo project` processes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from conftest import People
from logs import a_busy_day, append_all, dump, ordo_cli, position, rebuild, table_rows
from servers import (
    dispense_two_of_three,
    free_port,
    listed_as_dispensed,
    ordo_process,
    ordo_server,
    wait_for,
)

from adapters.readmodels.postgres import PostgresLog, asyncpg_target
from projections.folds import VIEW_NAMES

pytestmark = pytest.mark.postgres


def projector(database_url: str, tmp_path: Path, name: str, *args: str) -> Any:
    env = {"ORDO_DATABASE_URL": database_url, "ORDO_DATA_DIR": str(tmp_path)}
    return ordo_process(["project", *args], env, tmp_path / f"{name}.log")


def test_a_list_reflects_a_dispensing_within_a_second(
    postgres_url: str, tmp_path: Path, people: People
) -> None:
    with ordo_server(postgres_url, tmp_path) as (base_url, _):
        dispense_two_of_three(base_url, people)
        acknowledged = time.monotonic()

        wait_for(lambda: listed_as_dispensed(base_url, people), seconds=5)
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
    # A withdrawn dispensing counts nowhere: the patient's dispensing index leaves it out.
    kinds = Counter(type(e).__name__ for e in events)
    assert kinds["DispensationWithdrawn"] > 0
    assert len(incremental["ordo_view_dispensings"]) == (
        kinds["DispensationRecorded"] - kinds["DispensationWithdrawn"]
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


def test_projections_status_and_metrics_show_each_view_behind_then_caught_up(
    postgres_url: str, tmp_path: Path
) -> None:
    events = a_busy_day(300)
    append_all(postgres_url, tmp_path, events)
    head = str(len(events))

    def status() -> dict[str, list[str]]:
        printed = ordo_cli(["projections", "status"], {"ORDO_DATABASE_URL": postgres_url}, tmp_path)
        return {row[0]: row[1:4] for row in table_rows(printed)}

    assert status() == {view: ["0", head, head] for view in VIEW_NAMES}

    port = free_port()
    with projector(postgres_url, tmp_path, "project", "--metrics-port", str(port)):
        wait_for(lambda: asyncio.run(position(postgres_url)) == len(events))
        assert status() == {view: [head, head, "0"] for view in VIEW_NAMES}

        def metrics_say_caught_up() -> bool:
            with contextlib.suppress(httpx.TransportError):
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
                return all(
                    f'ordo_projection_lag_events{{view="{view}"}} 0.0' in metrics
                    and f'ordo_projection_position{{view="{view}"}} {head}.0' in metrics
                    for view in VIEW_NAMES
                )
            return False

        wait_for(metrics_say_caught_up, seconds=10, what="/metrics to show no lag")


async def test_a_runner_stopped_while_it_starts_listening_gives_its_connection_back(
    postgres_url: str,
) -> None:
    """Shutting down cancels the runner wherever it is, LISTEN half sent included; a
    connection kept would make closing the pool (and so the server) wait forever."""
    dsn, schema = asyncpg_target(postgres_url)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        for steps in range(60):  # cancel after 0, 1, 2, … event-loop turns
            source = PostgresLog(pool, schema)
            waiting = asyncio.create_task(source.wait_for_news(5))
            for _ in range(steps % 30):
                await asyncio.sleep(0)
            if steps >= 30:
                await asyncio.sleep(0.001 * (steps - 30))  # past the round trips
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            await source.close()
            assert pool.get_idle_size() == pool.get_size(), f"kept after {steps} steps"
    finally:
        await asyncio.wait_for(pool.close(), 10)


async def _head(database_url: str) -> int:
    dsn, schema = asyncpg_target(database_url)
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(f'SELECT max(notification_id) FROM "{schema}".ordo_events'))
    finally:
        await conn.close()
