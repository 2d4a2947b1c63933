"""The FHIR calls both servers answer: register a one-line prescription (POST MedicationRequest),
read that line (GET MedicationRequest/<id>), record a dispense (POST MedicationDispense). The
bodies are the same for both: ordo's FRMedicationRequest vocabulary, patient and prescriber as
logical references (an INS and an RPPS identifier), which HAPI stores as they are."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from tools import cast as people
from tools.bench.fhir import dispense_of, medication_request_of
from tools.bench.load import Cast, Command, Session, error_label

PACKS = 999  # a line's packs: a run dispenses one at a time and must not exhaust it
BODIES_PER_PRESCRIBER = 16  # encoded up front: the load generator must not compete for the CPU
CALLS = ("prescribe", "read", "dispense")


@dataclass(frozen=True)
class Door:
    """One server's FHIR base (`/fhir/R4` for ordo, `/fhir` for HAPI) and its name."""

    name: str
    base: str


class Created(msgspec.Struct):
    id: str


def medication_request(product: str, patient: str, rpps: str) -> bytes:
    """One active order of `PACKS` packs of `product` for `patient`, written by `rpps`."""
    return msgspec.json.encode(medication_request_of(product, patient, rpps, PACKS))


def medication_dispense(request_id: str, product: str) -> bytes:
    """One pack of `product` handed over against the line `MedicationRequest/<request_id>`."""
    return dispense_of(request_id, product)


def created_id(body: bytes) -> str:
    """The id the server gave the resource it answers a create with."""
    return msgspec.json.decode(body, type=Created).id


def prescriptions(cast: Cast, seed: int) -> list[tuple[str, bytes]]:
    """(prescriber's token, body) pairs: each prescriber writes for patients of the cast."""
    rng = random.Random(seed)
    return [
        (token, medication_request(cast.product, patient, people.prescriber(index).value))
        for index, token in enumerate(cast.prescribers)
        for patient in rng.sample(cast.patients, min(BODIES_PER_PRESCRIBER, len(cast.patients)))
    ]


def _checked(status: int, body: bytes, expected: int) -> str | None:
    return None if status == expected else error_label(status, body)


def prescribe_command(door: Door, cast: Cast, seed: int) -> Command[Session]:
    rng = random.Random(seed)
    sent, path = prescriptions(cast, seed), f"{door.base}/MedicationRequest"

    async def prescribe(session: Session) -> str | None:
        token, body = rng.choice(sent)
        return _checked(*await session.post(path, token, body), 201)

    return prescribe


def read_command(door: Door, ids: Sequence[str], cast: Cast, seed: int) -> Command[Session]:
    rng = random.Random(seed)
    paths = [f"{door.base}/MedicationRequest/{number}" for number in ids]

    async def read(session: Session) -> str | None:
        return _checked(*await session.get(rng.choice(paths), rng.choice(cast.pharmacists)), 200)

    return read


def dispense_command(door: Door, ids: Sequence[str], cast: Cast, seed: int) -> Command[Session]:
    rng = random.Random(seed)
    bodies = [medication_dispense(number, cast.product) for number in ids]
    path = f"{door.base}/MedicationDispense"

    async def dispense(session: Session) -> str | None:
        status, answer = await session.post(path, rng.choice(cast.pharmacists), rng.choice(bodies))
        return _checked(status, answer, 201)

    return dispense


def command_for(
    call: str, door: Door, ids: Sequence[str], cast: Cast, seed: int
) -> Command[Session]:
    match call:
        case "prescribe":
            return prescribe_command(door, cast, seed)
        case "read":
            return read_command(door, ids, cast, seed)
        case "dispense":
            return dispense_command(door, ids, cast, seed)
    raise ValueError(f"no such call: {call}")
