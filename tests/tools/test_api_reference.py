"""The committed API reference is what the OpenAPI document says today: it cannot drift."""

from __future__ import annotations

from typing import Any

import pytest

from tools.api_reference import (
    CALLERS,
    PERMISSION_OF,
    REGENERATE,
    TARGET,
    operations,
    reference,
    served_document,
)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return served_document()


def test_docs_api_md_is_generated_from_the_served_document(document: dict[str, Any]) -> None:
    generated = reference(document)

    assert TARGET.read_text(encoding="utf-8") == generated, (
        f"docs/api.md differs from the OpenAPI document: run `{REGENERATE}` and commit it"
    )


def test_every_operation_says_who_may_call_it_and_nothing_else_is_named(
    document: dict[str, Any],
) -> None:
    named = {key for key, _ in operations(document)}

    assert set(PERMISSION_OF) | set(CALLERS) == named
