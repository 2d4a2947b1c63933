"""The Structs made from R4B's models (adapters.fhir.structure) accept only what the models
accept: the prescriptions of tests/fixtures/fhir and the benchmark's resources, each as sent and
spoilt in thousands of ways (an element removed, another datatype, an unknown element, a day
that does not exist, a second choice, an empty list or string), are refused by the Structs
whenever `fhir.resources` refuses them; and the fixtures as sent pass the Structs, the fast way.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from adapters.fhir.structure import checked
from tools import cast as people
from tools.bench.fhir import fhir_prescription, medication_dispense

FIXTURES = sorted((Path(__file__).parents[1] / "fixtures" / "fhir").glob("*.json"))
SPOILS_PER_RESOURCE = 400
OTHER_VALUES: list[Any] = [
    None,
    0,
    -1,
    2**40,
    1.5,
    True,
    "",
    " padded ",
    "text",
    "text\n",
    "0000",
    "2024-13",
    "2024-02-29T10:00:00.1234567Z",
    1e400,
    "2023-02-30",
    "2024-01-01T10:00:00",
    "2024-01-01T10:00:00+01:00",
    [],
    [None],
    {},
    {"unknown": 1},
]


def _resources() -> list[dict[str, Any]]:
    sent = [json.loads(path.read_text()) for path in FIXTURES]
    bench = [
        fhir_prescription(people.product(1).value, people.patient(1).value, "10000000017"),
        medication_dispense("2K7X9QJ4M3", people.product(1).value),
    ]
    return sent + [json.loads(body) for body in bench]


def _model_accepts(data: dict[str, Any]) -> bool:
    try:
        get_fhir_model_class(data["resourceType"]).model_validate(data)
    except (ValidationError, ValueError, TypeError, KeyError):
        return False
    return True


def _places(data: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key and item of the JSON, as the path to it."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*path, key)
            yield from _places(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield (*path, index)
            yield from _places(value, (*path, index))


def _spoilt(data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    spoilt = copy.deepcopy(data)
    path = rng.choice([p for p in _places(spoilt) if p[-1] != "resourceType"])
    parent = spoilt
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    match rng.randrange(4):
        case 0 if isinstance(parent, dict):
            del parent[last]
        case 1 if isinstance(parent, dict):
            parent[f"{last}Other"] = parent[last]  # unknown, or a second choice (value[x])
        case 2 if isinstance(parent, dict) and last.startswith("value"):
            parent["valueString"] = "also"
        case _:
            parent[last] = rng.choice(OTHER_VALUES)
    return spoilt


@pytest.mark.parametrize(
    "resource", _resources(), ids=lambda r: str(r.get("id", r["resourceType"]))
)
def test_what_the_structs_accept_the_models_accept(resource: dict[str, Any]) -> None:
    rng = random.Random(23)
    refused = 0
    for _ in range(SPOILS_PER_RESOURCE):
        spoilt = _spoilt(resource, rng)
        if checked(spoilt["resourceType"], spoilt) is not None:
            assert _model_accepts(spoilt), json.dumps(spoilt)[:2000]
        else:
            refused += 1
    assert refused > SPOILS_PER_RESOURCE // 4  # the spoils do spoil


@pytest.mark.parametrize(
    "resource", _resources(), ids=lambda r: str(r.get("id", r["resourceType"]))
)
def test_a_resource_as_sent_passes_the_structs(resource: dict[str, Any]) -> None:
    assert checked(resource["resourceType"], resource) is not None
    assert _model_accepts(resource)


def test_a_resource_type_without_structs_is_left_to_the_models() -> None:
    assert checked("Observation", {"resourceType": "Observation"}) is None
