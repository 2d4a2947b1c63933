"""The read models' tables, described once and rendered for PostgreSQL and for SQLite.

Each table is a name, its columns (with a neutral type), its primary key, its indexes (columns in
their order) and how a prescription's state becomes its rows (`adapters.readmodels.rows`). From
that one description `ReadModelSql` renders, for one dialect, the DDL, the batch writes, the
lookups and the list pages; the two stores only execute what it renders (asyncpg on PostgreSQL,
one SQLite connection in a thread) and keep what really differs: connections, transactions, locks.

    ordo_view_prescriptions   one row per prescription: its folded state, indexed for the
                              prescriber's and the patient's lists (newest first)
    ordo_view_inbox           one row per (pharmacy, prescription) still to prepare
    ordo_view_dispensings     one row per product handed to a patient
    ordo_view_conversations   one row per MSSanté conversation, for the pharmacy's and the
                              patient's lists (newest activity first)
    ordo_projection_positions the log position each read model has applied

The table names keep the `ordo_view_` prefix of the first release: renaming them would mean a
migration of every deployment for a word.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from adapters.eventtable import quoted
from adapters.readmodels.rows import conversation_rows, dispensing_rows, inbox_rows, state_row
from domain.prescription import Prescription
from projections.folds import READ_MODEL_NAMES, ReadModelName

ColumnType = Literal["text", "int", "bigint", "bool", "time", "day", "bytes"]
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool = False


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]  # each with its order, e.g. "issued_at DESC"


@dataclass(frozen=True)
class Table:
    """One read model's table. `rows_of` gives a prescription's rows in the columns' order."""

    name: ReadModelName
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    indexes: tuple[Index, ...]
    rows_of: Callable[[Prescription], list[Row]]
    may_have_rows: Callable[[Prescription], bool] = lambda state: True
    # A table whose rows carry the prescription's version is upserted, never to an older state,
    # rewriting only the columns a newer version changes (the others are fixed at issue, and
    # rewriting an indexed column costs index writes); the other tables are replaced whole for
    # each prescription a batch touches.
    version: str | None = None
    changing: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


def _single_row(state: Prescription) -> list[Row]:
    return [state_row(state)]


PRESCRIPTIONS = Table(
    name="prescriptions",
    columns=(
        Column("prescription_id", "text"),
        Column("prescriber_rpps", "text"),
        Column("patient_ins", "text"),
        Column("issued_at", "time"),
        Column("version", "int"),
        Column("state", "bytes"),
    ),
    key=("prescription_id",),
    indexes=(
        Index("by_prescriber", ("prescriber_rpps", "issued_at DESC", "prescription_id DESC")),
        Index("by_patient", ("patient_ins", "issued_at DESC", "prescription_id DESC")),
    ),
    rows_of=_single_row,
    version="version",
    changing=("version", "state"),
)
INBOX = Table(
    name="inbox",
    columns=(
        Column("finess", "text"),
        Column("prescription_id", "text"),
        Column("transmitted_at", "time"),
        Column("expires_on", "day"),
        Column("entry", "bytes"),
    ),
    key=("finess", "prescription_id"),
    indexes=(
        Index("by_time", ("finess", "transmitted_at", "prescription_id")),
        Index("by_prescription", ("prescription_id",)),
    ),
    rows_of=inbox_rows,
    may_have_rows=lambda state: bool(state.transmissions),
)
DISPENSINGS = Table(
    name="dispensings",
    columns=(
        Column("prescription_id", "text"),
        Column("dispensation_id", "text"),
        Column("line_no", "int"),
        Column("patient_ins", "text"),
        Column("product_code", "text", nullable=True),
        Column("quantity", "int"),
        Column("narcotic", "bool"),
        Column("duration_days", "int"),
        Column("dispensed_at", "time"),
        Column("finess", "text"),
    ),
    key=("prescription_id", "dispensation_id", "line_no"),
    indexes=(
        Index("by_patient", ("patient_ins", "dispensed_at")),
        Index("by_dispensation", ("dispensation_id",)),
    ),
    rows_of=dispensing_rows,
    may_have_rows=lambda state: bool(state.dispensations),
)
CONVERSATIONS = Table(
    name="conversations",
    columns=(
        Column("conversation_id", "text"),
        Column("prescription_id", "text"),
        Column("finess", "text"),
        Column("patient_ins", "text"),
        Column("last_activity_at", "time"),
        Column("entry", "bytes"),
    ),
    key=("conversation_id",),
    indexes=(
        Index("by_pharmacy", ("finess", "last_activity_at DESC", "conversation_id DESC")),
        Index("by_patient", ("patient_ins", "last_activity_at DESC", "conversation_id DESC")),
        Index("by_prescription", ("prescription_id",)),
    ),
    rows_of=conversation_rows,
    may_have_rows=lambda state: bool(state.conversations),
)
TABLES: dict[ReadModelName, Table] = {
    table.name: table for table in (PRESCRIPTIONS, INBOX, DISPENSINGS, CONVERSATIONS)
}
assert tuple(TABLES) == READ_MODEL_NAMES


