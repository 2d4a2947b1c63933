"""The surface a reviewer of a health API checks: bodies that cannot be decoded, cache and
security headers, the docs pages without third-party scripts, and the per-caller rate limit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from adapters.bootstrap import build_app
from adapters.config import Settings
from tests.conftest import Client, settings_for
from tools.cast import SECRET, People

JSON = {"content-type": "application/json"}


@pytest.fixture
def sqlite_client(tmp_path: Path) -> Iterator[Client]:
    with TestClient(build_app(settings_for(tmp_path))) as client:
        yield client


def issued(client: Client, people: People) -> str:
    created = client.post(
        "/v1/prescriptions", json=people.prescription_body(3), headers=people.as_prescriber()
    )
    assert created.status_code == 201, created.text
    return str(created.json()["prescription_id"])


def nested(depth: int) -> bytes:
    return b'{"lines": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/prescriptions/{id}/dispensations", nested(5000)),
        ("/v1/prescriptions", nested(5000)),
        ("/v1/prescriptions/{id}/cancel", b'{"reason": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        ("/v1/prescriptions/{id}/dispensations", b'{"lines": [{"line_no": 1'),
        ("/v1/prescriptions/{id}/dispensations", b'{"lines": "\xff\xfe"}'),
        ("/v1/prescriptions/{id}/dispensations", b"lines=1"),
        ("/v1/prescriptions/{id}/dispensations", b'{"lines": [{"line_no": 1e999}]}'),
    ],
    ids=["deep-dispensing", "deep-issue", "deep-cancel", "truncated", "not-utf8", "form", "inf"],
)
def test_a_body_that_cannot_be_decoded_is_a_400_problem(
    sqlite_client: Client,
    people: People,
    path: str,
    body: bytes,
) -> None:
    prescription = issued(sqlite_client, people)
    headers = people.as_prescriber() if path == "/v1/prescriptions" else people.as_pharmacist()
    if path.endswith("/cancel"):
        headers = people.as_prescriber()

    answer = sqlite_client.post(
        path.format(id=prescription), content=body, headers={**headers, **JSON}
    )

    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "invalid_request"


def test_every_v1_answer_is_not_to_be_stored(
    sqlite_client: Client,
    people: People,
) -> None:
    prescription = issued(sqlite_client, people)
    answers = [
        sqlite_client.get(f"/v1/prescriptions/{prescription}", headers=people.as_patient()),
        sqlite_client.get("/v1/prescriptions/0000000000000000", headers=people.as_patient()),
        sqlite_client.get(f"/v1/prescriptions/{prescription}"),
        sqlite_client.get("/v1/no-such-route", headers=people.as_patient()),
        sqlite_client.delete(f"/v1/prescriptions/{prescription}", headers=people.as_patient()),
        sqlite_client.post("/v1/prescriptions", content=b"{", headers=people.as_prescriber()),
    ]

    assert [answer.status_code for answer in answers] == [200, 404, 401, 404, 405, 400]
    for answer in answers:
        assert answer.headers["cache-control"] == "no-store", answer.request.url
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert "server" not in answer.headers


def test_the_docs_pages_load_nothing_from_another_host(
    sqlite_client: Client,
) -> None:
    for page in ("/schema", "/schema/swagger"):
        answer = sqlite_client.get(page)
        assert answer.status_code == 200
        referenced = re.findall(r"""(?:src|href)=["']([^"']+)["']""", answer.text)
        assert referenced, answer.text
        assert all(url.startswith("/schema/assets/") for url in referenced), referenced
        assert "<script>" not in answer.text  # no inline script: the CSP forbids them
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self';" in policy
        assert "http" not in policy and "unsafe-eval" not in policy

        for url in [*referenced, "/schema/assets/initializer.js", "/schema/assets/LICENSE"]:
            asset = sqlite_client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 100 or url.endswith("initializer.js"), url


def test_the_swagger_ui_assets_are_the_pinned_ones_with_their_licence(
    sqlite_client: Client,
) -> None:
    bundle = sqlite_client.get("/schema/assets/swagger-ui-bundle.js")
    licence = sqlite_client.get("/schema/assets/LICENSE")
    initializer = sqlite_client.get("/schema/assets/initializer.js")

    assert bundle.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in bundle.text
    assert "Apache License" in licence.text
    assert '"/schema/openapi.json"' in initializer.text
    assert "validatorUrl: null" in initializer.text  # no badge from the online validator
    assert sqlite_client.get("/schema/assets/../../pyproject.toml").status_code == 404
    assert sqlite_client.get("/schema/assets/swagger-editor.js").status_code == 404


def limited(tmp_path: Path, **env: str) -> Client:
    return TestClient(
        build_app(
            Settings.from_env({"ORDO_DATA_DIR": str(tmp_path), "ORDO_AUTH_SECRET": SECRET, **env})
        )
    )


def test_a_caller_past_its_allowance_gets_429_with_retry_after(
    tmp_path: Path, people: People
) -> None:
    env = {"ORDO_RATE_LIMIT_PER_MINUTE": "6", "ORDO_RATE_LIMIT_BURST": "2"}
    with limited(tmp_path, **env) as client:
        first, second, third = (
            client.get("/v1/prescriptions/0000000000000000", headers=people.as_patient())
            for _ in range(3)
        )
        other_caller = client.get("/v1/prescriptions/x", headers=people.as_prescriber())

    assert [first.status_code, second.status_code] == [404, 404]
    assert third.status_code == 429
    assert third.headers["content-type"] == "application/problem+json"
    assert third.json()["code"] == "rate_limited"
    assert 1 <= int(third.headers["retry-after"]) <= 10
    assert third.headers["cache-control"] == "no-store"
    assert other_caller.status_code == 404  # another caller has its own allowance


def test_calls_without_a_valid_token_share_their_address_allowance(
    tmp_path: Path,
) -> None:
    env = {"ORDO_RATE_LIMIT_PER_MINUTE": "60", "ORDO_RATE_LIMIT_BURST": "3"}
    with limited(tmp_path, **env) as client:
        statuses = [
            client.get(
                "/v1/prescriptions/x", headers={"Authorization": f"Bearer junk{n}"}
            ).status_code
            for n in range(5)
        ]

    assert statuses == [401, 401, 401, 429, 429]


def test_there_is_no_rate_limit_unless_configured(tmp_path: Path, people: People) -> None:
    with limited(tmp_path) as client:
        statuses = {
            client.get("/v1/prescriptions/x", headers=people.as_patient()).status_code
            for _ in range(200)
        }

    assert statuses == {404}


def test_the_rate_limit_settings_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"ORDO_DATA_DIR": str(tmp_path), "ORDO_RATE_LIMIT_PER_MINUTE": "600"}
    )

    assert settings.rate_limit_per_minute == 600
    assert settings.rate_limit_burst == 100
    assert Settings.from_env({"ORDO_DATA_DIR": str(tmp_path)}).rate_limit_per_minute == 0
