"""Assurance Maladie reconciliation batches (contract.md, "Assurance Maladie (reconciliation)").

The rules are the domain's (`domain.reconciliation`, pure); here is the I/O around them: NDJSON
in (`ndjson`); batches, chunks, items and claimed invoice numbers in a store (the tables and
their statements described once in `tables`, the common code in `store.BatchStore`, what each
database does its own way in `postgres` and `sqlite`); the prescriptions' states from the read
models; and the processing that ties them (`processing`).
"""

from __future__ import annotations

from typing import Any

from adapters.readmodels import ReadModels
from adapters.readmodels.postgres import PostgresReadModels
from adapters.reconciliation.postgres import PostgresBatches
from adapters.reconciliation.processing import Reconciliation
from adapters.reconciliation.sqlite import SqliteBatches
from adapters.reconciliation.store import BatchStore

SQLITE_FILE = "reconciliation.sqlite3"


def open_store(read_models: ReadModels) -> BatchStore:
    """Beside the views: the same PostgreSQL schema, or a SQLite file next to views.sqlite3."""
    views = read_models.store
    if isinstance(views, PostgresReadModels):
        return PostgresBatches(views.pool, views.schema)
    return SqliteBatches(views.path.with_name(SQLITE_FILE))


def reconciliation_for(read_models: ReadModels, **options: Any) -> Reconciliation:
    return Reconciliation(open_store(read_models), read_models, **options)


__all__ = ["Reconciliation", "open_store", "reconciliation_for"]
