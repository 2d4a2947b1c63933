"""Every problem the API tests provoke is one its operation lists in the OpenAPI document.

An autouse fixture records each `/v1` problem and each `/fhir` OperationOutcome answered to a test
client during a test; at its end, each (operation, status, code) must be among the operation's
stated problems (`adapters/http/problem_codes.py` and `fhir_problem_codes.py`, as
`/schema/openapi.json` serves them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import httpx
import pytest
from litestar.testing import TestClient

from tools.api_reference import served_document

CODE = re.compile(r"`([a-z_]+)`")


class Answered(NamedTuple):
    operation: str  # "METHOD /path/{template}"
    status: int
    code: str


class StatedProblems:
    """The codes each /v1 and /fhir operation lists per status, and the operation a request is
    of."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.listed: dict[str, dict[int, set[str]]] = {}
        self._templates: list[tuple[re.Pattern[str], str, str]] = []
        for path, item in document["paths"].items():
            if not path.startswith(("/v1/", "/fhir/")):
                continue
            literals = re.split(r"\{[^}]+\}", path)  # `$cancel` is no end of line
            pattern = re.compile("^" + "[^/]+".join(map(re.escape, literals)) + "/?$")
            for method, operation in item.items():
                key = f"{method.upper()} {path}"
                self._templates.append((pattern, method.upper(), key))
                self.listed[key] = {
                    int(status): set(CODE.findall(answer.get("description", "")))
                    for status, answer in operation["responses"].items()
                    if status.startswith(("4", "5"))
                }

    def operation(self, method: str, path: str) -> str | None:
        return next((key for p, m, key in self._templates if m == method and p.match(path)), None)

    def lists(self, answered: Answered) -> bool:
        return answered.code in self.listed[answered.operation].get(answered.status, set())


@pytest.fixture(scope="session")
def stated_problems() -> StatedProblems:
    return StatedProblems(served_document())


@pytest.fixture(autouse=True)
def problems_are_stated(
    monkeypatch: pytest.MonkeyPatch, stated_problems: StatedProblems
) -> Iterator[list[Answered]]:
    answered: list[Answered] = []
    request = TestClient.request

    def recorded(self: TestClient[Any], method: str, url: Any, **kwargs: Any) -> httpx.Response:
        response = request(self, method, url, **kwargs)
        _record(stated_problems, response, answered)
        return response

    monkeypatch.setattr(TestClient, "request", recorded)
    yield answered
    unstated = sorted({a for a in answered if not stated_problems.lists(a)})
    assert not unstated, f"problems answered but not in the OpenAPI document: {unstated}"


def _record(stated: StatedProblems, response: httpx.Response, answered: list[Answered]) -> None:
    code = _code_of(response)
    if code is None:
        return
    operation = stated.operation(response.request.method, response.request.url.path)
    if operation is not None:  # an unknown route's 404 or 405 is no operation's
        answered.append(Answered(operation, response.status_code, code))


def _code_of(response: httpx.Response) -> str | None:
    """The code of a problem, or of an OperationOutcome's first issue (None: neither)."""
    content = response.headers.get("content-type", "")
    if content.startswith("application/problem+json"):
        return str(response.json()["code"])
    if not content.startswith("application/fhir+json") or response.status_code < 400:
        return None
    outcome = response.json()
    if outcome.get("resourceType") != "OperationOutcome":
        return None
    return str(outcome["issue"][0]["details"]["coding"][0]["code"])
