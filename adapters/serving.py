"""`ordo serve --workers N`: uvicorn's supervisor, each worker listening on a socket of its own.

With one listening socket shared by the workers, the worker that wakes first accepts every
connection waiting (asyncio accepts until the queue is empty), so a burst of keep-alive
connections (an LGO's pool as it starts, a benchmark's clients) could land 30 on one worker and
2 on the other: the busier worker then sets every client's tail while the other idles. On
Linux each worker binds a socket of its own with `SO_REUSEPORT`, and the kernel spreads new
connections over the workers' sockets by their addresses (ADR 39). The supervisor only holds
the port, bound and never listening, so that a port already taken fails at once, with its
reason, rather than in every worker.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

# macOS accepts SO_REUSEPORT but hands every connection to one socket: no spreading there.
SPREADS_CONNECTIONS = sys.platform == "linux"


def bound(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) in the port's group of `SO_REUSEPORT` sockets."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class OwnSocket(list[socket.socket]):
    """What uvicorn hands each worker as its sockets: pickled into the worker (uvicorn spawns
    them, and spawns again the one that dies), it becomes a socket of that worker's own, bound
    to the shared port; the worker's server listens on it."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self.host, self.port = host, port

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return _own_socket, (self.host, self.port)


def _own_socket(host: str, port: int) -> list[socket.socket]:
    return [bound(host, port)]


def serve_workers(config: uvicorn.Config) -> None:
    """Run `config`'s app in `config.workers` processes under uvicorn's supervisor, each on a
    socket of its own where the kernel spreads connections (elsewhere, one shared socket)."""
    if not SPREADS_CONNECTIONS:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    held = bound(config.host, config.port)  # the port is ours, or this fails now
    try:
        Multiprocess(config, sockets=OwnSocket(config.host, held.getsockname()[1])).run()
    finally:
        held.close()