@dataclass(frozen=True)
class Page:
    """A list read by keyset: rows where `by` equals a value (and `since` is not before a
    day, if any), ordered by (`at`, `tie`), resumed after the key of the previous page's last."""

    table: Table
    payload: str
    at: str
    tie: str
    newest_first: bool
    since: str | None = None


PRESCRIPTIONS_PAGE = Page(PRESCRIPTIONS, "state", "issued_at", "prescription_id", True)
INBOX_PAGE = Page(INBOX, "entry", "transmitted_at", "prescription_id", False, "expires_on")
CONVERSATIONS_PAGE = Page(
    CONVERSATIONS, "entry", "last_activity_at", "conversation_id", newest_first=True
)


@dataclass(frozen=True)
class Dialect:
    """What PostgreSQL and SQLite spell differently."""

    name: Literal["postgresql", "sqlite"]
    types: dict[ColumnType, str]
    now: str  # the SQL expression of the current time, as stored in a `time` column

    def mark(self, n: int) -> str:
        return f"${n}" if self.name == "postgresql" else "?"

    def any_of(self, n: int) -> str:
        """`column <this>` is true when the column is one of the list bound at position `n`."""
        if self.name == "postgresql":
            return f"= ANY(${n}::text[])"
        return "IN (SELECT value FROM json_each(?))"

    def listed(self, values: Collection[str]) -> Any:
        """The parameter for `any_of`: an array on PostgreSQL, a JSON array on SQLite."""
        return list(values) if self.name == "postgresql" else json.dumps(list(values))

    def value(self, value: Any) -> Any:
        """SQLite keeps times and days as ISO text (which sorts like the values)."""
        if self.name == "postgresql":
            return value
        if isinstance(value, datetime):
            return value.isoformat(timespec="microseconds")
        return value.isoformat() if isinstance(value, date) else value

    def row(self, row: Row) -> Row:
        return row if self.name == "postgresql" else tuple(self.value(v) for v in row)


POSTGRESQL = Dialect(
    name="postgresql",
    types={
        "text": "text",
        "int": "int",
        "bigint": "bigint",
        "bool": "boolean",
        "time": "timestamptz",
        "day": "date",
        "bytes": "bytea",
    },
    now="now()",
)
SQLITE = Dialect(
    name="sqlite",
    types={
        "text": "TEXT",
        "int": "INTEGER",
        "bigint": "INTEGER",
        "bool": "INTEGER",
        "time": "TEXT",
        "day": "TEXT",
        "bytes": "BLOB",
    },
    now="strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')",
)


