"""`ordo token` signs only what the API would accept, so a typo shows at once, not as a 401."""

from __future__ import annotations

import pytest

from adapters.auth import TokenVerifier
from adapters.cli import main

SECRET = "unit-test-secret-of-at-least-32-bytes!"


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDO_AUTH_SECRET", SECRET)


def test_a_pharmacist_token_carries_a_checked_identity(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["token", "--role", "pharmacist", "--rpps", "20001234564", "--finess", "750712184"])
        == 0
    )

    actor = TokenVerifier(secret=SECRET).actor(f"Bearer {capsys.readouterr().out.strip()}")
    assert (actor.role, actor.rpps, actor.finess) == ("pharmacist", "20001234564", "750712184")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--role", "pharmacist", "--rpps", "20001234561", "--finess", "750712184"], "RPPS"),
        (["--role", "pharmacist", "--rpps", "20001234564"], "finess"),
        (["--role", "patient", "--ins", "184127645108947"], "INS"),
        (["--role", "prescriber"], "rpps"),
    ],
)
def test_an_identity_the_api_would_refuse_is_not_signed(
    args: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", *args]) == 2

    printed = capsys.readouterr()
    assert printed.out == ""
    assert said.lower() in printed.err.lower()
