"""`ordo access-log prune`: delete the entries older than the retention period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.access.store import open_access_log
from adapters.config import Settings


def prune(settings: Settings, now: datetime | None = None) -> int:
    """Deletes entries older than ORDO_ACCESS_LOG_RETENTION_DAYS; how many were deleted."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.access_log_retention_days)
    store = open_access_log(settings.database_url, settings.data_dir)
    try:
        return store.prune(cutoff)
    finally:
        store.close()
