"""The MSSanté directory: which pharmacy (FINESS) has which organisational mailbox (BAL ORG).

Read from the CSV file `ORDO_MSSANTE_DIRECTORY` (`finess,address`, a header line allowed) and
read again whenever the file changes, so that an operator updates it without a restart. An
address outside `mssante.fr` is refused (the trust space exchanges with nobody else): the
pharmacy then has no BAL ORG, as if it were not listed, and the refusal is logged.
"""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import structlog

from domain.conversation import is_mssante
from domain.identifiers import Finess, InvalidIdentifier

log = structlog.get_logger("ordo.directory")


class MssanteDirectory:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._addresses: dict[str, str] = {}
        self._seen: tuple[float, int] | None = None
        self._lock = threading.Lock()

    def bal_org(self, finess: str) -> str | None:
        """The pharmacy's BAL ORG as the file says now, or None when it has none."""
        with self._lock:
            self._reload_if_changed()
            return self._addresses.get(finess)

    def _reload_if_changed(self) -> None:
        if self.path is None:
            return
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if self._seen is not None:
                log.warning("mssante directory missing", path=str(self.path))
            self._addresses, self._seen = {}, None
            return
        seen = (stat.st_mtime, stat.st_size)
        if seen != self._seen:
            self._addresses = read_directory(self.path)
            self._seen = seen
            log.info(
                "mssante directory loaded", path=str(self.path), mailboxes=len(self._addresses)
            )


def read_directory(path: Path) -> dict[str, str]:
    addresses: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            entry = _entry(row, number)
            if entry is not None:
                addresses[entry[0]] = entry[1]
    return addresses


def _entry(row: list[str], number: int) -> tuple[str, str] | None:
    cells = [cell.strip() for cell in row]
    if len(cells) < 2 or not cells[0] or cells[0].lower() == "finess":
        return None  # a blank line or the header
    try:
        finess = Finess.parse(cells[0]).value
    except InvalidIdentifier:
        log.warning("mssante directory: invalid finess", line=number)
        return None
    if not is_mssante(cells[1]):
        log.warning("mssante directory: address outside mssante.fr refused", finess=finess)
        return None
    return finess, cells[1].lower()
