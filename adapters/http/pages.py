"""Paging of every list: `limit` items a page and an opaque `cursor` over a stable sort key.

A page is sorted on a key that never changes for an item (a time, then an id) and the cursor
is the key of the page's last item, so items that arrive while a client pages never shift the
pages it has not read yet. One more item than asked is read: a cursor is given only when the
next page has something in it, so `next_cursor: null` means the last page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, TypeVar

import msgspec
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from adapters.http.call import Call
from domain.errors import invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500

Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="items per page")]
Cursor = Annotated[str | None, QueryParameter(description="next_cursor of the previous page")]

Key = TypeVar("Key", bound=msgspec.Struct)
Item = TypeVar("Item")


class PageRequest(msgspec.Struct, frozen=True):
    limit: int
    cursor: str | None

    @property
    def fetch(self) -> int:
        """How many items to read: one more than asked tells whether a next page exists."""
        return self.limit + 1

    def after(self, key_type: type[Key]) -> Key | None:
        """The key the page starts after; a cursor this server did not give is refused (422)."""
        if self.cursor is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(self.cursor + "=" * (-len(self.cursor) % 4))
            return msgspec.json.decode(raw, type=key_type)
        except (binascii.Error, ValueError, msgspec.DecodeError):
            raise invalid("cursor is not one this server gave", "cursor") from None

    def items(self, found: Sequence[Item]) -> Sequence[Item]:
        return found[: self.limit]

    def next_cursor(
        self, found: Sequence[Item], key: Callable[[Item], msgspec.Struct]
    ) -> str | None:
        if len(found) <= self.limit:
            return None
        return cursor_at(key(found[self.limit - 1]))


def cursor_at(key: msgspec.Struct) -> str:
    """The cursor of a page that ends at `key`."""
    encoded = msgspec.json.encode(key)
    return base64.urlsafe_b64encode(encoded).decode().rstrip("=")


def provide_page(
    # `call` only so that this resolves after the call, never beside it (see `Call`).
    call: NamedDependency[Call],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> PageRequest:
    return PageRequest(limit, cursor)
