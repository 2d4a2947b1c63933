"""`scripts/bench dispensing`'s locked SQL baseline on a real PostgreSQL: the API run's seed is
copied into a schema of its own through the store's chained append (the log refuses an unchained
row), and the baseline's dispensing appends to it as the app would."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import psycopg
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.config import with_schema
from tests.conftest import settings_for
from tools.bench.baseline import prepare_baseline
from tools.bench.servers import Scratch
from tools.cast import People


def seeded(url: str, data_dir: Path, people: People) -> None:
    """Three prescriptions issued and one dispensed through the API, as the benchmark seeds."""
    with TestClient(build_app(settings_for(data_dir, url))) as client:
        numbers = []
        for _ in range(3):
            issued = client.post(
                "/v1/prescriptions", json=people.prescription_body(), headers=people.as_prescriber()
            )
            assert issued.status_code == 201, issued.text
            numbers.append(issued.json()["prescription_id"])
        dispensed = client.post(
            f"/v1/prescriptions/{numbers[0]}/dispensations",
            json={"lines": [{"line_no": 1, "quantity": 1}]},
            headers=people.as_pharmacist(),
        )
        assert dispensed.status_code == 201, dispensed.text


def test_the_seed_is_copied_chained_and_the_baseline_appends_to_it(
    postgres_server_url: str, tmp_path: Path, people: People
) -> None:
    scratch = Scratch(postgres_server_url)
    try:
        source = scratch.create()
        seeded(with_schema(postgres_server_url, source), tmp_path, people)

        base = prepare_baseline(scratch, source)

        assert len(base.ids) == 3
        assert base.topic.startswith("DispensationRecorded")
        with psycopg.connect(postgres_server_url) as conn:
            row = conn.execute(
                f'SELECT count(*), count(hash) FROM "{base.schema}".ordo_events'
            ).fetchone()
        assert row == (3, 3)  # every copied row chained

        async def one_dispensing() -> int:
            conn = await asyncpg.connect(base.dsn)
            try:
                await conn.fetch(base.append, [base.ids[1]], [2], [base.topic], [base.state])
                return len(await conn.fetch(base.select, base.ids[1]))
            finally:
                await conn.close()

        assert asyncio.run(one_dispensing()) == 2
    finally:
        scratch.drop_all()
