"""Each worker's own socket: what uvicorn pickles into a worker becomes a socket bound to the
shared port, in the port's SO_REUSEPORT group; a port taken by another program is refused."""

from __future__ import annotations

import pickle
import socket
import sys

import pytest

from adapters.serving import OwnSocket, bound

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT spreads on Linux")


def test_each_worker_unpickles_a_socket_of_its_own_on_the_held_port() -> None:
    held = bound("127.0.0.1", 0)
    port = held.getsockname()[1]
    try:
        shipped = pickle.dumps(OwnSocket("127.0.0.1", port))
        first, second = pickle.loads(shipped), pickle.loads(shipped)  # noqa: S301 - our own
        try:
            assert len(first) == len(second) == 1
            assert first[0].fileno() != second[0].fileno()
            for own in (first[0], second[0]):
                assert own.getsockname() == ("127.0.0.1", port)
                assert own.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
                own.listen()
        finally:
            for own in (*first, *second):
                own.close()
    finally:
        held.close()


def test_a_port_another_program_listens_on_is_refused() -> None:
    other = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(OSError, match="in use"):
            bound("127.0.0.1", other.getsockname()[1])
    finally:
        other.close()
