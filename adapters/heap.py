"""The server process's heap as the garbage collector sees it.

What start-up builds (some 150,000 objects: the modules, their classes and schemas, the
composition root, the catalogue in force) lives as long as the process, yet every full
collection would walk it again, holding the GIL while requests wait: the collector's cost per
request would grow with every module the server imports. Once `ordo serve` has started, it
moves those objects out of the collector's reach (`gc.freeze`); its full collections walk only
what requests and caches made since.
"""

from __future__ import annotations

import gc


def freeze_started_objects() -> None:
    """Collect start-up's garbage, then freeze every object left: a start-up hook, run once the
    lifespans have opened the stores and loaded the catalogue."""
    gc.collect()
    gc.freeze()
