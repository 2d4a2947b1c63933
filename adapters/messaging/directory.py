"""The MSSanté directory: which pharmacy (FINESS) has which organisational mailbox (BAL ORG),
and which prescriber (RPPS) has which personal MSSanté address.

Read from the CSV file `ORDO_MSSANTE_DIRECTORY` (rows `finess,address` and `rpps,address`, told
apart by the identifier's length, header lines allowed) and read again whenever the file
changes, so that an operator updates it without a restart. An address outside `mssante.fr` is
refused (the trust space exchanges with nobody else): the pharmacy or prescriber then has no
mailbox, as if it were not listed, and the refusal is logged.
"""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import structlog

from domain.conversation import is_mssante
from domain.identifiers import Finess, InvalidIdentifier, Rpps

log = structlog.get_logger("ordo.directory")
Listed = tuple[str, str]  # ("finess" or "rpps", the identifier)


class MssanteDirectory:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._addresses: dict[Listed, str] = {}
        self._seen: tuple[float, int] | None = None
        self._lock = threading.Lock()

    def bal_org(self, finess: str) -> str | None:
        """The pharmacy's BAL ORG as the file says now, or None when it has none."""
        return self._address(("finess", finess))

    def prescriber_mailbox(self, rpps: str) -> str | None:
        """The prescriber's MSSanté address as the file says now, or None when it has none."""
        return self._address(("rpps", rpps))

    def _address(self, listed: Listed) -> str | None:
        with self._lock:
            self._reload_if_changed()
            return self._addresses.get(listed)

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


def read_directory(path: Path) -> dict[Listed, str]:
    """Each listed FINESS's and RPPS's address (an RPPS has 11 digits, a FINESS 9)."""
    addresses: dict[Listed, str] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            entry = _entry(row, number)
            if entry is not None:
                addresses[entry[0]] = entry[1]
    return addresses


def _entry(row: list[str], number: int) -> tuple[Listed, str] | None:
    cells = [cell.strip() for cell in row]
    if len(cells) < 2 or not cells[0] or cells[0].lower() in {"finess", "rpps"}:
        return None  # a blank line or a header
    kind = "rpps" if len("".join(cells[0].split())) == RPPS_LENGTH else "finess"
    try:
        identifier = (Rpps if kind == "rpps" else Finess).parse(cells[0]).value
    except InvalidIdentifier:
        log.warning(f"mssante directory: invalid {kind}", line=number)
        return None
    if not is_mssante(cells[1]):
        log.warning("mssante directory: address outside mssante.fr refused", **{kind: identifier})
        return None
    return (kind, identifier), cells[1].lower()


RPPS_LENGTH = 11
