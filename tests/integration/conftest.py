"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.smtp_relay import Relay


@pytest.fixture
def relay() -> Iterator[Relay]:
    """A real local SMTP server; a message held mid-DATA is released before it stops."""
    server = Relay()
    server.start()
    yield server
    server.handler.release.set()
    server.stop()
