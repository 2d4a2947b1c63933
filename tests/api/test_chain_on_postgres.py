"""The chain on PostgreSQL: a log chained row by row by the previous release's trigger, the tools'
writer, and a writer that does not chain.

The previous release chained each inserted row in a BEFORE INSERT trigger; its function is
copied below from it (`git show 8627506:adapters/chain_postgres.py`), not rebuilt from ours, so
that the upgrade is tested against what really ran. Given rows it chained, when a server of this
release starts, then the trigger is gone, new rows are chained after the old ones and
`ordo verify` finds the chain whole. An insert without its hash is refused.
"""

from __future__ import annotations

import asyncio
import io

import psycopg
import pytest
from litestar.testing import TestClient
from rich.console import Console

from adapters.bootstrap import build_app
from adapters.config import Settings
from adapters.librarylog import open_library_log
from adapters.verify import verify
from tests.api.previous_release import _record_event, query
from tests.api.test_prescriptions_api import dispense, issue
from tests.api.test_verify import execute
from tests.conftest import Client
from tools.cast import People

pytestmark = pytest.mark.parametrize("settings", ["postgres"], indirect=True)

PREVIOUS_TRIGGER = (
    """
CREATE FUNCTION ordo_chain_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head text := current_setting('ordo.chain_head', true);
    previous bytea;
BEGIN
    IF head IS NOT NULL AND starts_with(head, TG_RELID::text || ':') THEN
        previous := decode(split_part(head, ':', 2), 'hex');
    ELSE
        LOCK TABLE ordo_events IN EXCLUSIVE MODE;
        SELECT e.hash INTO previous FROM ordo_events e ORDER BY e.notification_id DESC LIMIT 1;
        previous := coalesce(previous, decode(repeat('00', 32), 'hex'));
    END IF;
    NEW.hash := sha256(previous || ordo_event_head(
        NEW.originator_id, NEW.originator_version, NEW.topic) || coalesce(NEW.state, ''));
    PERFORM set_config('ordo.chain_head', TG_RELID::text || ':' || encode(NEW.hash, 'hex'), true);
    RETURN NEW;
END $$""",
    "CREATE TRIGGER ordo_chain BEFORE INSERT ON ordo_events "
    "FOR EACH ROW EXECUTE FUNCTION ordo_chain_event()",
    "ALTER TABLE ordo_events DROP CONSTRAINT ordo_events_chained",  # which it did not have
)


def insert_record_row(settings: Settings, key: str) -> None:
    """A row the log's readers skip (a legacy idempotency stream's), by a bare INSERT."""
    stored = _record_event(key, "fingerprint", (201, b"{}"))
    execute(
        settings,
        "INSERT INTO ordo_events (originator_id, originator_version, topic, state) "
        "VALUES (%s, %s, %s, %s)",
        stored.originator_id,
        stored.originator_version,
        stored.topic,
        stored.state,
    )


def chain_holds(settings: Settings) -> tuple[bool, str]:
    out = io.StringIO()
    holds = asyncio.run(verify(settings, Console(file=out, width=200)))
    return holds, out.getvalue()


def test_a_log_the_trigger_chained_keeps_verifying_once_upgraded(
    client: Client, people: People, settings: Settings
) -> None:
    number = issue(client, people, 3)["prescription_id"]
    for statement in PREVIOUS_TRIGGER:
        query(settings, statement)
    for key in ("lgo-1", "lgo-2"):  # as the previous release's append: the trigger chains
        insert_record_row(settings, key)

    with TestClient(build_app(settings)) as upgraded:
        assert dispense(upgraded, people, number, (1, 1)).status_code == 201

    holds, said = chain_holds(settings)
    assert holds, said
    assert "the log's chain holds: 4 events" in said
    assert query(settings, "SELECT count(*) FROM pg_trigger WHERE tgname = 'ordo_chain'") == [(0,)]


def test_a_row_inserted_without_its_hash_is_refused(client: Client, settings: Settings) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        insert_record_row(settings, "lgo-1")


def test_the_tools_writer_chains_after_the_servers_rows(
    client: Client, people: People, settings: Settings
) -> None:
    issue(client, people, 3)
    log = open_library_log(settings.database_url, settings.data_dir)
    try:
        log.recorder.insert_events([_record_event("lgo-3", "fingerprint", (201, b"{}"))])
    finally:
        log.close()
    issue(client, people, 3)

    holds, said = chain_holds(settings)
    assert holds, said
    assert "the log's chain holds: 3 events" in said
    assert query(settings, "SELECT count(*) FROM ordo_events WHERE hash IS NULL") == [(0,)]
