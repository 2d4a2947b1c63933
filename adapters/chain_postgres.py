# ruff: noqa: S608 - SQL is built from our own table names; every value is a bound parameter.
"""The hash chain on PostgreSQL (`adapters.chain`): the column, the guard, the one-off upgrade.

`statements` is idempotent DDL, run under the DDL's advisory lock by every server at start (and
by the library log's recorder, the tools' writer): the `hash` column, `ordo_event_head` (the
canonical bytes before the state, as `adapters.chain.event_head`) and `ordo_chain_log`, which
chains the rows a previous release wrote, in log order, once. New rows are chained by the one
insert of every writer, `ordo_append_group` (`adapters.eventtable`), once per group; `guard`
refuses a row inserted without its hash.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from adapters.chain import CHAIN_MIGRATION
from adapters.eventtable import GENESIS_SQL, EventTableSql, literal, quoted

if TYPE_CHECKING:
    from psycopg import Cursor
    from psycopg.rows import DictRow

    from adapters.postgres import Conn

CHAIN_BATCH = 10_000  # rows hashed between two UPDATEs of the one-off upgrade
# The constraint that refuses an unchained row.
CHAINED_CONSTRAINT = "ordo_events_chained"
log = structlog.get_logger("ordo.store")


def event_head_sql(stream: str, version: str, topic: str) -> str:
    """`adapters.chain.event_head` of these columns, as an expression (written out where many
    rows are read: the planner does not inline the function there)."""
    return (
        f"int4send(octet_length(convert_to({stream}, 'UTF8'))) || convert_to({stream}, 'UTF8') "
        f"|| int8send({version}) "
        f"|| int4send(octet_length(convert_to({topic}, 'UTF8'))) || convert_to({topic}, 'UTF8')"
    )


class ChainSql:
    """The chain's statements on one schema's event table."""

    def __init__(self, sql: EventTableSql) -> None:
        self.events = sql.events
        self.migrations = sql.migrations
        self.schema = quoted(sql.schema)

    def statements(self) -> list[str]:
        return [
            self._hash_column(),
            self._event_head(),
            self._chain_log(),
        ]

    def guard(self) -> str:
        """Refuses a row without its hash (a writer that did not go through
        `ordo_append_group`): a constraint checked on new rows only (NOT VALID: no scan of the
        log). A database whose rows a per-row trigger chained loses that trigger here."""
        return f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '{CHAINED_CONSTRAINT}'
                   AND conrelid = {literal(self.events)}::regclass) THEN
        ALTER TABLE {self.events} ADD CONSTRAINT {CHAINED_CONSTRAINT}
            CHECK (hash IS NOT NULL) NOT VALID;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'ordo_chain'
               AND tgrelid = {literal(self.events)}::regclass) THEN
        DROP TRIGGER ordo_chain ON {self.events};
        DROP FUNCTION {self.schema}.ordo_chain_event();
    END IF;
END $$"""

    def _hash_column(self) -> str:
        # Checked first: ALTER TABLE would lock the busy table at every start.
        return f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attname = 'hash' AND NOT attisdropped
                   AND attrelid = {literal(self.events)}::regclass) THEN
        ALTER TABLE {self.events} ADD COLUMN hash bytea;
    END IF;
END $$"""

    def _event_head(self) -> str:
        return f"""
CREATE OR REPLACE FUNCTION {self.schema}.ordo_event_head(stream text, version bigint, topic text)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT {event_head_sql("stream", "version", "topic")}
$$"""

    def _chain_log(self) -> str:
        """Chains the rows without a hash, in log order; returns how many it chained."""
        return f"""
CREATE OR REPLACE FUNCTION {self.schema}.ordo_chain_log() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    previous bytea := {GENESIS_SQL};
    r record;
    ids bigint[] := '{{}}';
    hashes bytea[] := '{{}}';
    total bigint := 0;
BEGIN
    LOCK TABLE {self.events} IN EXCLUSIVE MODE;
    FOR r IN SELECT notification_id, originator_id, originator_version, topic, state, hash
             FROM {self.events} ORDER BY notification_id LOOP
        IF r.hash IS NOT NULL THEN
            previous := r.hash;
            CONTINUE;
        END IF;
        previous := sha256(previous || {self.schema}.ordo_event_head(
            r.originator_id, r.originator_version, r.topic) || coalesce(r.state, ''));
        ids := ids || r.notification_id;
        hashes := hashes || previous;
        total := total + 1;
        IF cardinality(ids) >= {CHAIN_BATCH} THEN
            UPDATE {self.events} t SET hash = u.hash FROM unnest(ids, hashes) AS u(id, hash)
                WHERE t.notification_id = u.id;
            ids := '{{}}';
            hashes := '{{}}';
        END IF;
    END LOOP;
    UPDATE {self.events} t SET hash = u.hash FROM unnest(ids, hashes) AS u(id, hash)
        WHERE t.notification_id = u.id;
    RETURN total;
END $$"""

    @property
    def rows_after(self) -> str:
        """A page of the log in order after a position, as `ChainRow`s (`ordo verify`)."""
        return (
            "SELECT notification_id, "
            f"{event_head_sql('originator_id', 'originator_version', 'topic')}, "
            "coalesce(state, ''), hash "
            f"FROM {self.events} WHERE notification_id > $1 ORDER BY notification_id LIMIT $2"
        )


async def install_chain(conn: Conn, sql: EventTableSql) -> None:
    """The chain's DDL, the one-off upgrade of an unchained log, then the guard; in the
    caller's transaction, under its advisory lock."""
    chain = ChainSql(sql)
    for statement in chain.statements():
        await conn.execute(statement)
    if not await conn.fetchval(sql.migration_ran, CHAIN_MIGRATION):
        chained: int = await conn.fetchval(f"SELECT {chain.schema}.ordo_chain_log()")
        await conn.execute(sql.mark_migrated, CHAIN_MIGRATION, chained, 0)
        log.info("log_chained", events=chained)
    await conn.execute(chain.guard())


def install_chain_sync(curs: Cursor[DictRow], sql: EventTableSql) -> None:
    """`install_chain` for the library log's recorder (psycopg), with the event table's DDL
    whose `ordo_migrations` records the upgrade; under the caller's advisory lock."""
    chain = ChainSql(sql)
    for statement in [*sql.create(), *chain.statements()]:
        curs.execute(statement)
    curs.execute(f"SELECT 1 FROM {sql.migrations} WHERE name = %s", (CHAIN_MIGRATION,))
    if curs.fetchone() is None:
        curs.execute(f"SELECT {chain.schema}.ordo_chain_log() AS chained")
        row = curs.fetchone()
        chained = 0 if row is None else int(row["chained"])
        curs.execute(
            f"INSERT INTO {sql.migrations} (name, records, claims) VALUES (%s, %s, 0)",
            (CHAIN_MIGRATION, chained),
        )
        log.info("log_chained", events=chained)
    curs.execute(chain.guard())


__all__ = ["ChainSql", "install_chain", "install_chain_sync"]
