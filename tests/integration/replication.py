"""Two real PostgreSQL servers on this machine: a primary and its streaming standby (made by
`pg_basebackup -R`), commits synchronous on both, for failover drills.

The servers are the binaries `scripts/services` uses (the newest /usr/lib/postgresql/*/bin);
as root they run as the `postgres` user, as `scripts/services` runs them. Their data
directories live in a temporary directory removed when the pair stops.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tools.harness import free_port

ROLE = "ordo"
DATABASE = "postgres"
SERVERS = Path("/usr/lib/postgresql")
# Written on the primary's command line only: a standby promoted with the same setting would
# wait for a standby of its own before acknowledging any commit.
SYNCHRONOUS = "-c synchronous_standby_names='*' -c synchronous_commit=on"
COMMON = "-c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=100"


def server_binaries() -> Path | None:
    """The newest PostgreSQL's bin directory with what a drill runs, or None."""
    found = [
        path
        for path in SERVERS.glob("*/bin")
        if all((path / tool).exists() for tool in ("initdb", "pg_ctl", "pg_basebackup"))
    ]
    return max(found, key=lambda path: int(path.parent.name), default=None)


@dataclass
class Server:
    name: str
    data: Path
    port: int
    options: str

    @property
    def url(self) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{DATABASE}"


class Pair:
    """A primary and its synchronous standby, started; `stop_primary` and `promote` fail over."""

    def __init__(self, bin_dir: Path, root: Path) -> None:
        self.bin = bin_dir
        self.root = root
        self.primary = Server("primary", root / "primary", free_port(), SYNCHRONOUS)
        self.standby = Server("standby", root / "standby", free_port(), "")

    @property
    def url(self) -> str:
        """The multi-host URL ordo is given: whichever of the two accepts writes."""
        hosts = f"127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
        return f"postgresql://{ROLE}@{hosts}/{DATABASE}?target_session_attrs=read-write"

    def run(self, *argv: str) -> None:
        """A server-side command, as the `postgres` user when we are root."""
        command = [str(self.bin / argv[0]), *argv[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, cwd="/", capture_output=True, timeout=60)

    def start(self, server: Server) -> None:
        options = f"-p {server.port} {COMMON} {server.options}"
        log = self.root / f"{server.name}.log"
        self.run("pg_ctl", "-D", str(server.data), "-l", str(log), "-o", options, "-w", "start")

    def create(self) -> None:
        self.run("initdb", "-D", str(self.primary.data), "-U", ROLE, "--auth=trust", "-N")
        self.start(self.primary)
        self.run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(self.primary.port), "-U", ROLE),
            *("-D", str(self.standby.data), "-R", "-X", "stream", "--no-sync"),
        )
        self.start(self.standby)
        self.wait_synchronous()

    def wait_synchronous(self, patience: float = 30.0) -> None:
        deadline = time.monotonic() + patience
        query = "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
        while time.monotonic() < deadline:
            with psycopg.connect(self.primary.url) as conn:
                row = conn.execute(query).fetchone()
            if row is not None and row[0] == 1:
                return
            time.sleep(0.1)
        raise AssertionError("the standby never became synchronous")

    def stop_primary(self) -> None:
        """The primary dies the hard way: no checkpoint, sessions cut."""
        self.run("pg_ctl", "-D", str(self.primary.data), "-m", "immediate", "stop")

    def promote(self) -> None:
        self.run("pg_ctl", "-D", str(self.standby.data), "-w", "promote")

    def stop(self) -> None:
        for server in (self.primary, self.standby):
            if (server.data / "postmaster.pid").exists():
                with suppress(subprocess.SubprocessError):
                    self.run("pg_ctl", "-D", str(server.data), "-m", "immediate", "stop")


@contextmanager
def replicated_pair(bin_dir: Path) -> Iterator[Pair]:
    """A primary and its synchronous standby in a temporary directory, stopped and removed
    afterwards."""
    root = Path(tempfile.mkdtemp(prefix="ordo-failover-", dir="/var/tmp"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    pair = Pair(bin_dir, root)
    try:
        pair.create()
        yield pair
    finally:
        pair.stop()
        shutil.rmtree(root, ignore_errors=True)
