# ruff: noqa: S608 - SQL is built from our own table names; every value is a bound parameter.
"""The reconciliation batches' tables, described once, and their SQL for PostgreSQL and SQLite.

Tables (PostgreSQL beside the read models; SQLite in `reconciliation.sqlite3`):

    ordo_reconciliation_batches  one row per batch: status, counts per outcome, progress, and a
                                 lease (owner, lease_until) held by the process working on it
    ordo_reconciliation_chunks   the upload as received, in chunks of whole lines, until each
                                 chunk is reconciled (then deleted with the same commit)
    ordo_reconciliation_items    one row per invoice: line, invoice number, outcome, detail
    ordo_reconciled_invoices     (finess, invoice number) -> where it was first reconciled: the
                                 primary key is what makes a number reconciled only once, even by
                                 two batches running at the same time; for a `matched` invoice,
                                 its prescription and the lines it paid (`paid_lines`: line_no,
                                 quantity, amount_cents, flat) and their units (`paid_units`,
                                 where the catalogue states them; older rows have none and
                                 count packs), what later invoices of the same packs are
                                 `over_billed` against
    ordo_reconciliation_commits  one row per chunk commit, numbered in commit order (commits take
                                 turns): tells a commit whether another batch committed since its
                                 chunk was looked up

Every statement is written once, with PostgreSQL's numbered parameters (`$1`), which SQLite reads
as `?1`. What the dialects say differently is in `Dialect`: the types, the clock (`now()` on
PostgreSQL; on SQLite, functions the store registers, which write times as fixed-width UTC text),
a list of ids or of invoice keys as one parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from domain.reconciliation.invoices import InvoiceKey

Kind = Literal["text", "int", "bigint", "json", "bytes", "moment", "serial"]


class Column(NamedTuple):
    name: str
    kind: Kind
    rule: str = ""  # NOT NULL, DEFAULT …


class Index(NamedTuple):
    name: str
    columns: str
    where: str = ""


class Table(NamedTuple):
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    indexes: tuple[Index, ...] = ()
    # Columns an older table may lack (a batch's amounts, an invoice's payments): the store adds
    # them when it is created, keeping the rows.
    added: tuple[str, ...] = ()

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]


REQUIRED = "NOT NULL"
NO_COUNTS = "NOT NULL DEFAULT '{}'"
ZERO = "NOT NULL DEFAULT 0"

BATCHES = Table(
    "ordo_reconciliation_batches",
    (
        Column("batch_id", "text", REQUIRED),
        Column("status", "text", REQUIRED),
        Column("counts", "json", NO_COUNTS),
        Column("amounts", "json", NO_COUNTS),  # cents billed by the invoices of each outcome
        Column("lines_total", "bigint", ZERO),
        Column("lines_done", "bigint", ZERO),
        Column("chunks_total", "int", ZERO),
        Column("chunks_done", "int", ZERO),
        Column("bytes_received", "bigint", ZERO),
        Column("created_at", "moment", REQUIRED),
        Column("started_at", "moment"),
        Column("finished_at", "moment"),
        Column("log_position", "bigint"),
        Column("log_head", "bigint"),
        Column("owner", "text"),
        Column("lease_until", "moment"),
        Column("error", "text"),
    ),
    key=("batch_id",),
    indexes=(Index("ordo_reconciliation_batches_unfinished", "lease_until", "status <> 'done'"),),
    added=("amounts",),
)
CHUNKS = Table(
    "ordo_reconciliation_chunks",
    (
        Column("batch_id", "text", REQUIRED),
        Column("chunk_no", "int", REQUIRED),
        Column("first_line", "bigint", REQUIRED),
        Column("invoices", "int", REQUIRED),
        Column("body", "bytes", REQUIRED),
    ),
    key=("batch_id", "chunk_no"),
)
ITEMS = Table(
    "ordo_reconciliation_items",
    (
        Column("batch_id", "text", REQUIRED),
        Column("line", "bigint", REQUIRED),
        Column("invoice_number", "text"),
        Column("outcome", "text", REQUIRED),
        Column("detail", "text", REQUIRED),
    ),
    key=("batch_id", "line"),
    indexes=(Index("ordo_reconciliation_items_by_outcome", "batch_id, outcome, line"),),
)
RECONCILED = Table(
    "ordo_reconciled_invoices",
    (
        Column("finess", "text", REQUIRED),
        Column("invoice_number", "text", REQUIRED),
        Column("batch_id", "text", REQUIRED),
        Column("line", "bigint", REQUIRED),
        Column("outcome", "text", REQUIRED),
        Column("prescription_id", "text"),
        Column("paid_lines", "text"),  # "line_no,quantity,amount_cents,…" (matched only)
        Column("paid_units", "text"),  # "units,…" of each paid line, -1: unknown
    ),
    key=("finess", "invoice_number"),
    indexes=(Index("ordo_reconciled_invoices_paid", "prescription_id", "paid_lines IS NOT NULL"),),
    added=("prescription_id", "paid_lines", "paid_units"),
)
COMMITS = Table(
    "ordo_reconciliation_commits",
    (Column("seq", "serial"), Column("batch_id", "text", REQUIRED)),
    key=(),  # `serial` is the key
)
TABLES = (BATCHES, CHUNKS, ITEMS, RECONCILED, COMMITS)

# The rows the processing builds (`store.ItemRow`, `store.ClaimRow`) follow these columns.
ITEM_COLUMNS = ITEMS.names
CLAIM_COLUMNS = RECONCILED.names


@dataclass(frozen=True)
class Dialect:
    """How one database writes what the statements below need."""

    types: dict[Kind, str]
    now: str  # the current time
    lease: str  # the current time plus {} seconds
    among: str  # column {0} is one of the ids in parameter {1}
    keys: str  # the invoice keys of parameter(s) {0} as a table t(f, n)
    for_update: str  # locks the row read until the commit ("" where the writer is single)
    numbered: str  # how a parameter is written: `$1` or `?1`
    arrays: bool  # a list is one array parameter (PostgreSQL), else a JSON text (SQLite)

    def render(self, statement: str) -> str:
        return _PARAMETER.sub(self.numbered, statement)

    def id_list(self, ids: Collection[str]) -> object:
        """Ids as the one parameter `among` reads."""
        return list(ids) if self.arrays else json.dumps(list(ids))

    def key_lists(self, keys: Sequence[InvoiceKey]) -> tuple[object, ...]:
        """Invoice keys as the parameters `keys` reads (two arrays, or one JSON list)."""
        if self.arrays:
            return [key[0] for key in keys], [key[1] for key in keys]
        return (json.dumps(keys),)

    def column(self, column: Column) -> str:
        return f"{column.name} {self.types[column.kind]} {column.rule}".rstrip()


_PARAMETER = re.compile(r"\$(\d+)")

POSTGRES = Dialect(
    types={
        "text": "text",
        "int": "int",
        "bigint": "bigint",
        "json": "jsonb",
        "bytes": "bytea",
        "moment": "timestamptz",
        "serial": "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    },
    now="now()",
    lease="now() + make_interval(secs => {})",
    among="{0} = ANY({1}::text[])",
    keys="unnest({0}::text[], {1}::text[]) AS t(f, n)",
    for_update=" FOR UPDATE",
    numbered=r"$\1",
    arrays=True,
)
SQLITE = Dialect(
    types={
        "text": "TEXT",
        "int": "INTEGER",
        "bigint": "INTEGER",
        "json": "TEXT",
        "bytes": "BLOB",
        "moment": "TEXT",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
    },
    now="ordo_now()",
    lease="ordo_lease({})",
    among="{0} IN (SELECT value FROM json_each({1}))",
    keys="(SELECT value ->> 0 AS f, value ->> 1 AS n FROM json_each({0})) AS t",
    for_update="",
    numbered=r"?\1",
    arrays=False,
)


class BatchSql:
    """Every statement of the batch stores, for one dialect and one schema (or none)."""

    def __init__(self, dialect: Dialect, schema: str | None = None) -> None:
        self.dialect = dialect
        self.prefix = f'"{schema}".' if schema else ""
        self.batch_columns = ", ".join(BATCHES.names)
        self._receiving(dialect, self.name(BATCHES))
        self._processing(dialect, self.name(BATCHES), self.name(RECONCILED))
        self._committing(dialect, self.name(BATCHES), self.name(COMMITS))
        self._reading(dialect, self.name(BATCHES), self.name(ITEMS))

    def _receiving(self, dialect: Dialect, batches: str) -> None:
        sql, lease = dialect.render, dialect.lease.format
        self.new_batch = sql(
            f"INSERT INTO {batches} (batch_id, status, created_at, owner, lease_until) "
            f"VALUES ($1, 'receiving', {dialect.now}, $2, {lease('$3')})"
        )
        renew = f"UPDATE {batches} SET lease_until = {lease('$3')}"
        mine = " WHERE batch_id = $1 AND owner = $2 RETURNING batch_id"
        self.renew = sql(renew + mine)
        self.renew_receiving = sql(
            f"{renew}, chunks_total = $4, lines_total = lines_total + $5, bytes_received = $6"
            + mine
        )
        self.add_chunk = self._insert(CHUNKS)
        self.received = sql(
            f"UPDATE {batches} SET status = 'running' WHERE batch_id = $1 AND owner = $2"
        )
        self.forget = [
            sql(f"DELETE FROM {self.name(table)} WHERE batch_id = $1")
            for table in (CHUNKS, ITEMS, BATCHES)
        ]

    def _processing(self, dialect: Dialect, batches: str, reconciled: str) -> None:
        sql, now, lease = dialect.render, dialect.now, dialect.lease.format
        self.claim = sql(
            f"UPDATE {batches} SET owner = $2, lease_until = {lease('$3')}, "
            f"started_at = coalesce(started_at, {now}) "
            "WHERE batch_id = $1 AND status = 'running' "
            f"AND (owner = $2 OR lease_until IS NULL OR lease_until < {now}) "
            f"RETURNING {self.batch_columns}"
        )
        self.mark_log = sql(
            f"UPDATE {batches} SET log_position = coalesce(log_position, $2), "
            "log_head = coalesce(log_head, $3) WHERE batch_id = $1"
        )
        self.chunk = sql(
            f"SELECT first_line, body FROM {self.name(CHUNKS)} "
            "WHERE batch_id = $1 AND chunk_no = $2"
        )
        self.taken = sql(
            "SELECT r.finess, r.invoice_number, r.batch_id, r.line, r.outcome "
            f"FROM {dialect.keys.format('$1', '$2')} JOIN {reconciled} r "
            "ON r.finess = t.f AND r.invoice_number = t.n"
        )
        self.paid = sql(
            f"SELECT prescription_id, finess, invoice_number, paid_lines, paid_units "
            f"FROM {reconciled} "
            f"WHERE {dialect.among.format('prescription_id', '$1')} AND paid_lines IS NOT NULL"
        )
        self.finish = sql(
            f"UPDATE {batches} SET status = 'done', finished_at = {now}, owner = NULL, "
            "lease_until = NULL, error = $3 WHERE batch_id = $1 AND owner = $2"
        )
        self.release = sql(
            f"UPDATE {batches} SET owner = NULL, error = $3, lease_until = {lease('$4')} "
            "WHERE batch_id = $1 AND owner = $2"
        )

    def _committing(self, dialect: Dialect, batches: str, commits: str) -> None:
        """A chunk's commit: its batch's totals (locked), its number among all commits, its
        claims and items, the batch's progress, its staged body dropped."""
        sql = dialect.render
        self.totals = sql(
            f"SELECT counts, amounts FROM {batches} "
            f"WHERE batch_id = $1 AND owner = $2 AND chunks_done = $3{dialect.for_update}"
        )
        self.last_commit = f"SELECT coalesce(max(seq), 0) FROM {commits}"
        self.new_commit = sql(f"INSERT INTO {commits} (batch_id) VALUES ($1) RETURNING seq")
        self.commits_of_others = sql(
            f"SELECT count(*) FROM {commits} WHERE seq > $1 AND seq < $2 AND batch_id <> $3"
        )
        self.insert_claims = self._insert(RECONCILED)
        self.insert_items = self._insert(ITEMS)
        self.progress = sql(
            f"UPDATE {batches} SET chunks_done = $2 + 1, lines_done = lines_done + $3, "
            f"counts = $4, amounts = $6, lease_until = {dialect.lease.format('$5')}, "
            "error = NULL WHERE batch_id = $1"
        )
        self.drop_chunk = sql(
            f"DELETE FROM {self.name(CHUNKS)} WHERE batch_id = $1 AND chunk_no = $2"
        )

    def _reading(self, dialect: Dialect, batches: str, items: str) -> None:
        sql = dialect.render
        self.batch = sql(f"SELECT {self.batch_columns} FROM {batches} WHERE batch_id = $1")
        page = f"SELECT line, invoice_number, outcome, detail FROM {items} WHERE batch_id = $1"
        self.items = sql(f"{page} AND line > $2 ORDER BY line LIMIT $3")
        self.items_of_outcome = sql(f"{page} AND outcome = $4 AND line > $2 ORDER BY line LIMIT $3")
        self.unfinished = (
            f"SELECT {self.batch_columns} FROM {batches} WHERE status <> 'done' "
            f"AND (lease_until IS NULL OR lease_until < {dialect.now})"
        )

    def name(self, table: Table) -> str:
        return f"{self.prefix}{table.name}"

    def _insert(self, table: Table) -> str:
        values = ", ".join(f"${n}" for n in range(1, len(table.columns) + 1))
        return self.dialect.render(
            f"INSERT INTO {self.name(table)} ({', '.join(table.names)}) VALUES ({values})"
        )

    # --- the tables ------------------------------------------------------------------------------

    def create_tables(self) -> list[str]:
        return [self._create(table) for table in TABLES]

    def _create(self, table: Table) -> str:
        parts = [self.dialect.column(column) for column in table.columns]
        if table.key:
            parts.append(f"PRIMARY KEY ({', '.join(table.key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.name(table)} ({', '.join(parts)})"

    def added_columns(self) -> list[tuple[str, str, str]]:
        """(table, column, its definition) of the columns an older table may lack."""
        return [
            (self.name(table), name, self.dialect.column(table.column(name)))
            for table in TABLES
            for name in table.added
        ]

    def create_indexes(self) -> list[str]:
        return [
            f"CREATE INDEX IF NOT EXISTS {index.name} ON {self.name(table)} ({index.columns})"
            + (f" WHERE {index.where}" if index.where else "")
            for table in TABLES
            for index in table.indexes
        ]
