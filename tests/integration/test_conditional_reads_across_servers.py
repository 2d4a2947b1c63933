"""Two `ordo serve` processes on one PostgreSQL database: a read on one, with the `ETag` it gave
before, answers what the other just recorded (a dispensing, the patient's opposition), never
304 with the state its own cache held."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.servers import ordo_server
from tools.cast import People

pytestmark = pytest.mark.postgres


def read(base_url: str, number: str, headers: dict[str, str], tag: str) -> httpx.Response:
    return httpx.get(
        f"{base_url}/v1/prescriptions/{number}", headers={**headers, "If-None-Match": tag}
    )


def test_a_read_answers_what_the_other_server_just_recorded(
    postgres_url: str, tmp_path: Path, people: People
) -> None:
    with (
        ordo_server(postgres_url, tmp_path / "one") as (one, _),
        ordo_server(postgres_url, tmp_path / "other") as (other, _),
    ):
        issued = httpx.post(
            f"{one}/v1/prescriptions",
            json=people.prescription_body(3),
            headers=people.as_prescriber(),
        )
        number = issued.json()["prescription_id"]
        pharmacist = read(one, number, people.as_pharmacist(), '"none"')
        prescriber = read(one, number, people.as_prescriber(), '"none"')

        dispensed = httpx.post(
            f"{other}/v1/prescriptions/{number}/dispensations",
            json={"lines": [{"line_no": 1, "quantity": 1}]},
            headers=people.as_pharmacist(),
        )
        after_dispensing = read(one, number, people.as_pharmacist(), pharmacist.headers["etag"])
        unmasked = read(one, number, people.as_prescriber(), prescriber.headers["etag"])
        opposed = httpx.put(
            f"{other}/v1/prescriptions/{number}/execution-view-consent",
            json={"consent": False},
            headers=people.as_patient(),
        )
        masked = read(one, number, people.as_prescriber(), unmasked.headers["etag"])

    assert (issued.status_code, dispensed.status_code, opposed.status_code) == (201, 201, 200)
    assert after_dispensing.status_code == 200
    assert len(after_dispensing.json()["dispensations"]) == 1
    assert (unmasked.status_code, unmasked.json()["execution_visible"]) == (200, True)
    assert masked.status_code == 200
    assert (masked.json()["execution_visible"], masked.json()["dispensations"]) == (False, [])
