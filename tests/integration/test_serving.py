"""`ordo serve --workers 2`: connections spread over the workers, each on a socket of its own.

Given two workers, one of them busy (stopped here, as a long request or a collection would hold
it), when a pharmacy's software opens its pool of 40 keep-alive connections, then each worker
serves a share of the pool, the busy one once it resumes: the kernel spreads connections by
their addresses. With one socket shared by the workers, the idle one accepted every connection,
and kept the whole pool once the other was idle again.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.servers import ordo_server, wait_for
from tools import harness
from tools.cast import SECRET

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(sys.platform != "linux", reason="SO_REUSEPORT spreads on Linux only"),
]
POOL = 40
BUSY_SECONDS = 1.0
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: ordo\r\n\r\n"


def workers_of(supervisor: int) -> list[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [
        int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def sockets_of(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = str(fd.readlink())
        except OSError:  # closed meanwhile
            continue
        if match := re.fullmatch(r"socket:\[(\d+)\]", target):
            inodes.add(match.group(1))
    return inodes


ESTABLISHED, LISTENING = "01", "0A"  # /proc/net/tcp's states


def sockets_on(port: int, state: str) -> set[str]:
    """The inodes of this machine's sockets on local `port` in `state`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[9]
        if local_port == port and fields[3] == state and inode != "0":
            inodes.add(inode)
    return inodes


@contextmanager
def stopped(pids: list[int]) -> Iterator[None]:
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def test_a_pool_opened_while_one_worker_is_busy_is_shared_between_them(
    postgres_url: str, tmp_path: Path
) -> None:
    with ordo_server(postgres_url, tmp_path, workers=2) as (base_url, process):
        port = int(base_url.rsplit(":", 1)[1])
        workers = workers_of(process.pid)
        assert len(workers) == 2
        wait_for(
            lambda: all(sockets_of(w) & sockets_on(port, LISTENING) for w in workers),
            what="both workers listening",
        )

        with stopped(workers[:1]):
            pool = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(POOL)]
            for connection in pool:
                connection.sendall(REQUEST)
            time.sleep(BUSY_SECONDS)  # the idle worker takes what it can meanwhile
        try:
            for connection in pool:
                assert connection.recv(1024).startswith(b"HTTP/1.1 200")

            served = sockets_on(port, ESTABLISHED)
            shares = sorted(len(sockets_of(worker) & served) for worker in workers)
        finally:
            for connection in pool:
                connection.close()

    assert sum(shares) == POOL
    # Spread by the connections' addresses: under 8 of 40 on one side is a 1-in-20,000 draw.
    assert shares[0] >= 8, shares


def test_a_port_another_program_holds_stops_the_supervisor_at_once_with_why(
    postgres_url: str, tmp_path: Path
) -> None:
    other = socket.create_server(("127.0.0.1", 0))
    try:
        port = other.getsockname()[1]
        env = {**os.environ, "ORDO_DATABASE_URL": postgres_url, "ORDO_DATA_DIR": str(tmp_path)}
        env["ORDO_AUTH_SECRET"] = SECRET
        served = subprocess.run(
            harness.ordo_argv("serve", "--port", str(port), "--workers", "2"),
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        other.close()
    assert served.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in served.stderr
    assert "in use" in served.stderr
