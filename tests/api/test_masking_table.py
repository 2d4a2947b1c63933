"""The privacy promise as one table: who sees what of a prescription, in every state.

contract.md, "Patient opposition": when the patient opposed it, the prescriber reads
`execution_visible: false`, no dispensations nor adaptations, `dispensed`, `remaining` and
`covered_until` null, the presentation deadline as `expires_on`, and a status that is never
`partially_dispensed` nor `dispensed`. Pharmacists, the patient and the insurer always see
execution data. The lists show each item exactly as the single read shows it to the same
caller; the inbox shows a pharmacy what remains while something remains.

Every status × consent × role is played through HTTP on both stores (the `client` fixture),
and each answer is compared whole, field by field, with what the table says it must be.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

import msgspec
import pytest

from domain.prescription import add_months
from tests.api.test_dispensing_rules_api import travel
from tests.api.test_lists_api import eventually
from tests.api.test_prescriptions_api import dispense, issue
from tests.conftest import Client
from tools.cast import People

Role = Literal["prescriber", "pharmacist", "patient", "insurer"]
ROLES: tuple[Role, ...] = ("prescriber", "pharmacist", "patient", "insurer")
PACKS = 3  # paracetamol, 8 days: all three may be handed over at once


class Case(msgspec.Struct, frozen=True):
    """One status and what reading it shows, with execution visible and hidden."""

    status: str  # what a caller who sees execution reads
    under_opposition: str  # what the prescriber reads when the patient opposed
    dispensed: int
    remaining: int
    in_inbox: bool


# The promise. A row per status; the prescriber under opposition reads the second column.
#     status                          read when hidden   dispensed remaining in the inbox
CASES = {
    "active": Case("active", "active", 0, 3, True),
    "partially_dispensed": Case("partially_dispensed", "active", 1, 2, True),
    "dispensed": Case("dispensed", "active", 3, 0, False),
    "cancelled": Case("cancelled", "cancelled", 1, 0, False),
    "expired": Case("expired", "expired", 1, 2, False),
}

# Who sees execution data (dispensed, remaining, covered_until, dispensations, adaptations, the
# real status and expires_on), by role and the patient's consent.
SEES_EXECUTION: dict[tuple[Role, bool], bool] = {
    ("prescriber", True): True,
    ("prescriber", False): False,
    ("pharmacist", True): True,
    ("pharmacist", False): True,
    ("patient", True): True,
    ("patient", False): True,
    ("insurer", True): True,
    ("insurer", False): True,
}

# Where each role finds the prescription besides the single read.
LISTS: dict[Role, str | None] = {
    "prescriber": "/v1/prescribers/me/prescriptions",
    "patient": "/v1/patients/me/prescriptions",
    "pharmacist": None,  # the inbox, below
    "insurer": None,
}

# Values that change from run to run: the table says only whether they are there.
VARYING = {"dispensation_id", "dispensed_at", "recorded_at", "covered_until", "transmitted_at"}
THERE = "<there>"


def stable(value: Any) -> Any:
    """The answer with each varying value replaced by THERE (null stays null)."""
    if isinstance(value, dict):
        return {
            key: THERE if key in VARYING and item is not None else stable(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


def play(client: Client, people: People, case: Case, consent: bool) -> dict[str, Any]:
    """Bring a prescription to `case`: sent to our pharmacy, dispensed by another one, adapted;
    the patient opposes last, when there is something to hide. Returns the issuing answer."""
    issued = issue(client, people, PACKS)
    number = issued["prescription_id"]
    sent = client.post(
        f"/v1/prescriptions/{number}/transmissions",
        json={"finess": people.pharmacy, "message": ""},
        headers=people.as_patient(),
    )
    assert sent.status_code == 201, sent.text
    if case.dispensed:
        given = dispense(client, people, number, (1, case.dispensed), finess=people.other_pharmacy)
        assert given.status_code == 201, given.text
    adapted = client.post(
        f"/v1/prescriptions/{number}/adaptations",
        json={
            "line_no": 1,
            "description": "Boîte de 16 au lieu de 8",
            "prescriber_rpps": people.prescriber,
            "agreed_on": datetime.now(UTC).date().isoformat(),
        },
        headers=people.as_pharmacist(people.other_pharmacy),
    )
    assert adapted.status_code == 201, adapted.text
    if case.status == "cancelled":
        cancelled = client.post(
            f"/v1/prescriptions/{number}/cancel",
            json={"reason": "x"},
            headers=people.as_prescriber(),
        )
        assert cancelled.status_code == 200, cancelled.text
    if not consent:
        opposed = client.put(
            f"/v1/prescriptions/{number}/execution-view-consent",
            json={"consent": False},
            headers=people.as_patient(),
        )
        assert opposed.status_code == 200, opposed.text
    if case.status == "expired":
        travel(client, 400)  # past the 12 months a started prescription lives
    return issued


def expected_read(
    issued: dict[str, Any], case: Case, consent: bool, role: Role, people: People
) -> dict[str, Any]:
    """What `GET /v1/prescriptions/{id}` must show this role, every field of it."""
    sees = SEES_EXECUTION[role, consent]
    started = sees and case.dispensed > 0
    issued_on = date.fromisoformat(issued["issued_on"])
    (prescribed,) = issued["lines"]
    return {
        "prescription_id": issued["prescription_id"],
        "status": case.status if sees else case.under_opposition,
        "kind": "standard",
        "issued_on": issued["issued_on"],
        # 12 months once dispensing started; the presentation deadline otherwise, and always
        # under opposition, where the longer life would tell that something was dispensed.
        "expires_on": add_months(issued_on, 12 if started else 3).isoformat(),
        "prescriber_rpps": people.prescriber,
        "patient": {"ins": people.patient},
        "execution_view_consent": consent,
        "execution_visible": sees,
        "lines": [
            {
                **{k: v for k, v in prescribed.items() if k not in VARYING},
                "dispensed": case.dispensed if sees else None,
                "remaining": case.remaining if sees else None,
                "covered_until": THERE if started else None,
            }
        ],
        "dispensations": [_dispensation(case, prescribed["product"], people)] if started else [],
        "adaptations": [_adaptation(people)] if sees else [],
        "dispensed_elsewhere": case.dispensed > 0 if role == "pharmacist" else None,
    }


def _dispensation(case: Case, product: dict[str, Any], people: People) -> dict[str, Any]:
    line = {
        "line_no": 1,
        "quantity": case.dispensed,
        "product": product,
        "generic_refused": False,
        "non_substitution": None,
        "lot": None,
    }
    return {
        "dispensation_id": THERE,
        "finess": people.other_pharmacy,
        "dispensed_at": THERE,
        "recorded_at": THERE,
        "lines": [line],
        "billed": False,
        "withdrawn": False,
        "procedure": None,
    }


def _adaptation(people: People) -> dict[str, Any]:
    return {
        "line_no": 1,
        "description": "Boîte de 16 au lieu de 8",
        "prescriber_rpps": people.prescriber,
        "agreed_on": datetime.now(UTC).date().isoformat(),
        "finess": people.other_pharmacy,
        "pharmacist_rpps": people.pharmacist,
        "recorded_at": THERE,
        "dispensation_id": None,
    }


def expected_inbox(issued: dict[str, Any], case: Case, people: People) -> list[dict[str, Any]]:
    """Our pharmacy's inbox: the prescription while something remains to dispense."""
    if not case.in_inbox:
        return []
    (prescribed,) = issued["lines"]
    months = 12 if case.dispensed else 3
    expires_on = add_months(date.fromisoformat(issued["issued_on"]), months)
    return [
        {
            "prescription_id": issued["prescription_id"],
            "transmitted_at": THERE,
            "message": "",
            "patient": {"ins": people.patient},
            "expires_on": expires_on.isoformat(),
            "lines": [
                {
                    "line_no": 1,
                    "product": prescribed["product"],
                    "quantity": PACKS,
                    "remaining": case.remaining,
                    "non_substitutable": None,
                    "remaining_units": None,  # no catalogue: counted in packs
                }
            ],
            "sent_by": "patient",
        }
    ]