@dataclass(frozen=True)
class ReadModelSql:
    """The statements on one set of read-model tables: a dialect, a PostgreSQL schema (None on
    SQLite, whose file is the namespace), and a suffix (`_next` for a rebuild's copy)."""

    dialect: Dialect
    schema: str | None = None
    suffix: str = ""

    # --- names ---------------------------------------------------------------------------------

    def bare(self, table: ReadModelName) -> str:
        return f"ordo_view_{table}{self.suffix}"

    def table(self, table: ReadModelName) -> str:
        return self._qualified(self.bare(table))

    def _qualified(self, name: str) -> str:
        return name if self.schema is None else f"{quoted(self.schema)}.{name}"

    @property
    def positions(self) -> str:
        return self._qualified("ordo_projection_positions")

    def position_keys(self) -> list[str]:
        return [f"{table}{self.suffix}" for table in READ_MODEL_NAMES]

    def index_names(self, table: ReadModelName) -> list[str]:
        return [f"{self.bare(table)}_{index.name}" for index in TABLES[table].indexes]

    # --- schema --------------------------------------------------------------------------------

    def create(self) -> list[str]:
        """Idempotent DDL: the positions table, then each table and its indexes."""
        types = self.dialect.types
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.positions} (view {types['text']} PRIMARY KEY, "
            f"position {types['bigint']} NOT NULL, "
            f"updated_at {types['time']} NOT NULL DEFAULT ({self.dialect.now}))"
        ]
        for table in TABLES.values():
            columns = ", ".join(
                f"{c.name} {types[c.type]}{'' if c.nullable else ' NOT NULL'}"
                for c in table.columns
            )
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {self.table(table.name)} ({columns}, "
                f"CONSTRAINT {self.bare(table.name)}_pkey PRIMARY KEY ({', '.join(table.key)}))"
            )
            statements += self.create_indexes(table.name)
        return statements

    def create_indexes(self, table: ReadModelName) -> list[str]:
        return [
            f"CREATE INDEX IF NOT EXISTS {name} ON {self.table(table)} ({', '.join(index.columns)})"
            for name, index in zip(self.index_names(table), TABLES[table].indexes, strict=True)
        ]

    def drop(self, table: ReadModelName) -> str:
        return f"DROP TABLE IF EXISTS {self.table(table)}"

    def replace_with(self, scratch: ReadModelSql, table: ReadModelName) -> list[str]:
        """Make the scratch copy's table this one, its indexes named as this one's.

        PostgreSQL renames the indexes (and the primary key's); SQLite cannot rename an index,
        so it drops the copy's and builds them again on the renamed table (its primary key is
        an automatic index that follows the table)."""
        statements = [
            self.drop(table),
            f"ALTER TABLE {scratch.table(table)} RENAME TO {self.bare(table)}",
        ]
        pairs = zip(scratch.index_names(table), self.index_names(table), strict=True)
        if self.dialect.name == "postgresql":
            statements.append(
                f"ALTER INDEX {scratch._qualified(scratch.bare(table) + '_pkey')} "
                f"RENAME TO {self.bare(table)}_pkey"
            )
            statements += [
                f"ALTER INDEX {scratch._qualified(old)} RENAME TO {new}" for old, new in pairs
            ]
            return statements
        statements += [f"DROP INDEX IF EXISTS {old}" for old, _ in pairs]
        return statements + self.create_indexes(table)

    # --- positions -----------------------------------------------------------------------------

    @property
    def position(self) -> str:
        """Where the read models stand: the least of their positions (binds the keys)."""
        return f"SELECT min(position) FROM {self.positions} WHERE view {self.dialect.any_of(1)}"

    @property
    def start_position(self) -> str:
        """A key's first position, unless it has one (binds the key and the position)."""
        m = self.dialect.mark
        return (
            f"INSERT INTO {self.positions} (view, position) VALUES ({m(1)}, {m(2)}) "
            "ON CONFLICT (view) DO NOTHING"
        )

    @property
    def move_positions(self) -> str:
        """Binds the new position, the keys, and the position they must still be at."""
        m = self.dialect.mark
        return (
            f"UPDATE {self.positions} SET position = {m(1)}, updated_at = {self.dialect.now} "
            f"WHERE view {self.dialect.any_of(2)} AND position = {m(3)}"
        )

    @property
    def set_positions(self) -> str:
        """Binds the new position and the keys."""
        return (
            f"UPDATE {self.positions} SET position = {self.dialect.mark(1)}, "
            f"updated_at = {self.dialect.now} WHERE view {self.dialect.any_of(2)}"
        )

    @property
    def forget_positions(self) -> str:
        return f"DELETE FROM {self.positions} WHERE view {self.dialect.any_of(1)}"

    # --- writes --------------------------------------------------------------------------------

    def upsert(self, table: Table) -> str:
        """Insert a row, or update it if it holds an older version (never a newer one)."""
        assert table.version is not None
        names = table.column_names
        marks = ", ".join(self.dialect.mark(n) for n in range(1, len(names) + 1))
        return (
            f"INSERT INTO {self.table(table.name)} AS t ({', '.join(names)}) VALUES ({marks}) "
            f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET "
            + ", ".join(f"{name} = excluded.{name}" for name in table.changing)
            + f" WHERE t.{table.version} < excluded.{table.version}"
        )

    def insert(self, table: Table) -> str:
        names = table.column_names
        marks = ", ".join(self.dialect.mark(n) for n in range(1, len(names) + 1))
        return f"INSERT INTO {self.table(table.name)} ({', '.join(names)}) VALUES ({marks})"

    def delete_prescriptions(self, table: Table) -> str:
        """Binds the prescription ids whose rows go."""
        return (
            f"DELETE FROM {self.table(table.name)} WHERE prescription_id {self.dialect.any_of(1)}"
        )

    # --- reads ---------------------------------------------------------------------------------

    @property
    def encoded_states(self) -> str:
        """The stored states of the prescriptions listed, in id order (binds the ids)."""
        return (
            f"SELECT prescription_id, state FROM {self.table('prescriptions')} "
            f"WHERE prescription_id {self.dialect.any_of(1)} ORDER BY prescription_id"
        )

    @property
    def states_after(self) -> str:
        """The next batch of stored states in id order (binds the last id seen and a limit)."""
        m = self.dialect.mark
        return (
            f"SELECT prescription_id, state FROM {self.table('prescriptions')} "
            f"WHERE prescription_id > {m(1)} ORDER BY prescription_id LIMIT {m(2)}"
        )

    @property
    def prescription_of_dispensation(self) -> str:
        """The prescription a standing dispensation is of (binds the dispensation's id)."""
        return (
            f"SELECT prescription_id FROM {self.table('dispensings')} "
            f"WHERE dispensation_id = {self.dialect.mark(1)} LIMIT 1"
        )

    def page(self, page: Page, by: str, *, resumed: bool) -> str:
        """Binds the value of `by`, the day (if the page has `since`), the previous key (if
        `resumed`), then the limit."""
        assert by in page.table.column_names
        marks = iter(self.dialect.mark(n) for n in range(1, 6))
        query = (
            f"SELECT {page.payload} FROM {self.table(page.table.name)} WHERE {by} = {next(marks)}"
        )
        if page.since is not None:
            query += f" AND {page.since} >= {next(marks)}"
        direction = " DESC" if page.newest_first else ""
        if resumed:
            query += (
                f" AND ({page.at}, {page.tie}) {'<' if page.newest_first else '>'} "
                f"({next(marks)}, {next(marks)})"
            )
        return query + (
            f" ORDER BY {page.at}{direction}, {page.tie}{direction} LIMIT {next(marks)}"
        )


@dataclass(frozen=True)
class Replacement:
    """A replaced table's new rows for the prescriptions a batch touched (whose old rows go)."""

    table: Table
    prescription_ids: list[str]
    rows: list[Row]


def replacements(states: Sequence[Prescription]) -> list[Replacement]:
    """A table is left alone for a prescription that never had a row in it (most batches touch
    prescriptions that were only issued: no inbox, no dispensing, no conversation)."""
    replaced = []
    for table in TABLES.values():
        if table.version is not None:
            continue  # upserted, not replaced
        touched = [s for s in states if table.may_have_rows(s)]
        if touched:
            ids = [s.prescription_id for s in touched]
            replaced.append(Replacement(table, ids, [r for s in touched for r in table.rows_of(s)]))
    return replaced
