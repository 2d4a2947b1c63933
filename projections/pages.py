"""Pagination of the lists: an opaque cursor over a stable sort key.

A page is sorted on (time, prescription number) and the cursor is the key of its last item, so
prescriptions that arrive while a client pages never shift the pages it has not read yet.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import msgspec

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class CursorKey(msgspec.Struct, frozen=True, array_like=True):
    at: datetime
    prescription_id: str


class InvalidCursor(ValueError):  # noqa: N818 - reads as the refusal it is
    pass


def encode_cursor(key: CursorKey) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")


def decode_cursor(text: str) -> CursorKey:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return msgspec.json.decode(raw, type=CursorKey)
    except (binascii.Error, ValueError, msgspec.DecodeError) as error:
        msg = "cursor is not one this server gave"
        raise InvalidCursor(msg) from error


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        msg = f"limit must be between 1 and {MAX_LIMIT}, got {limit}"
        raise ValueError(msg)
    return limit
