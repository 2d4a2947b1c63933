"""The lists of contract.md, read from the projections: they may lag the log by up to 1 s."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency

from adapters.http.call import Call
from adapters.http.pages import PageRequest, cursor_at
from adapters.permissions import PERMISSIONS, allow
from adapters.readmodels import ReadModels
from adapters.readmodels.queries import CursorKey
from domain.actors import Actor
from domain.errors import DomainError
from domain.events import Product, TransmissionSender
from domain.prescription import Prescription
from domain.units import PackSizes
from domain.views import PatientRef, PrescriptionView, display_number, view_of
from projections.folds import InboxEntry, InboxLine, counted, left_to_dispense, packs_named

# The most reads of `limit + 1` inbox rows one page makes: a page that meets more rows whose
# units are all given than that ends short of `limit`, its cursor after the last row read.
INBOX_READS = 4


class PrescriptionPage(msgspec.Struct, frozen=True):
    items: list[PrescriptionView]
    next_cursor: str | None


class InboxItem(msgspec.Struct, frozen=True, kw_only=True):
    prescription_id: str
    transmitted_at: datetime
    message: str
    patient: PatientRef
    expires_on: date
    lines: tuple[InboxLine, ...]
    sent_by: Annotated[
        TransmissionSender,
        msgspec.Meta(description="who sent it: the patient, or the prescriber who wrote it"),
    ]


class InboxPage(msgspec.Struct, frozen=True):
    items: list[InboxItem]
    next_cursor: str | None


def provide_lists(call: NamedDependency[Call], page: NamedDependency[PageRequest]) -> Lists:
    service = call.service
    return Lists(
        call.read_models,
        call.actor,
        service.clock().today,
        page,
        with_units=service.with_units,
        pack_sizes=service.pack_sizes,
    )


class Lists:
    """One call on a list: who asks, on which day, for which page."""

    def __init__(
        self,
        read_models: ReadModels,
        actor: Actor,
        today: date,
        page: PageRequest,
        *,
        with_units: Callable[[Prescription], Prescription],
        pack_sizes: Callable[[Iterable[Product]], PackSizes | None],
    ) -> None:
        self.read_models = read_models
        self.actor = actor
        self.today = today
        self.page = page
        # So that an item, and an inbox line, counts as `GET /v1/prescriptions/{id}` does.
        self.with_units = with_units
        self.pack_sizes = pack_sizes

    def own(self, list_name: str, identity: str | None) -> str:
        """The caller's own identifier, the only one a list is ever read for."""
        allow(self.actor, list_name)
        if identity is None:  # a token of that role always carries it
            raise DomainError("forbidden", PERMISSIONS[list_name].refusal)
        return identity

    async def prescriptions(
        self, list_name: str, by: Literal["prescriber_rpps", "patient_ins"], identity: str | None
    ) -> PrescriptionPage:
        own, page = self.own(list_name, identity), self.page
        found = await self.read_models.store.prescriptions_page(
            by, own, page.after(CursorKey), page.fetch
        )
        return PrescriptionPage(
            items=[
                view_of(self.with_units(state), self.actor, self.today)
                for state in page.items(found)
            ],
            next_cursor=page.next_cursor(found, _key_of),
        )

    async def inbox(self) -> InboxPage:
        """Filled up to `limit` by reading on along the keyset past the rows whose units are all
        given (the fold keeps them, not knowing the catalogue), at most `INBOX_READS` reads."""
        finess, page = self.own("pharmacy_inbox", self.actor.finess), self.page
        after, shown = page.after(CursorKey), list[InboxEntry]()
        for _ in range(INBOX_READS):
            found = await self.read_models.store.inbox_page(finess, self.today, after, page.fetch)
            shown += self.left_in_units(found)
            if len(shown) > page.limit or len(found) < page.fetch:
                return _inbox_page(page.items(shown), page.next_cursor(shown, _entry_key))
            after = _entry_key(found[-1])
        # Every row up to `after` was read, so the next page starts there: none twice, none skipped.
        assert after is not None  # set by each read that did not end the page
        return _inbox_page(shown, cursor_at(after))

    def left_in_units(self, found: Sequence[InboxEntry]) -> Iterator[InboxEntry]:
        """The rows with something left once counted with the catalogue in force."""
        sizes = self.pack_sizes(packs_named(found))
        counted_now = (counted(entry, sizes) for entry in found)
        return (entry for entry in counted_now if left_to_dispense(entry))


class ListsController(Controller):
    path = "/v1"
    tags = ["lists"]  # noqa: RUF012

    @get("/prescribers/me/prescriptions", summary="The prescriber's prescriptions, newest first")
    async def prescriber_list(self, lists: NamedDependency[Lists]) -> PrescriptionPage:
        return await lists.prescriptions("prescriber_list", "prescriber_rpps", lists.actor.rpps)

    @get("/patients/me/prescriptions", summary="The patient's prescriptions, newest first")
    async def patient_list(self, lists: NamedDependency[Lists]) -> PrescriptionPage:
        return await lists.prescriptions("patient_list", "patient_ins", lists.actor.ins)

    @get(
        "/pharmacies/me/inbox",
        summary="Prescriptions sent to the pharmacy, oldest first",
        description="Each line says what is left as `GET /v1/prescriptions/{id}` counts it: "
        "`remaining` in packs of the prescribed size, `remaining_units` on a line counted in "
        "units (the catalogue knows its packs' units). A prescription leaves once nothing is "
        "left (in units where counted in units) or it is cancelled.",
    )
    async def inbox(self, lists: NamedDependency[Lists]) -> InboxPage:
        return await lists.inbox()


def _key_of(state: Prescription) -> CursorKey:
    return CursorKey(state.issued_at, state.prescription_id)


def _entry_key(entry: InboxEntry) -> CursorKey:
    return CursorKey(entry.transmitted_at, entry.prescription_id)


def _inbox_page(entries: Sequence[InboxEntry], next_cursor: str | None) -> InboxPage:
    return InboxPage(items=[_inbox_item(entry) for entry in entries], next_cursor=next_cursor)


def _inbox_item(entry: InboxEntry) -> InboxItem:
    return InboxItem(
        prescription_id=display_number(entry.prescription_id),
        transmitted_at=entry.transmitted_at,
        message=entry.message,
        patient=PatientRef(ins=entry.patient_ins),
        expires_on=entry.expires_on,
        lines=entry.lines,
        sent_by=entry.sent_by,
    )