def headers_of(people: People, role: Role) -> dict[str, str]:
    return {
        "prescriber": people.as_prescriber(),
        "pharmacist": people.as_pharmacist(),
        "patient": people.as_patient(),
        "insurer": people.as_insurer(),
    }[role]


# The lists waited for, in this order: the patient's shows every change.
LAGGING_LISTS: tuple[Role, ...] = ("patient", "prescriber")


def list_once_it_shows(client: Client, people: People, role: Role, read: Any) -> Any:
    """The role's list, read again until its only item is `read` (or a few seconds passed)."""
    path = LISTS[role]
    assert path is not None
    return eventually(
        lambda: client.get(path, headers=headers_of(people, role)).json(),
        lambda page: page["items"] == [read],
    )


@pytest.mark.parametrize("consent", [True, False], ids=["consent", "opposition"])
@pytest.mark.parametrize("status", list(CASES))
def test_each_role_sees_what_the_privacy_promise_says(
    client: Client, people: People, status: str, consent: bool
) -> None:
    case = CASES[status]
    issued = play(client, people, case, consent)
    reads = {
        role: client.get(
            f"/v1/prescriptions/{issued['prescription_id']}", headers=headers_of(people, role)
        ).json()
        for role in ROLES
    }

    for role in ROLES:
        assert stable(reads[role]) == expected_read(issued, case, consent, role, people), role
    # The lists lag the log (< 1 s): the patient's, which shows every change, is waited for
    # first; the views move together, so the prescriber's list and the inbox are then current.
    for role in LAGGING_LISTS:
        page = list_once_it_shows(client, people, role, reads[role])
        assert page["items"] == [reads[role]], role
    inbox = client.get("/v1/pharmacies/me/inbox", headers=people.as_pharmacist()).json()
    assert stable(inbox["items"]) == expected_inbox(issued, case, people)
