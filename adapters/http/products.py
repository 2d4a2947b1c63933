"""`GET /v1/products/{cip13}`: what the medicines catalogue (BDPM) says about a pack.

Answered from the server's in-memory index of the snapshot in force, never with a query.
"""

from __future__ import annotations

from datetime import date

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from adapters.http.call import Call
from adapters.http.problems import Problem
from domain.catalogue import GenericRole, PackFacts, Substance
from domain.errors import DomainError, invalid
from domain.identifiers import Cip13, InvalidIdentifier

NOT_FOUND = DomainError("not_found", "the catalogue knows no such pack")


class GenericGroupView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    label: str


class SubstanceView(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    dosage: str
    reference: str
    nature: str  # SA: active substance; FT: its therapeutic fraction (same link number)
    code: str
    link: int


class ProductView(msgspec.Struct, frozen=True, kw_only=True):
    """The contract's fields first; then what ordo adds (documented here)."""

    cip13: str
    cis: str
    label: str
    pack: str
    narcotic: bool
    secure_prescription: bool
    max_duration_days: int | None
    fraction_days: int | None
    generic_group: GenericGroupView | None
    substances: list[SubstanceView]
    price_cents: int | None
    reimbursement_rate: int | None
    # Additions: tramadol, codeine or dihydrocodeine (secure prescription, 84 days at most,
    # since 1 March 2025); the group member's role; lists I/II; the price with the dispensing
    # fee; whether the pack is marketed; CIS_CPD's condition texts as written; the snapshot.
    assimilated: bool
    generic_role: GenericRole | None
    lists: list[str]
    price_with_fee_cents: int | None
    marketed: bool
    conditions: list[str]
    catalogue_date: date | None
    # Units (tablets, capsules, sachets, doses…) in the pack, read from its label (null when
    # it states none); whether it is a contraceptive (read from its substances).
    units: int | None
    contraceptive: bool


class ProductsController(Controller):
    path = "/v1/products"
    tags = ["catalogue"]  # noqa: RUF012

    @get(
        "/{cip13:str}",
        summary="A pack (CIP13) as the medicines catalogue (BDPM) describes it",
        description="Any authenticated role. 404 `not_found` when the catalogue in force does "
        "not know the pack (or none was imported) or the code is not 13 digits; 422 "
        "`invalid_request` (field `cip13`) for 13 digits with a wrong check digit or not "
        "starting with 34009 (34008… codes are UCD13). `units`: what the pack holds, read "
        "from its label (null when not stated); `contraceptive`: read from its substances.",
        responses={
            404: ResponseSpec(
                Problem, description="unknown pack", media_type="application/problem+json"
            ),
            422: ResponseSpec(
                Problem,
                description="bad CIP13 check digit or prefix",
                media_type="application/problem+json",
            ),
        },
    )
    async def product(
        self,
        call: NamedDependency[Call],
        cip13: str = Parameter(description="the pack's CIP13 code (13 digits)"),
    ) -> ProductView:
        actor, catalogue = call.actor, call.catalogue
        del actor  # any role may read the catalogue; the token was checked
        snapshot = catalogue.snapshot()
        facts = snapshot.facts(_code(cip13))
        if facts is None:
            raise NOT_FOUND
        return product_view(facts, snapshot.snapshot_date)


def _code(text: str) -> str:
    """A code that is not 13 digits names no pack (404); 13 digits with a wrong check digit
    is a mistyped code, answered like any invalid identifier (422, naming the field)."""
    compact = "".join(text.split())
    if len(compact) != 13 or not compact.isascii() or not compact.isdigit():
        raise NOT_FOUND
    try:
        return Cip13(compact).value
    except InvalidIdentifier as error:
        raise invalid(str(error), "cip13") from None


def product_view(facts: PackFacts, catalogue_date: date | None) -> ProductView:
    group = facts.generic_group
    return ProductView(
        cip13=facts.cip13,
        cis=facts.cis,
        label=facts.label,
        pack=facts.pack,
        narcotic=facts.narcotic,
        secure_prescription=facts.secure_prescription,
        max_duration_days=facts.max_duration_days,
        fraction_days=facts.fraction_days,
        generic_group=GenericGroupView(id=group.id, label=group.label) if group else None,
        substances=[_substance(substance) for substance in facts.substances],
        price_cents=facts.price_cents,
        reimbursement_rate=facts.reimbursement_rate,
        assimilated=facts.assimilated,
        generic_role=group.role if group else None,
        lists=list(facts.lists),
        price_with_fee_cents=facts.price_with_fee_cents,
        marketed=facts.marketed,
        conditions=list(facts.conditions),
        catalogue_date=catalogue_date,
        units=facts.units,
        contraceptive=facts.contraceptive,
    )


def _substance(substance: Substance) -> SubstanceView:
    return SubstanceView(
        name=substance.name,
        dosage=substance.dosage,
        reference=substance.reference,
        nature=substance.nature,
        code=substance.code,
        link=substance.link,
    )
