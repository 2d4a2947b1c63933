"""`ordo mailer status`: what the outbox holds, and the e-mails refused for good."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from adapters.bootstrap import mailer_for
from adapters.config import Settings


async def status(settings: Settings, console: Console, limit: int = 20) -> dict[str, int]:
    """`ordo mailer status`: counts by state and the e-mails refused for good, with why."""
    async with mailer_for(settings) as mailer:
        await mailer.store.create()
        counts = await mailer.store.counts()
        failures = await mailer.store.failures(limit)
        position = await mailer.store.position()
    table = Table(title=f"outbox (log position {position})")
    for name in ("pending", "delivered", "failed"):
        table.add_column(name, justify="right")
    table.add_row(*(str(counts[name]) for name in ("pending", "delivered", "failed")))
    console.print(table)
    if failures:
        refused = Table(title="refused for good")
        for name in ("message_id", "kind", "attempts", "reason", "written_at"):
            refused.add_column(name)
        for f in failures:
            refused.add_row(
                f.message_id, f.kind, str(f.attempts), f.reason, f.written_at.isoformat()
            )
        console.print(refused)
    return counts
