"""The batch tables, described once for both databases, upgrade the tables an older ordo made.

Tables an older ordo made lack columns that billing integrity needs: a batch's amounts, a
reconciled invoice's prescription, paid lines and the units they paid. A store created over
such tables gains those columns, keeps what was reconciled in them, and reconciles new batches
against it (an invoice paid without its units counts packs).
"""

from __future__ import annotations

import sqlite3

from adapters.config import Settings
from adapters.readmodels import ReadModels
from adapters.readmodels.postgres import PostgresReadModels
from adapters.reconciliation import SQLITE_FILE, reconciliation_for
from adapters.reconciliation.store import Batch, Paid
from domain.reconciliation.decision import Previous
from domain.reconciliation.records import UNITS_UNKNOWN
from tests.api.test_reconciliation_crash import with_log
from tests.api.test_reconciliation_memory import PHARMACY, body

# The two tables that gained columns, as the first reconciliation release created them, with
# a batch done in them: invoice R1-0000001 of the pharmacy was reconciled (matched).
BEFORE_BILLING_INTEGRITY = [
    "CREATE TABLE {s}ordo_reconciliation_batches ("
    "batch_id text PRIMARY KEY, status text NOT NULL, counts {json} NOT NULL DEFAULT '{{}}', "
    "lines_total bigint NOT NULL DEFAULT 0, lines_done bigint NOT NULL DEFAULT 0, "
    "chunks_total int NOT NULL DEFAULT 0, chunks_done int NOT NULL DEFAULT 0, "
    "bytes_received bigint NOT NULL DEFAULT 0, created_at {moment} NOT NULL, "
    "started_at {moment}, finished_at {moment}, log_position bigint, log_head bigint, "
    "owner text, lease_until {moment}, error text)",
    "CREATE TABLE {s}ordo_reconciled_invoices ("
    "finess text NOT NULL, invoice_number text NOT NULL, batch_id text NOT NULL, "
    "line bigint NOT NULL, outcome text NOT NULL, PRIMARY KEY (finess, invoice_number))",
    "INSERT INTO {s}ordo_reconciliation_batches (batch_id, status, counts, lines_total, "
    "lines_done, created_at) VALUES ('old', 'done', '{{\"matched\": 1}}', 1, 1, {created})",
    "INSERT INTO {s}ordo_reconciled_invoices "
    f"VALUES ('{PHARMACY}', 'R1-0000001', 'old', 1, 'matched')",
]


async def given_the_tables_before_billing_integrity(read_models: ReadModels) -> None:
    views = read_models.store
    if isinstance(views, PostgresReadModels):
        names = {"s": f'"{views.schema}".', "json": "jsonb", "moment": "timestamptz"}
        async with views.pool.acquire() as conn:
            for statement in BEFORE_BILLING_INTEGRITY:
                await conn.execute(statement.format(created="now()", **names))
        return
    created = "'2026-01-05T10:00:00.000000+00:00'"
    with sqlite3.connect(views.path.with_name(SQLITE_FILE)) as db:
        for statement in BEFORE_BILLING_INTEGRITY:
            db.execute(statement.format(s="", json="TEXT", moment="TEXT", created=created))
    db.close()


async def test_a_store_created_over_older_tables_adds_the_billing_columns_and_keeps_their_batches(
    settings: Settings,
) -> None:
    async def scenario(read_models: ReadModels, numbers: list[str]) -> tuple[Batch, ...]:
        await given_the_tables_before_billing_integrity(read_models)
        reconciliation = reconciliation_for(read_models, chunk_lines=100)
        await reconciliation.store.create()
        await reconciliation.store.create()  # and again, as every start does: nothing changes

        old = await reconciliation.store.batch("old")
        taken = await reconciliation.store.taken([(PHARMACY, "R1-0000001")])
        assert taken == {(PHARMACY, "R1-0000001"): Previous("old", 1, "matched")}
        batch_id = await reconciliation.receive(body(numbers, 300, 1))
        assert await reconciliation.process(batch_id)
        new = await reconciliation.store.batch(batch_id)
        assert old is not None and new is not None
        paid = await reconciliation.store.paid(numbers)
        assert sum(len(invoices) for invoices in paid.invoices.values()) == new.counts["matched"]
        items = await reconciliation.store.items(batch_id, "duplicate_invoice", 0, 10)
        assert [(item.line, item.invoice_number) for item in items] == [(2, "R1-0000001")]
        return old, new

    old, new = await with_log(settings, scenario)

    assert (old.status, old.counts, old.amounts, old.lines_done) == ("done", {"matched": 1}, {}, 1)
    assert new.status == "done" and new.lines_done == 300
    assert new.counts["duplicate_invoice"] == 1  # the old batch's invoice number stays used
    assert new.amounts["matched"] == 250 * new.counts["matched"]  # one line of 250 cents each


# The reconciled invoices as the release before units made them: a matched invoice of one
# prescription paid 1 pack of line 1, its units not stored.
BEFORE_UNITS = [
    "CREATE TABLE {s}ordo_reconciled_invoices ("
    "finess text NOT NULL, invoice_number text NOT NULL, batch_id text NOT NULL, "
    "line bigint NOT NULL, outcome text NOT NULL, prescription_id text, paid_lines text, "
    "PRIMARY KEY (finess, invoice_number))",
    "INSERT INTO {s}ordo_reconciled_invoices "
    f"VALUES ('{PHARMACY}', 'R1-old', 'old', 1, 'matched', '{{number}}', '1,1,250')",
]


async def given_the_tables_before_units(read_models: ReadModels, number: str) -> None:
    views = read_models.store
    statements = [statement.replace("{number}", number) for statement in BEFORE_UNITS]
    if isinstance(views, PostgresReadModels):
        async with views.pool.acquire() as conn:
            for statement in statements:
                await conn.execute(statement.format(s=f'"{views.schema}".'))
        return
    with sqlite3.connect(views.path.with_name(SQLITE_FILE)) as db:
        for statement in statements:
            db.execute(statement.format(s=""))
    db.close()


async def test_an_invoice_paid_before_units_were_stored_gains_the_column_and_counts_packs(
    settings: Settings,
) -> None:
    async def scenario(read_models: ReadModels, numbers: list[str]) -> Paid:
        await given_the_tables_before_units(read_models, numbers[0])
        reconciliation = reconciliation_for(read_models, chunk_lines=100)
        await reconciliation.store.create()
        await reconciliation.store.create()
        return await reconciliation.store.paid(numbers[:1])

    paid = await with_log(settings, scenario)

    assert list(paid.invoices.values()) == [{(PHARMACY, "R1-old"): (1, 1, 250, UNITS_UNKNOWN)}]
