"""The composition root: settings in, a wired application out. Nothing else builds adapters."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from litestar import Litestar

from adapters.auth import TokenVerifier
from adapters.config import Settings
from adapters.eventstore import EventLog, open_log
from adapters.http.app import create_app
from adapters.logging import configure_logging
from adapters.service import PrescriptionService

FAILPOINTS: dict[str, Callable[[], None]] = {
    # Crash tests: die the hard way once the events are durable, before any answer is sent.
    "crash_after_append": lambda: os.kill(os.getpid(), signal.SIGKILL),
}


def build_log(settings: Settings) -> EventLog:
    return open_log(settings.database_url, settings.data_dir, settings.db_pool_size)


def build_app(settings: Settings, log: EventLog | None = None) -> Litestar:
    configure_logging(settings.log_hash_key)
    event_log = log or build_log(settings)
    service = PrescriptionService(
        event_log,
        after_append=FAILPOINTS[settings.failpoint] if settings.failpoint else lambda: None,
    )
    verifier = TokenVerifier(secret=settings.auth_secret, public_key=settings.auth_public_key)
    return create_app(
        service,
        verifier,
        max_body_bytes=settings.max_body_bytes,
        on_shutdown=[event_log.close] if log is None else [],
    )


def app_from_env() -> Litestar:
    """Entry point for ASGI servers: `uvicorn --factory adapters.bootstrap:app_from_env`."""
    return build_app(Settings.from_env())
