"""Files only the instance's owner may read: the secrets it generates for itself under its data
directory (the development auth secret, the webhooks key, the receipt keys).

A reader never sees one half written: each is written whole under another name, then put in
place by one rename or link.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """`data` in `path`, replacing what was there."""
    partial = _written_aside(path, data)
    partial.replace(path)


def written_once(path: Path, generate: Callable[[], bytes]) -> bytes:
    """What `path` holds; the first process that finds it missing writes `generate()` there.
    Processes starting together (the workers of one `ordo serve`) may all generate one: a link
    puts the first in place and the others read it instead of their own."""
    if not path.exists():
        partial = _written_aside(path, generate())
        try:
            os.link(partial, path)
        except FileExistsError:
            pass  # another process put its own in place first: that one counts
        finally:
            partial.unlink()
    return path.read_bytes()


def _written_aside(path: Path, data: bytes) -> Path:
    """`data` in a file of its own beside `path`, mode 0600 from its creation, on disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    return partial
