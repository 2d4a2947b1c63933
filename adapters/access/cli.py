"""`ordo access-log prune`: delete the entries older than the retention period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.bootstrap import access_log_for
from adapters.config import Settings


def prune(settings: Settings, now: datetime | None = None) -> int:
    """Deletes entries older than ORDO_ACCESS_LOG_RETENTION_DAYS; how many were deleted."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.access_log_retention_days)
    with access_log_for(settings) as store:
        return store.prune(cutoff)
