"""`ordo document ID --out FILE.pdf`: an operator prints an ordonnance from the instance's store."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from adapters.bootstrap import service_for
from adapters.config import Settings
from adapters.document.ordonnance import Document, prescriber_copy
from adapters.service import paris_clock
from domain.errors import DomainError


def write_document(settings: Settings, prescription_id: str, out: Path) -> int:
    """0 when the prescriber's copy was written to `out`; 1 when the store has no such
    prescription (or the number is malformed), 2 when `out` cannot be written there."""
    if not out.parent.is_dir():
        print(f"ordo document: no such directory: {out.parent}", file=sys.stderr)
        return 2
    try:
        document = asyncio.run(_prescriber_copy(settings, prescription_id))
    except DomainError as error:
        print(f"ordo document: {error.code}: {error.detail}", file=sys.stderr)
        return 1
    out.write_bytes(document.pdf)
    print(f"{out}: ordonnance {document.number} ({len(document.pdf)} bytes, the prescriber's copy)")
    return 0


async def _prescriber_copy(settings: Settings, prescription_id: str) -> Document:
    async with service_for(settings) as service:
        return await prescriber_copy(service, prescription_id, paris_clock().today)
