"""The servers a run talks to: the API of this checkout or of another revision, on SQLite or
PostgreSQL (a private throwaway cluster, scripts/services' one, or a given URL) in a scratch
schema; and the facts of the machine and the database that the report states."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from tools import benchmarks_md, harness
from tools.bench.options import Options
from tools.bench.progress import BenchError, say
from tools.cast import SECRET
from tools.harness import HOST, ROOT, Server, free_port

API_APP = "ordo-bench-api"  # PGAPPNAME of the server's connections


# --- servers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """Which API to run: the stock `ordo serve --workers N`, as shipped, of this checkout or of
    another revision's (`source`), with the run's extra environment."""

    backend: str
    workers: int
    env: tuple[tuple[str, str], ...] = ()
    lines: str = "standard"  # what the seeded prescriptions prescribe (prescription_body)
    rev: str | None = None  # the stock server of this git revision, checked out in `source`
    source: Path | None = None
    catalogue: Path | None = None  # the BDPM files imported before the server starts

    @property
    def label(self) -> str:
        tuned = [f"{name}={value}" for name, value in self.env]
        what = "API" + (f" @{self.rev}" if self.rev else "")
        what += " narcotic" if self.lines == "narcotic" else ""
        what += " +catalogue" if self.catalogue else ""
        return what + (f" [{', '.join(tuned)}]" if tuned else "")


def server_env(spec: ServerSpec, data_dir: Path, database_url: str | None) -> dict[str, str]:
    """Our environment minus every ORDO_* setting (no Kafka, no failpoint), plus the run's."""
    env = harness.without_ordo_settings()
    env |= {"ORDO_AUTH_SECRET": SECRET, "ORDO_DATA_DIR": str(data_dir), "PGAPPNAME": API_APP}
    if database_url:
        env["ORDO_DATABASE_URL"] = database_url
    return env | dict(spec.env)


def running(
    spec: ServerSpec, env: dict[str, str], log: Path
) -> AbstractAsyncContextManager[Server]:
    """The spec's server, ready; `python -m` in another checkout runs that checkout's code."""
    return harness.running(env, log, workers=spec.workers, cwd=spec.source or ROOT)


# --- PostgreSQL: where, scratch schemas, facts ----------------------------------------------------


@contextlib.contextmanager
def database(opts: Options) -> Iterator[tuple[str | None, str]]:
    """The PostgreSQL server to use and where it comes from."""
    if "postgres" not in opts.backends:
        yield None, "not used"
    elif opts.database_url:
        yield opts.database_url, "given with --database-url"
    elif opts.postgres == "services":
        yield services_url(), "the one scripts/services runs"
    else:
        with private_postgres() as url:
            yield url, "private throwaway cluster, scripts/services' settings"


PG_SETTINGS = {  # as scripts/services writes them (fsync on: never ORDO_PG_FAST here)
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "shared_buffers": "256MB",
    "max_wal_size": "2GB",
    "fsync": "on",
    "synchronous_commit": "on",
}


def as_postgres(argv: list[str]) -> list[str]:
    """initdb and postgres refuse root: run them as the `postgres` user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: p.parts[-3])
    if not found:
        raise BenchError("no PostgreSQL binaries: `scripts/services up postgres` installs them")
    return found[-1].parent


@contextlib.contextmanager
def private_postgres() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="ordo-bench-pg-") as tmp:
        root, port, bin_dir = Path(tmp), free_port(), pg_bin()
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        settings = PG_SETTINGS | {"port": str(port), "unix_socket_directories": tmp}
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        data, ctl = str(root / "data"), str(bin_dir / "pg_ctl")
        _pg(bin_dir / "initdb", "-D", data, "-U", "ordo", "--auth=trust", "--no-sync")
        _pg(ctl, "-D", data, "-l", str(root / "postgres.log"), "-w", "-o", options, "start")
        try:
            yield f"postgresql://ordo@{HOST}:{port}/postgres"
        finally:
            _pg(ctl, "-D", data, "-m", "fast", "-w", "stop")


def _pg(*argv: str | Path) -> None:
    command = as_postgres([str(arg) for arg in argv])
    done = subprocess.run(command, cwd="/", capture_output=True, text=True, check=False)
    if done.returncode:
        raise BenchError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def services_url() -> str:
    url = os.environ.get("ORDO_TEST_DATABASE_URL")
    if url:
        return url
    services = str(ROOT / "scripts" / "services")
    subprocess.run([services, "up", "postgres"], check=True, stdout=sys.stderr)
    printed = subprocess.run([services, "env"], check=True, capture_output=True, text=True).stdout
    found = re.search(r"ORDO_TEST_DATABASE_URL=['\"]?([^'\"\s]+)", printed)
    if found is None:
        raise BenchError("no PostgreSQL: pass --database-url or run scripts/services up")
    return found.group(1)


@dataclass
class Scratch:
    """Scratch schemas made for this run, dropped at the end (unless --keep)."""

    url: str
    schemas: list[str] = field(default_factory=list)

    def create(self) -> str:
        name = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        self.schemas.append(name)
        return name

    def started_at(self) -> str:
        """When the PostgreSQL server started: a change means someone restarted it mid-run."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute("SELECT pg_postmaster_start_time()::text").fetchone()
        return str(row[0] if row else "?")

    def drop_all(self) -> None:
        try:
            self._drop_all()
        except psycopg.OperationalError as error:
            say(f"could not drop {self.schemas}: {error}", "yellow")

    def _drop_all(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            for name in self.schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name))
                )


def postgres_facts(url: str) -> dict[str, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        settings = conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
            "('fsync', 'synchronous_commit', 'wal_sync_method', 'shared_buffers', "
            "'max_connections', 'commit_delay') ORDER BY name"
        ).fetchall()
    facts = {"PostgreSQL": str(version[0] if version else "?").split()[0]}
    return facts | {str(name): str(value) for name, value in settings}


# --- machine facts --------------------------------------------------------------------------------


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def fdatasync_us(count: int = 200) -> float:
    """Latency of an 8 kB write + fdatasync in the temp dir (a commit's floor with fsync on)."""
    block = os.urandom(8192)
    with tempfile.NamedTemporaryFile() as scratch:
        started = time.perf_counter()
        for _ in range(count):
            os.pwrite(scratch.fileno(), block, 0)
            os.fdatasync(scratch.fileno())
        return (time.perf_counter() - started) / count * 1e6


def git_version() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    changed = len(git("status", "--porcelain").splitlines())
    return f"commit {git('rev-parse', '--short', 'HEAD')} + {changed} uncommitted file(s)"


def machine_facts(database_url: str | None) -> dict[str, str]:
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    facts = {
        "nproc": nproc.strip(),
        "CPU": cpu_model(),
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
        "Python": platform.python_version(),
        "fdatasync 8 kB (/tmp)": f"{fdatasync_us():.0f} µs",
        "Python sum(range(10**6))": benchmarks_md.python_speed(),
        "ordo": git_version(),
    }
    return facts | (postgres_facts(database_url) if database_url else {})
