"""The locked SQL baseline: the event store's append, sent straight to PostgreSQL with asyncpg."""

from __future__ import annotations

import asyncio
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psycopg
from psycopg import sql

from adapters.config import with_schema
from adapters.librarylog import open_library_log
from tools.bench.load import Command, Run, Window, run_loops
from tools.bench.options import Options
from tools.bench.progress import say
from tools.bench.sampler import observe, quiet_machine
from tools.bench.servers import Scratch

SQL_APP = "ordo-bench-sql"  # application_name of the baseline's connections
LOCKED_SQL = "SQL ordo_append"  # the baseline's rows, and what API/SQL compares with


# --- the locked SQL baseline: the event store's append, straight to PostgreSQL --------------------


@dataclass(frozen=True)
class Baseline:
    """What a dispensing sends (checked with log_statement=all): the SELECT of the stream, then
    one prepared call of the app's `ordo_append` function (LOCK TABLE ... IN EXCLUSIVE MODE;
    NOTIFY; INSERT ... RETURNING notification_id, in its own transaction), on a copy of the
    API run's seed in its own schema."""

    dsn: str
    schema: str
    ids: list[str]
    topic: str
    state: bytes

    @property
    def select(self) -> str:
        return (
            f'SELECT * FROM "{self.schema}"."ordo_events" WHERE originator_id = $1 '
            "ORDER BY originator_version ASC"
        )

    @property
    def append(self) -> str:
        call = f'"{self.schema}".ordo_append($1, $2, $3, $4)'
        return f"SELECT n AS notification_id FROM {call} AS n"


def sql_command(base: Baseline, seed_: int) -> Command[asyncpg.Connection]:
    rng = random.Random(seed_)

    async def dispense(conn: asyncpg.Connection) -> str | None:
        number = rng.choice(base.ids)
        for _ in range(100):  # a lost race on the version: load again and retry, as the app does
            rows = await conn.fetch(base.select, number)
            version = rows[-1]["originator_version"] + 1
            try:
                await conn.fetch(base.append, [number], [version], [base.topic], [base.state])
            except asyncpg.UniqueViolationError:
                continue
            return None
        return "lost 100 races"

    return dispense


async def sql_run(base: Baseline, opts: Options, clients: int) -> Run:
    settings = {"application_name": SQL_APP}
    conns = [await asyncpg.connect(base.dsn, server_settings=settings) for _ in range(clients)]
    command = sql_command(base, clients)
    window = Window.after(opts.warmup, opts.seconds)
    observer = asyncio.create_task(observe(window, (), (base.dsn, SQL_APP)))
    tally = await run_loops(conns, command, window)
    observation = await observer
    for conn in conns:
        await conn.close()
    run = Run(LOCKED_SQL, "postgres", None, clients, window, tally, observation)
    say(f"{LOCKED_SQL} c{clients}: {run.rate:.0f}/s, p99 {run.latency_ms(0.99):.1f} ms")
    return run


def prepare_baseline(scratch: Scratch, source: str) -> Baseline:
    """A scratch schema made by the app's own open_log, holding the API run's seed."""
    schema = scratch.create()
    open_library_log(with_schema(scratch.url, schema), Path(tempfile.gettempdir()), 1).close()
    src, dst = sql.Identifier(source, "ordo_events"), sql.Identifier(schema, "ordo_events")
    with psycopg.connect(scratch.url, autocommit=True) as conn:
        conn.execute(  # through the store's own append, which chains the rows
            sql.SQL(
                "SELECT count(*) FROM (SELECT "
                "array_agg(originator_id ORDER BY notification_id) AS ids, "
                "array_agg(originator_version ORDER BY notification_id) AS versions, "
                "array_agg(topic ORDER BY notification_id) AS topics, "
                "array_agg(state ORDER BY notification_id) AS states "
                "FROM {src} WHERE originator_version = 1) AS seed, "
                "LATERAL {schema}.ordo_append(seed.ids, seed.versions, seed.topics, seed.states)"
            ).format(src=src, schema=sql.Identifier(schema))
        )
        conn.execute(sql.SQL("ANALYZE {}").format(dst))
        ids = [r[0] for r in conn.execute(sql.SQL("SELECT originator_id FROM {}").format(dst))]
        sample = conn.execute(
            sql.SQL(
                "SELECT topic, state FROM {} WHERE topic LIKE 'DispensationRecorded%' LIMIT 1"
            ).format(src)
        ).fetchone()
    topic, state = sample or ("DispensationRecorded.v1", b"{}" * 200)
    return Baseline(scratch.url, schema, ids, topic, bytes(state))


async def bench_baseline(opts: Options, scratch: Scratch, source: str) -> list[Run]:
    base = prepare_baseline(scratch, source)
    say(f"SQL baseline on {len(base.ids)} prescriptions")
    runs = []
    for clients in opts.clients:
        await quiet_machine(opts.wait_quiet)
        runs.append(await sql_run(base, opts, clients))
    return runs
