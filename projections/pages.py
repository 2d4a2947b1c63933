"""The key a list is paged on: a time, then an id, so that items arriving while a client pages
never shift the pages it has not read yet (the cursor itself is the HTTP adapter's)."""

from __future__ import annotations

from datetime import datetime

import msgspec


class CursorKey(msgspec.Struct, frozen=True, array_like=True):
    at: datetime
    prescription_id: str
