"""On a real PostgreSQL, through real server processes: races between pharmacies, and crashes."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from tests.integration.servers import ordo_server
from tools.cast import People

pytestmark = pytest.mark.postgres


def register(base_url: str, people: People, *quantities: int, duration_days: int = 8) -> str:
    body = people.prescription_body(*quantities)
    for line in cast("list[dict[str, object]]", body["lines"]):
        line["duration_days"] = duration_days
    response = httpx.post(f"{base_url}/v1/prescriptions", json=body, headers=people.as_prescriber())
    assert response.status_code == 201, response.text
    number: str = response.json()["prescription_id"]
    return number


def pharmacy(index: int) -> str:
    from domain.identifiers import Finess  # noqa: PLC0415

    return Finess.from_body(f"{75000000 + index:08d}").value


async def race(base_url: str, people: People, number: str, asks: list[int]) -> list[httpx.Response]:
    """Pharmacy `index` asks `asks[index]` packs of line 1, all at once."""
    limits = httpx.Limits(max_connections=len(asks))
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"/v1/prescriptions/{number}/dispensations",
                    json={"lines": [{"line_no": 1, "quantity": quantity}]},
                    headers=people.as_pharmacist(pharmacy(index)),
                )
                for index, quantity in enumerate(asks)
            )
        )


def test_24_pharmacies_racing_for_5_packs_get_exactly_five_201s(
    postgres_url: str, tmp_path: Path, people: People
) -> None:
    with ordo_server(postgres_url, tmp_path, workers=2) as (base_url, _):
        number = register(base_url, people, 5)

        answers = asyncio.run(race(base_url, people, number, asks=[1] * 24))

        statuses = Counter(response.status_code for response in answers)
        assert statuses == {201: 5, 409: 19}, [r.text for r in answers if r.status_code >= 500]
        assert {r.json()["code"] for r in answers if r.status_code == 409} == {"already_dispensed"}
        read = httpx.get(
            f"{base_url}/v1/prescriptions/{number}", headers=people.as_insurer()
        ).json()
        assert (read["lines"][0]["dispensed"], read["lines"][0]["remaining"]) == (5, 0)
        assert len(read["dispensations"]) == 5
        assert len({d["finess"] for d in read["dispensations"]}) == 5


# 20 packs for 7 days: one dispensing may give them all (one month at a time), and however many
# are out, the treatment stays within the 7 days' margin of the no-stockpiling rule, so only what
# remains limits a request (domain/dispensable.py).
ASKS = [1 + index % 3 for index in range(16)]  # 31 packs asked for 20


def test_racing_for_more_than_one_pack_each_never_oversells(
    postgres_url: str, tmp_path: Path, people: People
) -> None:
    with ordo_server(postgres_url, tmp_path, workers=2) as (base_url, _):
        # A broken check oversells only when the grants do not add up to exactly 20 on the
        # way: three rounds make a lucky pass unlikely.
        for _ in range(3):
            number = register(base_url, people, 20, duration_days=7)
            answers = asyncio.run(race(base_url, people, number, ASKS))
            read = httpx.get(
                f"{base_url}/v1/prescriptions/{number}", headers=people.as_insurer()
            ).json()
            assert_never_oversold(answers, read)


def assert_never_oversold(answers: list[httpx.Response], read: dict[str, Any]) -> None:
    assert all(r.status_code in {201, 409} for r in answers), [r.text for r in answers]
    granted = {pharmacy(i): ASKS[i] for i, r in enumerate(answers) if r.status_code == 201}
    refused = {r.json()["code"] for r in answers if r.status_code == 409}
    assert refused <= {"already_dispensed", "quantity_exceeds_remaining"}
    assert refused and max(granted.values()) > 1, "the race must refuse some, grant several packs"
    assert read["lines"][0]["dispensed"] == sum(granted.values()) <= 20
    # Each 201 is one dispensation of what that pharmacy asked, and nothing else is recorded.
    recorded = {d["finess"]: d["lines"][0]["quantity"] for d in read["dispensations"]}
    assert recorded == granted and len(read["dispensations"]) == len(granted)
    # The 201s were decided one after another: each saw a different total, the last one all.
    totals = sorted(r.json()["lines"][0]["dispensed"] for r in answers if r.status_code == 201)
    assert len(set(totals)) == len(totals) and totals[-1] == read["lines"][0]["dispensed"]


def test_a_retry_after_the_server_died_between_append_and_answer_returns_the_first_answer(
    postgres_url: str, tmp_path: Path, people: People
) -> None:
    request = {"lines": [{"line_no": 1, "quantity": 2}]}
    headers = {**people.as_pharmacist(), "Idempotency-Key": "lgo-retry-1"}
    with ordo_server(postgres_url, tmp_path) as (base_url, _):
        number = register(base_url, people, 3)
    url = f"/v1/prescriptions/{number}/dispensations"

    with ordo_server(postgres_url, tmp_path, failpoint="crash_after_append") as (base_url, process):
        with pytest.raises(httpx.TransportError):
            httpx.post(base_url + url, json=request, headers=headers, timeout=10)
        assert process.wait(timeout=10) == -9  # killed after the append, before any answer

    with ordo_server(postgres_url, tmp_path) as (base_url, _):
        retry = httpx.post(base_url + url, json=request, headers=headers)
        again = httpx.post(base_url + url, json=request, headers=headers)
        history = httpx.get(
            f"{base_url}/v1/prescriptions/{number}/events", headers=people.as_insurer()
        )

    recorded = [e for e in history.json()["events"] if e["type"] == "DispensationRecorded"]
    assert retry.status_code == 201 and again.content == retry.content
    assert len(recorded) == 1
    assert retry.json()["dispensation_id"] == recorded[0]["data"]["dispensation_id"]
    assert retry.json()["lines"] == [{"line_no": 1, "dispensed": 2, "remaining": 1}]


def secure_morphine_for(patient: str) -> dict[str, Any]:
    morphine = {"system": "CIP13", "code": "3400933323523", "label": "Skenan LP 10 mg"}
    return {
        "patient": {"ins": patient},
        "kind": "secure",
        "execution_view_consent": True,
        "lines": [
            {
                "product": morphine,
                "quantity": 4,
                "dosage": "1 gélule matin et soir",
                "duration_days": 28,
                "narcotic": True,
            }
        ],
    }


async def narcotic_round(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient], people: People, patient: str
) -> tuple[list[str], list[httpx.Response]]:
    """Two narcotic prescriptions of one patient, dispensed at once by two pharmacies."""
    numbers = []
    for _ in range(2):
        issued = await clients[0].post(
            "/v1/prescriptions", json=secure_morphine_for(patient), headers=people.as_prescriber()
        )
        assert issued.status_code == 201, issued.text
        numbers.append(issued.json()["prescription_id"])
    answers = await asyncio.gather(
        *(
            client.post(
                f"/v1/prescriptions/{number}/dispensations",
                json={"lines": [{"line_no": 1, "quantity": 4}]},
                headers=people.as_pharmacist(pharmacy(index)),
            )
            for index, (client, number) in enumerate(zip(clients, numbers, strict=True))
        )
    )
    return numbers, list(answers)


async def narcotic_rounds(base_url: str, people: People, rounds: int) -> list[list[httpx.Response]]:
    from domain.identifiers import Ins  # noqa: PLC0415

    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30) as one,
        httpx.AsyncClient(base_url=base_url, timeout=30) as other,
    ):
        outcomes = []
        for round_no in range(rounds):
            patient = Ins.from_body(f"1840175{round_no:06d}").value
            numbers, answers = await narcotic_round((one, other), people, patient)
            reads = [
                (await one.get(f"/v1/prescriptions/{n}", headers=people.as_insurer())).json()
                for n in numbers
            ]
            assert sum(len(read["dispensations"]) for read in reads) == 1
            outcomes.append(answers)
        return outcomes


def test_two_pharmacies_dispensing_two_overlapping_narcotic_prescriptions_at_once(
    postgres_url: str, tmp_path: Path, people: People
) -> None:
    with ordo_server(postgres_url, tmp_path, workers=2) as (base_url, _):
        outcomes = asyncio.run(narcotic_rounds(base_url, people, rounds=50))

    for answers in outcomes:
        assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
        (refused,) = [r for r in answers if r.status_code == 409]
        assert refused.json()["code"] == "narcotic_overlap"


async def bill_all_at_once(
    base_url: str, people: People, dispensations: list[tuple[str, str]], invoice_number: str
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(dispensations))
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"/v1/prescriptions/{number}/dispensations/{dispensation_id}/billing",
                    json={
                        "invoice_number": invoice_number,
                        "lines": [{"line_no": 1, "quantity": 1, "amount_cents": 250}],
                    },
                    headers=people.as_pharmacist(),
                )
                for number, dispensation_id in dispensations
            )
        )


def test_20_billings_racing_for_one_invoice_number_get_exactly_one_201(
    postgres_url: str, tmp_path: Path, people: People
) -> None:
    with ordo_server(postgres_url, tmp_path, workers=2) as (base_url, _):
        dispensations = []
        for _ in range(10):  # two dispensations on each prescription: versions race too
            number = register(base_url, people, 2)
            for _ in range(2):
                answer = httpx.post(
                    f"{base_url}/v1/prescriptions/{number}/dispensations",
                    json={"lines": [{"line_no": 1, "quantity": 1}]},
                    headers=people.as_pharmacist(),
                )
                assert answer.status_code == 201, answer.text
                dispensations.append((number, answer.json()["dispensation_id"]))

        answers = asyncio.run(bill_all_at_once(base_url, people, dispensations, "F-RACE-1"))

        statuses = Counter(response.status_code for response in answers)
        assert statuses == {201: 1, 409: 19}, [r.text for r in answers if r.status_code != 409]
        assert {r.json()["code"] for r in answers if r.status_code == 409} == {
            "invoice_number_used"
        }
        billed = [
            d["dispensation_id"]
            for number in dict.fromkeys(n for n, _ in dispensations)
            for d in httpx.get(
                f"{base_url}/v1/prescriptions/{number}", headers=people.as_insurer()
            ).json()["dispensations"]
            if d["billed"]
        ]
        assert billed == [
            next(r for r in answers if r.status_code == 201).json()["dispensation_id"]
        ]
