"""Givens shared by the tests of the PostgreSQL store: people, prescriptions, started stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec

from adapters.http.schemas import DispenseBody, IssueBody
from adapters.service import PrescriptionService
from adapters.store.postgres import PostgresEventStore
from domain.actors import Actor
from domain.identifiers import Finess
from tools.cast import People

PEOPLE = People()
PRESCRIBER = Actor(role="prescriber", subject="dr", rpps=PEOPLE.prescriber)


def pharmacist(index: int) -> Actor:
    finess = Finess.from_body(f"{75000000 + index:08d}").value
    return Actor(role="pharmacist", subject=f"ph-{index}", rpps=PEOPLE.pharmacist, finess=finess)


def one_pack() -> DispenseBody:
    return msgspec.convert({"lines": [{"line_no": 1, "quantity": 1}]}, DispenseBody)


async def issue(service: PrescriptionService, packs: int) -> str:
    body = msgspec.convert(PEOPLE.prescription_body(packs), IssueBody)
    state = await service.issue(PRESCRIBER, body.command)
    return state.prescription_id


@asynccontextmanager
async def started_stores(
    database_url: str, count: int = 1
) -> AsyncIterator[list[PostgresEventStore]]:
    """`count` stores on one database, as that many server processes would hold, closed after."""
    stores = [PostgresEventStore(database_url) for _ in range(count)]
    try:
        for store in stores:
            await store.start()
        yield stores
    finally:
        for store in stores:
            await store.close()
