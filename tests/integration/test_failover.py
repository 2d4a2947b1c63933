"""The failover drill: the PostgreSQL primary dies under load and its synchronous standby is
promoted; `ordo serve`, given both servers in one multi-host URL, keeps serving.

Given two real servers (a primary and a streaming standby made by `pg_basebackup -R`, commits
synchronous) and ordo on `postgresql://primary,standby/…?target_session_attrs=read-write`,
when pharmacies dispense while the primary is stopped (`pg_ctl stop -m immediate`) and the
standby promoted, then every answer is a 201 or a 503 `database_unavailable` with Retry-After
(never another 5xx), every acknowledged dispensing is on the promoted server, a refused one
retried with its Idempotency-Key is recorded once, and writes resume soon after the promotion.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import missing_service
from tests.integration.replication import Pair, replicated_pair, server_binaries
from tests.integration.servers import ordo_server
from tests.integration.test_kill_mid_group import Ask, count_rows, dispensation_ids, issue_all
from tests.integration.test_postgres_races_and_crashes import pharmacy
from tools.cast import People

pytestmark = pytest.mark.postgres

CLIENTS = 8
BEFORE_FAILOVER = 60  # acknowledged dispensings before the primary dies
AFTER_FAILOVER = 60  # and after the standby's promotion
RETRY_SECONDS = 0.1  # the drill retries sooner than Retry-After, to time the outage finely


@dataclass
class Drill:
    """What the clients saw: answers by status, refusals' codes, when writes came back."""

    statuses: Counter[int] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    promoted_at: float | None = None
    resumed_at: float | None = None
    acknowledged: int = 0

    def answered(self, answer: httpx.Response) -> None:
        self.statuses[answer.status_code] += 1
        if answer.status_code == 503:
            has_retry_after = "retry-after" in answer.headers
            self.refusals[f"{answer.json()['code']} retry-after={has_retry_after}"] += 1
        if answer.status_code == 201:
            self.acknowledged += 1
            if self.promoted_at is not None and self.resumed_at is None:
                self.resumed_at = time.monotonic()


async def dispense_until_acknowledged(
    client: httpx.AsyncClient, people: People, ask: Ask, drill: Drill
) -> None:
    """One dispensing, retried with its Idempotency-Key while the database is unavailable."""
    while ask.dispensation_id is None:
        try:
            answer = await client.post(
                f"/v1/prescriptions/{ask.number}/dispensations",
                json={"lines": [{"line_no": 1, "quantity": 1}]},
                headers={
                    **people.as_pharmacist(pharmacy(ask.finess_index)),
                    "Idempotency-Key": ask.key,
                },
            )
        except httpx.TransportError as error:  # ordo itself must not fail
            drill.statuses[-1] += 1
            raise AssertionError(f"ordo did not answer: {error!r}") from error
        drill.answered(answer)
        if answer.status_code == 201:
            ask.dispensation_id = answer.json()["dispensation_id"]
        elif answer.status_code == 503:
            await asyncio.sleep(RETRY_SECONDS)
        else:
            return


async def fail_over(pair: Pair, drill: Drill) -> None:
    """Once enough is acknowledged: the primary dies, the standby is promoted."""
    while drill.acknowledged < BEFORE_FAILOVER:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    await asyncio.to_thread(pair.stop_primary)
    await asyncio.sleep(0.5)  # commands meet a dead primary and a standby that refuses writes
    await asyncio.to_thread(pair.promote)
    drill.promoted_at = time.monotonic()


async def load_through_failover(
    base_url: str, people: People, numbers: list[str], pair: Pair
) -> tuple[list[Ask], Drill]:
    asks: list[Ask] = []
    drill = Drill()

    async def client_loop(index: int, client: httpx.AsyncClient) -> None:
        round_no = 0
        while drill.resumed_at is None or drill.acknowledged < BEFORE_FAILOVER + AFTER_FAILOVER:
            ask = Ask(numbers[(index + round_no) % len(numbers)], f"fo-{index}-{round_no}", index)
            asks.append(ask)
            await dispense_until_acknowledged(client, people, ask, drill)
            if ask.dispensation_id is None:
                return  # an answer the drill does not expect: reported by the caller
            round_no += 1

    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        await asyncio.wait_for(
            asyncio.gather(
                fail_over(pair, drill), *(client_loop(i, client) for i in range(CLIENTS))
            ),
            timeout=60,
        )
    return asks, drill


def read_back(base_url: str, people: People, numbers: list[str]) -> set[str]:
    """Every dispensation the API shows on the prescriptions, after the failover."""
    shown: set[str] = set()
    for number in numbers:
        answer = httpx.get(f"{base_url}/v1/prescriptions/{number}", headers=people.as_insurer())
        assert answer.status_code == 200, answer.text
        shown.update(d["dispensation_id"] for d in answer.json()["dispensations"])
    return shown


def test_a_promoted_standby_takes_over_without_losing_an_acknowledged_dispensing(
    tmp_path: Path, people: People
) -> None:
    bin_dir = server_binaries()
    if bin_dir is None:
        missing_service("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)")
        return
    with replicated_pair(bin_dir) as pair, ordo_server(pair.url, tmp_path) as (base_url, _):
        numbers = asyncio.run(issue_all(base_url, people, CLIENTS))
        asks, drill = asyncio.run(load_through_failover(base_url, people, numbers, pair))

        assert set(drill.statuses) <= {201, 503}, drill.statuses
        assert set(drill.refusals) <= {"database_unavailable retry-after=True"}, drill.refusals
        assert drill.statuses[503] > 0, "the failover must have refused some commands"
        assert drill.promoted_at is not None and drill.resumed_at is not None
        resumed_after = drill.resumed_at - drill.promoted_at
        print(f"writes resumed {resumed_after:.2f} s after the promotion; answers {drill.statuses}")
        assert resumed_after < 10.0

        acknowledged = [ask.dispensation_id for ask in asks if ask.dispensation_id is not None]
        assert len(acknowledged) == len(asks)  # every dispensing answered 201 in the end
        assert set(acknowledged) <= read_back(base_url, people, numbers)
        stored = asyncio.run(dispensation_ids(pair.standby.url))
        assert sorted(stored) == sorted(acknowledged)  # each once, retried or not
        rows = asyncio.run(count_rows(pair.standby.url))
        assert rows == dict.fromkeys(rows, len(asks))
