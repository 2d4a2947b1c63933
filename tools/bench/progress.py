"""What a benchmark says while it runs (on stderr), and the error that stops it."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

console = Console(stderr=True)


def say(message: str, style: str = "") -> None:
    """Progress on stderr; labels like "API [ORDO_DB_POOL_SIZE=8]" are text, not rich markup."""
    console.log(Text(message, style=style), _stack_offset=2)


class BenchError(Exception):
    """The benchmark cannot go on (server did not start, seeding failed, ...)."""
