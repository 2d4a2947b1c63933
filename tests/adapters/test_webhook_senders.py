"""The deliverer's HTTP clients, one per subscription: reused while it delivers, closed once no
delivery used it for `IDLE_CLIENT_SECONDS` (a deleted subscription's client does not stay open
for the life of the process)."""

from __future__ import annotations

import asyncio

from adapters.webhooks.run import IDLE_CLIENT_SECONDS, Senders


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_subscription_reuses_its_client_while_it_delivers() -> None:
    async def scenario() -> None:
        clock = Clock()
        senders = Senders(timeout=1, clock=clock)
        first = senders.of("sub-a")
        clock.now += IDLE_CLIENT_SECONDS - 1
        assert senders.of("sub-a") is first
        clock.now += IDLE_CLIENT_SECONDS - 1
        assert await senders.close_idle() == 0  # used a moment ago
        assert not first.is_closed
        await senders.aclose()
        assert first.is_closed

    asyncio.run(scenario())


def test_a_client_no_delivery_used_for_a_while_is_closed_and_the_next_delivery_opens_another() -> (
    None
):
    async def scenario() -> None:
        clock = Clock()
        senders = Senders(timeout=1, clock=clock)
        deleted, busy = senders.of("sub-deleted"), senders.of("sub-busy")
        clock.now += IDLE_CLIENT_SECONDS / 2
        senders.of("sub-busy")
        clock.now += IDLE_CLIENT_SECONDS / 2 + 1

        assert await senders.close_idle() == 1

        assert deleted.is_closed and not busy.is_closed
        again = senders.of("sub-deleted")
        assert again is not deleted and not again.is_closed
        await senders.aclose()

    asyncio.run(scenario())
