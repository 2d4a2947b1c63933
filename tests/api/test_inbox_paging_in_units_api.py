"""The pharmacy's inbox paged when some prescriptions are used up in units only, on SQLite and
PostgreSQL with the shipped sample of the public database imported: Levothyrox 25 µg in boxes of
30 (3400930065556) and of 90 (3400930065570). The fold keeps such a prescription (it counts in
packs), the read leaves it out and reads on, so every page is full until the last and the pages
together hold each prescription with something left exactly once."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

import pytest

from adapters.bootstrap import read_models_for
from adapters.config import Settings
from adapters.http import lists
from domain.views import display_number
from projections.folds import InboxEntry
from tests.api.test_catalogue_rules_api import give, pack
from tests.api.test_conversations_api import rebuild_everything, transmit
from tests.api.test_units_api import LEVOTHYROX_30, LEVOTHYROX_90, written
from tests.api.test_units_remainders_api import counter, projected
from tests.conftest import Client
from tools.cast import People

__all__ = ["counter"]  # the fixture: the API with the sample catalogue imported


def sent_in_order(client: Client, people: People) -> tuple[list[str], list[str]]:
    """Five prescriptions sent to the pharmacy in this order: the 1st and 3rd (three boxes of
    30) given a box of 90, so used up in units; the 4th (a box of 90) given a box of 30, so 60
    tablets left though its one box is given; the 2nd and 5th untouched. Returns (all five,
    those with something left), once the projections show every dispensing."""
    used_up = [written(client, people, LEVOTHYROX_30, 3, 90) for _ in range(2)]
    boxes_of_30 = [written(client, people, LEVOTHYROX_30, 3, 90) for _ in range(2)]
    box_of_90 = written(client, people, LEVOTHYROX_90, 1, 90)
    numbers = [used_up[0], boxes_of_30[0], used_up[1], box_of_90, boxes_of_30[1]]
    for number in numbers:
        transmit(client, people, number, people.pharmacy)
    for number in used_up:
        assert give(client, people, number, 1, product=pack(LEVOTHYROX_90)).status_code == 201
    assert give(client, people, box_of_90, 1, product=pack(LEVOTHYROX_30)).status_code == 201
    for number in [*used_up, box_of_90]:
        projected(client, people, number)
    return numbers, [boxes_of_30[0], box_of_90, boxes_of_30[1]]


def pages(client: Client, people: People, limit: int) -> list[dict[str, Any]]:
    """Every page of the inbox, following `next_cursor` until it is null."""
    read, params = [], {"limit": limit}
    while True:
        response = client.get(
            "/v1/pharmacies/me/inbox", params=params, headers=people.as_pharmacist()
        )
        assert response.status_code == 200, response.text
        read.append(response.json())
        if read[-1]["next_cursor"] is None:
            return read
        params = {"limit": limit, "cursor": read[-1]["next_cursor"]}


def numbers_of(page: dict[str, Any]) -> list[str]:
    return [item["prescription_id"] for item in page["items"]]


def test_every_inbox_page_is_full_until_the_last_and_the_pages_hold_what_is_left(
    counter: Client, people: People
) -> None:
    _, left = sent_in_order(counter, people)

    read = pages(counter, people, limit=2)

    assert [numbers_of(page) for page in read] == [left[:2], left[2:]]
    (units_left,) = [item for item in read[0]["items"] if item["prescription_id"] == left[1]]
    assert (units_left["lines"][0]["remaining"], units_left["lines"][0]["remaining_units"]) == (
        0,
        60,
    )


def test_a_page_that_reads_its_bound_ends_after_the_last_row_read(
    counter: Client, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One read of three rows (limit 2): the 1st is used up, so the first page holds one item
    and its cursor starts the next page after the 3rd, which it read and left out."""
    monkeypatch.setattr(lists, "INBOX_READS", 1)
    _, left = sent_in_order(counter, people)

    read = pages(counter, people, limit=2)

    assert [numbers_of(page) for page in read] == [left[:1], left[1:]]


async def inbox_rows(settings: Settings, finess: str) -> list[InboxEntry]:
    """The pharmacy's rows as the read model stores them, the used-up ones included."""
    async with read_models_for(settings) as read_models:
        return await read_models.store.inbox_page(finess, date.today(), None, 100)


def test_a_rebuild_gives_the_same_inbox_rows(
    counter: Client, settings: Settings, people: People
) -> None:
    numbers, _ = sent_in_order(counter, people)
    incremental = asyncio.run(inbox_rows(settings, people.pharmacy))

    asyncio.run(rebuild_everything(settings))

    assert [display_number(row.prescription_id) for row in incremental] == numbers
    assert asyncio.run(inbox_rows(settings, people.pharmacy)) == incremental
