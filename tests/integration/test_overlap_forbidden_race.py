"""On a real PostgreSQL, through 2 server processes: two pharmacies dispensing two "chevauchement
interdit" prescriptions of one patient at once (STILNOX and ZOLPIDEM ARROW, from the shipped
catalogue sample) get exactly one 201, the other 409 narcotic_overlap, round after round: the
patient's coverage stream decides, appended with the dispensing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from adapters.catalogue import SAMPLE_DIR
from adapters.config import Settings
from domain.identifiers import Ins
from tests.conftest import settings_for
from tests.integration.servers import ordo_server
from tests.integration.test_catalogue_import import run_import
from tests.integration.test_postgres_races_and_crashes import pharmacy
from tools.cast import People

pytestmark = pytest.mark.postgres

ZOLPIDEM = ("3400934658570", "3400936388901")  # STILNOX 10 mg and ZOLPIDEM ARROW 10 mg, B/14


def zolpidem_for(patient: str, code: str) -> dict[str, object]:
    return {
        "patient": {"ins": patient},
        "execution_view_consent": True,
        "kind": "secure",
        "lines": [
            {
                "product": {"system": "CIP13", "code": code, "label": "zolpidem 10 mg"},
                "quantity": 2,
                "dosage": "1 comprimé au coucher",
                "duration_days": 28,
            }
        ],
    }


async def zolpidem_round(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], people: People, patient: str
) -> tuple[list[str], list[httpx.Response]]:
    """Two prescriptions of zolpidem of one patient, dispensed at once by two pharmacies."""
    numbers = []
    for code in ZOLPIDEM:
        issued = await clients[0].post(
            "/v1/prescriptions", json=zolpidem_for(patient, code), headers=people.as_prescriber()
        )
        assert issued.status_code == 201, issued.text
        numbers.append(issued.json()["prescription_id"])
    answers = await asyncio.gather(
        *(
            client.post(
                f"/v1/prescriptions/{number}/dispensations",
                json={"lines": [{"line_no": 1, "quantity": 2}]},
                headers=people.as_pharmacist(pharmacy(index)),
            )
            for index, (client, number) in enumerate(zip(clients, numbers, strict=True))
        )
    )
    return numbers, list(answers)


async def zolpidem_rounds(base_url: str, people: People, rounds: int) -> list[list[httpx.Response]]:
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30) as one,
        httpx.AsyncClient(base_url=base_url, timeout=30) as other,
    ):
        outcomes = []
        for round_no in range(rounds):
            patient = Ins.from_body(f"1840275{round_no:06d}").value
            numbers, answers = await zolpidem_round((one, other), people, patient)
            reads = [
                (await one.get(f"/v1/prescriptions/{n}", headers=people.as_insurer())).json()
                for n in numbers
            ]
            assert sum(len(read["dispensations"]) for read in reads) == 1
            outcomes.append(answers)
        return outcomes


def test_two_pharmacies_dispensing_two_zolpidem_prescriptions_at_once_get_exactly_one_201(
    postgres_url: str, tmp_path: Path, people: People
) -> None:
    settings: Settings = settings_for(tmp_path, postgres_url)
    imported = run_import(settings, SAMPLE_DIR, "--date", "2022-06-02")
    assert imported.returncode == 0, imported.stderr
    with ordo_server(postgres_url, tmp_path, workers=2) as (base_url, _):
        outcomes = asyncio.run(zolpidem_rounds(base_url, people, rounds=30))

    for answers in outcomes:
        assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
        (refused,) = [r for r in answers if r.status_code == 409]
        assert refused.json()["code"] == "narcotic_overlap"
        assert "another prescription of zolpidem" in refused.json()["detail"]
