"""French text as the rules compare it: without case, accents or typographic quotes."""

from __future__ import annotations

import re
import unicodedata


def normalized(text: str) -> str:
    """Lower case without accents or typographic quotes: "CODÉINE" and "codeine" are equal."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", normalized(text))
