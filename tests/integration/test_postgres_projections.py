"""The read side on a real PostgreSQL, with real `ordo serve` and `ordo project` processes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from adapters.eventfeed import PostgresEventFeed
from adapters.postgres import asyncpg_target
from adapters.readmodels.postgres import PostgresReadModels
from projections.folds import READ_MODEL_NAMES
from tests.integration.logs import (
    a_busy_day,
    append_all,
    dump,
    ordo_cli,
    position,
    rebuild,
    table_rows,
)
from tests.integration.servers import (
    dispense_two_of_three,
    listed_as_dispensed,
    ordo_process,
    ordo_server,
    wait_for,
)
from tools.cast import People
from tools.harness import free_port

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


async def record_every_apply(database_url: str) -> None:
    """Create the views, and a trigger that records each move of a view's position with the
    name of the process whose transaction made it (`connection_settings`)."""
    dsn, schema = asyncpg_target(database_url)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        await PostgresReadModels(pool, schema).create()
        await pool.execute(
            f"""
            CREATE TABLE "{schema}".test_applies (
                id bigserial PRIMARY KEY, view text, moved_from bigint, moved_to bigint,
                applied_by text);
            CREATE FUNCTION "{schema}".test_record_apply() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO "{schema}".test_applies (view, moved_from, moved_to, applied_by)
                VALUES (NEW.view, OLD.position, NEW.position, current_setting('application_name'));
                RETURN NEW;
            END $$;
            CREATE TRIGGER test_record_apply AFTER UPDATE ON "{schema}".ordo_projection_positions
                FOR EACH ROW EXECUTE FUNCTION "{schema}".test_record_apply();
            """
        )
    finally:
        await pool.close()


async def applies(database_url: str) -> list[tuple[int, int, str]]:
    """Each batch applied to the prescriptions view, in order: from, to, and by which process."""
    dsn, schema = asyncpg_target(database_url)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            f'SELECT moved_from, moved_to, applied_by FROM "{schema}".test_applies '
            "WHERE view = 'prescriptions' ORDER BY id"
        )
        return [(row[0], row[1], row[2]) for row in rows]
    finally:
        await conn.close()


def reports_position(metrics_port: int, head: int) -> bool:
    """Whether a projector's /metrics says the views stand at `head`: its loops are running
    (the lag watcher starts with the runner, leading or standing by)."""
    with contextlib.suppress(httpx.TransportError):
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        return f'ordo_projection_position{{view="prescriptions"}} {head}.0' in metrics
    return False


def by_process(name: str) -> int:
    return int(name.split("@", maxsplit=1)[0].removeprefix("ordo-"))


def assert_one_unbroken_chain(batches: list[tuple[int, int, str]], head: int) -> None:
    """Every batch starts where the previous one ended (the compare-and-set), from 0 to head:
    nothing applied twice, nothing skipped."""
    assert batches and batches[0][0] == 0 and batches[-1][1] == head
    for (_, reached, _), (start, end, _) in itertools.pairwise(batches):
        assert start == reached < end, batches


def test_two_projectors_never_both_apply_and_the_second_takes_over(
    postgres_url: str, tmp_path: Path
) -> None:
    asyncio.run(record_every_apply(postgres_url))
    append_all(postgres_url, tmp_path, a_busy_day(100))

    def caught_up() -> bool:
        return asyncio.run(position(postgres_url)) == asyncio.run(_head(postgres_url))

    ports = {"a": free_port(), "b": free_port()}
    with contextlib.ExitStack() as stack:
        a = stack.enter_context(
            projector(postgres_url, tmp_path, "a", "--metrics-port", str(ports["a"]))
        )
        # b joins once a runs: two processes creating the event store's tables at the same
        # instant can fail ("tuple concurrently updated"), which is not what this test is about.
        head = asyncio.run(_head(postgres_url))
        wait_for(lambda: reports_position(ports["a"], head), what="a to catch up")
        b = stack.enter_context(
            projector(postgres_url, tmp_path, "b", "--metrics-port", str(ports["b"]))
        )
        wait_for(lambda: reports_position(ports["b"], head), what="b to run")
        # Ten rounds of news while both run: each wakes both processes, so a standby that
        # wrongly led would win some of them.
        for _ in range(10):
            append_all(postgres_url, tmp_path, a_busy_day(10))
            wait_for(caught_up, what="the views to reach the log head")
        while_both_ran = asyncio.run(applies(postgres_url))
        appliers = {name for _, _, name in while_both_ran}
        assert len(appliers) == 1, f"more than one process applied batches: {appliers}"
        (leader_name,) = appliers
        leader, standby = {a.pid: (a, b), b.pid: (b, a)}[by_process(leader_name)]

        leader.send_signal(signal.SIGKILL)
        leader.wait(timeout=10)
        append_all(postgres_url, tmp_path, a_busy_day(50))
        wait_for(caught_up, what="the standby to take over")

    batches = asyncio.run(applies(postgres_url))
    after_the_kill = {by_process(name) for _, _, name in batches[len(while_both_ran) :]}
    assert after_the_kill == {standby.pid}
    assert_one_unbroken_chain(batches, asyncio.run(_head(postgres_url)))
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

    assert status() == {view: ["0", head, head] for view in READ_MODEL_NAMES}

    port = free_port()
    with projector(postgres_url, tmp_path, "project", "--metrics-port", str(port)):
        wait_for(lambda: asyncio.run(position(postgres_url)) == len(events))
        assert status() == {view: [head, head, "0"] for view in READ_MODEL_NAMES}

        def metrics_say_caught_up() -> bool:
            with contextlib.suppress(httpx.TransportError):
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
                return all(
                    f'ordo_projection_lag_events{{view="{view}"}} 0.0' in metrics
                    and f'ordo_projection_position{{view="{view}"}} {head}.0' in metrics
                    for view in READ_MODEL_NAMES
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
            source = PostgresEventFeed(pool, schema)
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
