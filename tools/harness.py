"""What the tests and the benchmarks both need to run real servers: a free port, `ordo serve`
started and waited for until it answers /readyz, any other `ordo COMMAND` in the background,
and a stop that lets them shut down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
READY_PATIENCE = 90.0  # seconds: a first start on PostgreSQL creates every table


class ServerNotReadyError(RuntimeError):
    """`ordo serve` exited, or did not answer /readyz in time; the message ends its log."""


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on the loopback interface."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes], patience: float = 20.0) -> None:
    """Until something accepts connections on `port` (a server that has no /readyz, such as
    an SMTP relay); `process` exiting first is an error."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerNotReadyError(f"{process.args!r} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise ServerNotReadyError(f"nothing listens on port {port} after {patience:.0f} s")


def ordo_argv(*arguments: str) -> list[str]:
    """`ordo ARGUMENTS…` run by this interpreter (`python -m` puts the checkout first)."""
    return [sys.executable, "-m", "adapters.cli", *arguments]


def timed_ordo(env: Mapping[str, str], *arguments: str, cwd: Path = ROOT) -> float:
    """Seconds `ordo ARGUMENTS…` takes to completion; a failure stops the benchmark with the
    end of its output."""
    began = time.perf_counter()
    done = subprocess.run(
        ordo_argv(*arguments),
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - began
    if done.returncode:
        raise SystemExit(
            f"ordo {' '.join(arguments)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return seconds


def start_ordo(
    arguments: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    *,
    cwd: Path = ROOT,
    stdout_to_log: bool = True,
) -> subprocess.Popen[bytes]:
    """`ordo ARGUMENTS…` in the background, its stderr (and its stdout unless told not to:
    a server writes one JSON line per request there) appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            ordo_argv(*arguments),
            cwd=cwd,
            env=dict(env),
            stdout=out if stdout_to_log else subprocess.DEVNULL,
            stderr=out,
        )


def stop(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """SIGTERM (servers, relays and workers shut down gracefully), SIGKILL after `grace`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class Server:
    """An `ordo serve` process and where it listens."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid


def spawn_server(
    env: Mapping[str, str],
    log: Path,
    *,
    workers: int = 1,
    cwd: Path = ROOT,
    stdout_to_log: bool = False,
) -> Server:
    """`ordo serve` on a free port, not yet waited for."""
    port = free_port()
    serve = ["serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    process = start_ordo(serve, env, log, cwd=cwd, stdout_to_log=stdout_to_log)
    return Server(process, port, log)


def wait_ready(server: Server, patience: float = READY_PATIENCE) -> None:
    """Until /readyz answers 200; a server that exits first, or never answers, is reported
    with the end of its log."""
    deadline = time.monotonic() + patience
    with httpx.Client(base_url=server.base_url, timeout=1.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise ServerNotReadyError(
                    f"ordo serve exited with {server.process.returncode}:\n{_tail(server.log)}"
                )
            with contextlib.suppress(httpx.TransportError):
                if client.get("/readyz").status_code == 200:
                    return
            time.sleep(0.1)
    raise ServerNotReadyError(f"ordo serve not ready after {patience:.0f} s:\n{_tail(server.log)}")


def _tail(log: Path, characters: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-characters:]
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def serving(
    env: Mapping[str, str],
    log: Path | None = None,
    *,
    workers: int = 1,
    cwd: Path = ROOT,
    stdout_to_log: bool = False,
    patience: float = READY_PATIENCE,
    grace: float = 20.0,
) -> Iterator[Server]:
    """A ready `ordo serve`, stopped afterwards; without `log`, a temporary file holds its
    stderr (a pipe nobody reads would block a server that logs a lot)."""
    with contextlib.ExitStack() as stack:
        if log is None:
            log = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ordo-serve-")))
            log /= "server.log"
        server = spawn_server(env, log, workers=workers, cwd=cwd, stdout_to_log=stdout_to_log)
        try:
            wait_ready(server, patience)
            yield server
        except Exception:
            # A failing test shows what the server said (pytest reports the captured stderr).
            print(f"--- the end of {log}:\n{_tail(log)}", file=sys.stderr)
            raise
        finally:
            stop(server.process, grace)


@contextlib.asynccontextmanager
async def running(
    env: Mapping[str, str],
    log: Path,
    *,
    workers: int = 1,
    cwd: Path = ROOT,
    stdout_to_log: bool = False,
) -> AsyncIterator[Server]:
    """`serving` for a benchmark's event loop: the waits run in a thread."""
    server = spawn_server(env, log, workers=workers, cwd=cwd, stdout_to_log=stdout_to_log)
    try:
        await asyncio.to_thread(wait_ready, server)
        yield server
    finally:
        await asyncio.to_thread(stop, server.process)


def without_ordo_settings(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The environment minus every ORDO_* setting (no Kafka, no failpoint of the caller's)."""
    return {name: value for name, value in environ.items() if not name.startswith("ORDO_")}
