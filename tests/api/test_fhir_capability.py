"""`GET /fhir/R4/metadata` lists exactly what the app serves under /fhir/R4: each interaction
and operation has its route, each route its entry in the CapabilityStatement, and the search
parameters are the query parameters the searches take."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from tests.conftest import Client, settings_for

PREFIX = "/fhir/R4"
# What a search takes besides its search parameters: paging, and FHIR's format parameter.
PAGING = {"_offset", "_cursor", "_format"}


@pytest.fixture(scope="module")
def served() -> Iterator[Client]:
    with (
        tempfile.TemporaryDirectory() as scratch,
        TestClient(build_app(settings_for(Path(scratch)))) as client,
    ):
        yield client


def interactions_of_routes(client: Client) -> set[tuple[str, str]]:
    """(resource type or "", interaction or $operation) for every route under /fhir/R4."""
    found: set[tuple[str, str]] = set()
    for route in client.app.routes:
        if not route.path.startswith(PREFIX):
            continue
        rest = re.sub(r"\{[^}]+\}", "{id}", route.path.removeprefix(PREFIX))
        for method in set(getattr(route, "methods", ())) - {"OPTIONS", "HEAD"}:
            found.add(_interaction(method, rest))
    return found


def _interaction(method: str, rest: str) -> tuple[str, str]:
    parts = [part for part in rest.split("/") if part]
    match (method, parts):
        case ("POST", []):
            return ("", "transaction")
        case ("GET", ["metadata"]):
            return ("", "capabilities")
        case ("POST", [kind]):
            return (kind, "create")
        case ("GET", [kind]):
            return (kind, "search-type")
        case ("GET", [kind, "{id}"]):
            return (kind, "read")
        case ("POST", [kind, "{id}", operation]) if operation.startswith("$"):
            return (kind, operation)
    raise AssertionError(f"{method} {rest}: a route the test does not know how to list")


def interactions_of_statement(statement: dict[str, Any]) -> set[tuple[str, str]]:
    rest = statement["rest"][0]
    found = {("", "capabilities")} | {("", i["code"]) for i in rest.get("interaction", [])}
    for resource in rest["resource"]:
        kind = resource["type"]
        found |= {(kind, i["code"]) for i in resource.get("interaction", [])}
        found |= {(kind, f"${o['name']}") for o in resource.get("operation", [])}
    return found


def test_the_statement_lists_exactly_the_routes(served: Client) -> None:
    statement = served.get(f"{PREFIX}/metadata").json()

    assert interactions_of_statement(statement) == interactions_of_routes(served)


def test_the_search_parameters_are_those_the_searches_take(served: Client) -> None:
    statement = served.get(f"{PREFIX}/metadata").json()
    paths = served.get("/schema/openapi.json").json()["paths"]

    for resource in statement["rest"][0]["resource"]:
        listed = {p["name"] for p in resource.get("searchParam", [])}
        search = paths[f"{PREFIX}/{resource['type']}"]["get"]
        taken = {p["name"].split(":")[0] for p in search["parameters"] if p["in"] == "query"}
        assert listed == taken - PAGING, resource["type"]
