"""HAPI FHIR's JPA server: the starter project's source at a tag, built with Maven, run with
`java -jar` against a PostgreSQL database of its own."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg
from psycopg import sql

from tools.bench.progress import BenchError, say
from tools.harness import HOST, ROOT, free_port, stop

STARTER = "https://github.com/hapifhir/hapi-fhir-jpaserver-starter"
TAG = "image/v8.8.0-1"  # the starter's release on HAPI FHIR 8.8.0 (its pom's parent)
WORK = ROOT / ".services" / "hapi"
# The starter's tests are neither built (-DskipTests) nor checked out: some of their resources
# are large files that a partial mirror may lack.
SPARSE = ("/*", "!/src/test/")
READY_PATIENCE = 900.0  # seconds: a first start creates HAPI's tables on a loaded machine
POSTGRES_DIALECT = "ca.uhn.fhir.jpa.model.dialect.HapiFhirPostgresDialect"


def is_url(source: str) -> bool:
    return "://" in source or source.startswith("git@")


def checkout(source: str, tag: str, where: Path) -> Path:
    """The starter at `tag` in `where`: cloned from a URL or a git directory (a bare mirror
    too), kept from an earlier run if it is there at `tag` already; or a checkout used as it is
    when `source` is a directory without git history."""
    path = Path(source)
    if not is_url(source) and path.is_dir() and not _is_git(path):
        return path
    if _at(where, tag):
        return where
    if where.exists():
        shutil.rmtree(where)
    where.parent.mkdir(parents=True, exist_ok=True)
    shallow = ["--depth", "1", "--branch", tag] if is_url(source) else []
    _git("clone", "--quiet", "--no-checkout", *shallow, source, str(where))
    _git("-C", str(where), "sparse-checkout", "set", "--no-cone", *SPARSE)
    _git("-C", str(where), "checkout", "--quiet", tag)
    return where


def _at(tree: Path, tag: str) -> bool:
    def rev(name: str) -> str:
        argv = ["git", "-C", str(tree), "rev-parse", "--verify", "--quiet", name]
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()

    return (tree / ".git").exists() and rev("HEAD") == rev(f"{tag}^{{commit}}") != ""


def _is_git(path: Path) -> bool:
    return (path / ".git").exists() or (path / "HEAD").is_file()


def _git(*argv: str) -> None:
    done = subprocess.run(["git", *argv], capture_output=True, text=True, check=False)
    if done.returncode:
        raise BenchError(f"git {' '.join(argv)} failed:\n{done.stderr[-2000:]}")


def build(tree: Path) -> Path:
    """`mvn -q -DskipTests package` (Maven's cache: ~/.m2) unless the war is newer than the
    pom; the war."""
    war = tree / "target" / "ROOT.war"
    if war.exists() and war.stat().st_mtime > (tree / "pom.xml").stat().st_mtime:
        say(f"HAPI: {war} already built")
        return war
    log = tree.parent / "mvn.log"
    say(f"HAPI: mvn -q -DskipTests package in {tree} (log: {log}); this takes minutes")
    with log.open("wb") as out:
        done = subprocess.run(
            ["mvn", "-q", "-B", "-DskipTests", "package"],
            cwd=tree,
            stdout=out,
            stderr=out,
            check=False,
        )
    if done.returncode or not war.exists():
        raise BenchError(f"the HAPI build failed (see {log}):\n{_tail(log)}")
    return war


def _tail(log: Path, characters: int = 3000) -> str:
    return log.read_text(errors="replace")[-characters:]


def hapi_database(url: str, name: str = "hapi") -> str:
    """A fresh database `name` on the PostgreSQL server of `url`; its JDBC URL."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urlsplit(url)
    return f"jdbc:postgresql://{parts.hostname}:{parts.port or 5432}/{name}"


def hapi_argv(war: Path, jdbc_url: str, user: str, port: int, heap: str) -> list[str]:
    """The stock starter, on PostgreSQL instead of its in-memory H2, on `port`."""
    return [
        "java",
        f"-Xmx{heap}",
        "-jar",
        str(war),
        f"--server.port={port}",
        f"--server.address={HOST}",
        f"--spring.datasource.url={jdbc_url}",
        f"--spring.datasource.username={user}",
        "--spring.datasource.password=",
        "--spring.datasource.driver-class-name=org.postgresql.Driver",
        f"--spring.jpa.properties.hibernate.dialect={POSTGRES_DIALECT}",
    ]


@contextlib.contextmanager
def running_hapi(war: Path, database_url: str, log: Path, heap: str) -> Iterator[tuple[int, int]]:
    """HAPI on a fresh database, ready (its /fhir/metadata answers); (port, pid)."""
    jdbc_url = hapi_database(database_url)
    port = free_port()
    argv = hapi_argv(war, jdbc_url, urlsplit(database_url).username or "postgres", port, heap)
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv, cwd=war.parent, stdout=out, stderr=out, env=dict(os.environ)
        )
    try:
        _wait_ready(port, process, log)
        yield port, process.pid
    finally:
        stop(process, grace=30.0)


def _wait_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_PATIENCE
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=5.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchError(f"HAPI exited with {process.returncode}:\n{_tail(log)}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/fhir/metadata").status_code == 200:
                    return
            time.sleep(1.0)
    raise BenchError(f"HAPI not ready after {READY_PATIENCE:.0f} s:\n{_tail(log)}")
