"""The counter scenes: each rule of how much may be dispensed now, played at a pharmacy's
counter on prescriptions of its own (a narcotic in fractions, a refused overlap, a late
narcotic reduced to the days left, a renewal month by month, a withdrawal), every answer
checked against what `GET …/dispensable` said."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from tools.cast import drawn_patient
from tools.demo.client import Api, expect
from tools.demo.plan import MORPHINE, STANDARD, Cast, Medicine, Pharmacy

LEVOTHYROXINE = STANDARD[2]  # 3 packs for 90 days: one a month


@dataclass(frozen=True)
class RuleShown:
    rule: str
    prescription_id: str
    outcome: str


class _Desk:
    """One pharmacy's counter for the rules' showcase: read what may be given, then give it."""

    def __init__(self, api: Api, pharmacy: Pharmacy) -> None:
        self.api = api
        self.token = api.tokens.pharmacist(pharmacy.finess, pharmacy.pharmacists[0])

    async def allowed(self, number: str, line_no: int = 1) -> dict[str, Any]:
        url = f"/v1/prescriptions/{number}/dispensable"
        answer = await self.api.json("how much now", "GET", url, self.token)
        line: dict[str, Any] = answer["lines"][line_no - 1]
        return line

    async def give(self, number: str, packs: int) -> dict[str, Any]:
        body = {"lines": [{"line_no": 1, "quantity": packs}]}
        url = f"/v1/prescriptions/{number}/dispensations"
        return await self.api.json("dispense (rules)", "POST", url, self.token, body)


async def show_rules(api: Api, cast: Cast, today: date) -> list[RuleShown]:
    """Each rule of contract v1.1 at a counter, checked against what `dispensable` says."""
    desk, other_desk = _Desk(api, cast.pharmacies[0]), _Desk(api, cast.pharmacies[1])
    fresh = random.Random()
    patient, late_patient, chronic_patient = (drawn_patient(fresh).value for _ in range(3))
    shown = [await _fractions(api, desk, cast, patient, today)]
    shown.append(await _overlap(api, other_desk, cast, patient, today))
    shown.append(await _late_narcotic(api, desk, cast, late_patient, today))
    renewal, number = await _renewal(api, desk, cast, chronic_patient, today)
    shown += [renewal, await _withdrawal(api, desk, number)]
    return shown


async def _prescribe(
    api: Api, cast: Cast, patient: str, medicine: Medicine, issued_on: date, **extra: Any
) -> str:
    body = {
        "patient": {"ins": patient},
        "issued_on": issued_on.isoformat(),
        "kind": "secure" if medicine.narcotic else "standard",
        "execution_view_consent": True,
        "lines": [
            {
                "product": medicine.product,
                "quantity": medicine.quantity,
                "dosage": medicine.dosage,
                "duration_days": medicine.duration_days,
                "narcotic": medicine.narcotic,
                **extra,
            }
        ],
    }
    token = api.tokens.prescriber(cast.prescribers[0])
    issued = await api.json("issue prescription", "POST", "/v1/prescriptions", token, body)
    number: str = issued["prescription_id"]
    return number


async def _fractions(api: Api, desk: _Desk, cast: Cast, patient: str, today: date) -> RuleShown:
    number = await _prescribe(api, cast, patient, MORPHINE, today, fraction_days=7)
    now = await desk.allowed(number)
    expect(now["max_quantity"] == 1, f"a 7-day fraction of morphine is 1 pack, not {now}")
    await desk.give(number, 1)
    then = await desk.allowed(number)
    expected = today + timedelta(days=6)
    expect(then["next_on"] == expected.isoformat(), f"next fraction on {then}, not {expected}")
    outcome = f"28 days in fractions of 7: 1 pack now, the next fraction from {then['next_on']}"
    return RuleShown("narcotic in fractions", number, outcome)


async def _overlap(api: Api, desk: _Desk, cast: Cast, patient: str, today: date) -> RuleShown:
    number = await _prescribe(api, cast, patient, MORPHINE, today)
    url = f"/v1/prescriptions/{number}/dispensations"
    body = {"lines": [{"line_no": 1, "quantity": 1}]}
    await api.refused("refused as the rules say", url, desk.token, body, code="narcotic_overlap")
    outcome = "a second morphine prescription, another pharmacy: 409 narcotic_overlap"
    return RuleShown("no overlap between narcotic prescriptions", number, outcome)


async def _late_narcotic(api: Api, desk: _Desk, cast: Cast, patient: str, today: date) -> RuleShown:
    number = await _prescribe(api, cast, patient, MORPHINE, today - timedelta(days=10))
    now = await desk.allowed(number)
    # 4 packs for 28 days (7 days a pack), presented on day 10: 18 days left, 2 whole packs.
    expect(now["max_quantity"] == 2, f"18 days left of 28 is 2 packs, not {now}")
    await desk.give(number, 2)
    outcome = "presented 10 days late: 2 packs of 4, the 18 days left of 28"
    return RuleShown("narcotic presented late (3-day rule)", number, outcome)


async def _renewal(
    api: Api, desk: _Desk, cast: Cast, patient: str, today: date
) -> tuple[RuleShown, str]:
    number = await _prescribe(api, cast, patient, LEVOTHYROXINE, today)
    now = await desk.allowed(number)
    expect(now["max_quantity"] == 1, f"one month of 3 packs for 90 days is 1 pack, not {now}")
    await desk.give(number, 1)
    then = await desk.allowed(number)
    expected = today + timedelta(days=23)  # covered 30 days, collected up to 7 days early
    expect(then["next_on"] == expected.isoformat(), f"next month on {then}, not {expected}")
    outcome = f"3 packs for 90 days: 1 now, the next from {then['next_on']}"
    return RuleShown("renewal month by month", number, outcome), number


async def _withdrawal(api: Api, desk: _Desk, number: str) -> RuleShown:
    path = f"/v1/prescriptions/{number}"
    seen = await api.json("read as pharmacist", "GET", path, desk.token)
    dispensation_id = seen["dispensations"][0]["dispensation_id"]
    url = f"{path}/dispensations/{dispensation_id}/withdrawal"
    body = {"reason": "Saisie sur la mauvaise ordonnance"}
    after = await api.json("withdraw", "POST", url, desk.token, body)
    expect(after["lines"][0]["remaining"] == 3, "a withdrawn dispensing still counts")
    expect(after["dispensations"][0]["withdrawn"] is True, "the dispensing is not withdrawn")
    outcome = "the month's pack withdrawn as recorded in error: 3 packs left again"
    return RuleShown("withdrawal of a dispensing recorded in error", number, outcome)
