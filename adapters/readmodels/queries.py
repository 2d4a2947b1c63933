"""What the read models answer, the same on both stores: each store only runs the statements
(`_fetch`) that `tables.ReadModelSql` renders for its dialect."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Collection
from datetime import date, datetime
from typing import Any, Literal

import msgspec

from adapters.readmodels.rows import conversation_decoder, inbox_decoder, state_decoder
from adapters.readmodels.tables import (
    CONVERSATIONS_PAGE,
    INBOX_PAGE,
    PRESCRIPTIONS_PAGE,
    Page,
    ReadModelSql,
)
from domain.conversation_state import Conversation
from domain.prescription import Prescription
from projections.folds import InboxEntry

STATES_BATCH = 2000


class CursorKey(msgspec.Struct, frozen=True, array_like=True):
    """Where a page of a list ends: a time, then an id, so that items arriving while a client
    pages never shift the pages it has not read yet (the HTTP cursor encodes it)."""

    at: datetime
    prescription_id: str


class ReadModelQueries(ABC):
    sql: ReadModelSql

    @abstractmethod
    async def _fetch(self, query: str, params: list[Any]) -> list[Any]:
        """The rows of one read-only statement."""

    async def encoded_states(self, ids: Collection[str]) -> dict[str, bytes]:
        """The stored MessagePack states of these prescriptions, undecoded (reconciliation
        decodes only the parts it needs)."""
        if not ids:
            return {}
        rows = await self._fetch(self.sql.encoded_states, [self.sql.dialect.listed(ids)])
        return {row[0]: row[1] for row in rows}

    async def all_states(self, batch: int = STATES_BATCH) -> AsyncIterator[Prescription]:
        """Every prescription's state in id order, read `batch` at a time."""
        after = ""
        while rows := await self._fetch(self.sql.states_after, [after, batch]):
            for row in rows:
                yield state_decoder.decode(row[1])
            after = rows[-1][0]

    async def prescriptions_page(
        self,
        by: Literal["prescriber_rpps", "patient_ins"],
        value: str,
        after: CursorKey | None,
        limit: int,
    ) -> list[Prescription]:
        """Newest first; `after` is the key of the last item of the previous page."""
        payloads = await self._page(PRESCRIPTIONS_PAGE, by, [value], after, limit)
        return [state_decoder.decode(payload) for payload in payloads]

    async def prescription_of_dispensation(self, dispensation_id: str) -> str | None:
        """The prescription a dispensation not withdrawn is of (FHIR names a dispensation
        without its prescription)."""
        rows = await self._fetch(self.sql.prescription_of_dispensation, [dispensation_id])
        return str(rows[0][0]) if rows else None

    async def inbox_page(
        self, finess: str, today: date, after: CursorKey | None, limit: int
    ) -> list[InboxEntry]:
        """Oldest transmission first; what expired before today is left out."""
        payloads = await self._page(INBOX_PAGE, "finess", [finess, today], after, limit)
        return [inbox_decoder.decode(payload) for payload in payloads]

    async def conversations_page(
        self,
        by: Literal["finess", "patient_ins"],
        value: str,
        after: CursorKey | None,
        limit: int,
    ) -> list[Conversation]:
        """Newest activity first; `after` is the key of the last item of the previous page."""
        payloads = await self._page(CONVERSATIONS_PAGE, by, [value], after, limit)
        return [conversation_decoder.decode(payload) for payload in payloads]

    async def _page(
        self, page: Page, by: str, values: list[Any], after: CursorKey | None, limit: int
    ) -> list[bytes]:
        resumed = [] if after is None else [after.at, after.prescription_id]
        query = self.sql.page(page, by, resumed=after is not None)
        params = [self.sql.dialect.value(v) for v in [*values, *resumed, limit]]
        return [row[0] for row in await self._fetch(query, params)]
