"""The FHIR door against /v1 in the same run (`scripts/bench dispensing --fhir`): prescribing a
3-line prescription (a `transaction` Bundle of three MedicationRequests, or the /v1 body of three
lines), dispensing one pack (a MedicationDispense, or the /v1 body), reading one line (a
MedicationRequest, or the /v1 prescription); each pair's rates and their ratio."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import msgspec

from tools import cast as people
from tools.bench.load import Cast, Command, Run, Session, error_label

LINES = 3
BODIES_PER_PRESCRIBER = 16  # encoded up front: the load generator must not compete for the CPU
CIP13 = "http://data.esante.gouv.fr/ansm/medicament/Presentation"
INS = "urn:oid:1.2.250.1.213.1.4.8"
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
CONSENT = {"url": "urn:ordo:execution-view-consent", "valueBoolean": True}
AIM = 0.8  # issue 23: each FHIR rate at least 0.8 of its /v1 twin's
# (the FHIR run, its /v1 twin), by the `what` of their runs.
PAIRS = (
    ("fhir prescribing 3 lines", "prescribing 3 lines"),
    ("fhir dispensing", "dispensing"),
    ("fhir read", "read"),
)


def v1_prescription(product: str, patient: str) -> bytes:
    line = {
        "product": {"system": "CIP13", "code": product, "label": "Paracétamol 1 g, 8 cp"},
        "quantity": 2,
        "dosage": "1 comprimé 3 fois par jour",
        "duration_days": 8,
    }
    body = {"patient": {"ins": patient}, "execution_view_consent": True, "lines": [line] * LINES}
    return msgspec.json.encode(body)


def medication_request_of(product: str, patient: str, rpps: str, packs: int) -> dict[str, Any]:
    """One active order of `packs` packs of `product` for `patient`, written by `rpps`: ordo's
    FRMedicationRequest vocabulary, patient and prescriber as logical references."""
    return {
        "resourceType": "MedicationRequest",
        "extension": [CONSENT],
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": CIP13, "code": product, "display": "Paracétamol 1 g, 8 cp"}]
        },
        "subject": {"identifier": {"system": INS, "value": patient}},
        "requester": {"identifier": {"system": RPPS, "value": f"8{rpps}"}},
        "dosageInstruction": [
            {
                "text": "1 comprimé 3 fois par jour",
                "timing": {"repeat": {"boundsDuration": {"value": 8, "code": "d"}}},
            }
        ],
        "dispenseRequest": {"quantity": {"value": packs}},
    }


def fhir_prescription(product: str, patient: str, rpps: str) -> bytes:
    request = medication_request_of(product, patient, rpps, 2)
    entry = {"resource": request, "request": {"method": "POST", "url": "MedicationRequest"}}
    return msgspec.json.encode(
        {"resourceType": "Bundle", "type": "transaction", "entry": [entry] * LINES}
    )


def dispense_of(request_id: str, product: str) -> bytes:
    """One pack of `product` handed over against the line `MedicationRequest/<request_id>`."""
    dispense: dict[str, Any] = {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "medicationCodeableConcept": {
            "coding": [{"system": CIP13, "code": product, "display": "Paracétamol 1 g, 8 cp"}]
        },
        "authorizingPrescription": [{"reference": f"MedicationRequest/{request_id}"}],
        "quantity": {"value": 1},
    }
    return msgspec.json.encode(dispense)


def medication_dispense(prescription_id: str, product: str) -> bytes:
    """One pack against the first line of the prescription `prescription_id`."""
    return dispense_of(f"{prescription_id}-1", product)


def _checked(status: int, body: bytes, expected: int) -> str | None:
    return None if status == expected else error_label(status, body)


def prescribing_command(cast: Cast, fhir: bool, seed: int) -> Command[Session]:
    """A prescriber registers three lines: as /v1 JSON or as a FHIR transaction."""
    rng = random.Random(seed)
    sent: list[tuple[str, bytes]] = []
    for index, token in enumerate(cast.prescribers):
        rpps = people.prescriber(index).value
        for patient in rng.sample(cast.patients, BODIES_PER_PRESCRIBER):
            body = (
                fhir_prescription(cast.product, patient, rpps)
                if fhir
                else v1_prescription(cast.product, patient)
            )
            sent.append((token, body))
    path, expected = ("/fhir/R4", 200) if fhir else ("/v1/prescriptions", 201)

    async def prescribe(session: Session) -> str | None:
        token, body = rng.choice(sent)
        return _checked(*await session.post(path, token, body), expected)

    return prescribe


def dispensing_command(ids: Sequence[str], cast: Cast, seed: int) -> Command[Session]:
    """A pharmacy records one pack of line 1 as a MedicationDispense."""
    rng = random.Random(seed)
    bodies = [medication_dispense(number, cast.product) for number in ids]

    async def dispense(session: Session) -> str | None:
        body = rng.choice(bodies)
        status, answer = await session.post(
            "/fhir/R4/MedicationDispense", rng.choice(cast.pharmacists), body
        )
        return _checked(status, answer, 201)

    return dispense


def read_command(ids: Sequence[str], cast: Cast, seed: int) -> Command[Session]:
    """A pharmacy reads line 1 as a MedicationRequest."""
    rng = random.Random(seed)
    paths = [f"/fhir/R4/MedicationRequest/{number}-1" for number in ids]

    async def read(session: Session) -> str | None:
        return _checked(*await session.get(rng.choice(paths), rng.choice(cast.pharmacists)), 200)

    return read


def ratio_lines(runs: Sequence[Run]) -> list[str]:
    """Each FHIR run's rate over its /v1 twin's (same server, same clients), against the aim."""
    lines = []
    for run in runs:
        for fhir, v1 in PAIRS:
            if not run.target.endswith(f" {fhir}"):
                continue
            twin_target = run.target.removesuffix(f" {fhir}") + (
                "" if v1 == "dispensing" else f" {v1}"
            )
            twins = [
                r
                for r in runs
                if (r.target, r.backend, r.workers, r.clients)
                == (twin_target, run.backend, run.workers, run.clients)
            ]
            if not twins or not twins[0].rate:
                continue
            ratio = run.rate / twins[0].rate
            verdict = "met" if ratio >= AIM else "**not met**"
            lines.append(
                f"- {fhir.removeprefix('fhir ')}, {run.backend} w{run.workers}, {run.clients} "
                f"clients: FHIR {run.rate:,.0f}/s, /v1 {twins[0].rate:,.0f}/s, ratio "
                f"{ratio:.2f} (aim ≥ {AIM}: {verdict})"
            )
    return lines
