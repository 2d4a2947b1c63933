"""ORDO_DATABASE_URL naming one server or several, and what a lost database looks like."""

from __future__ import annotations

import asyncpg
import psycopg
from asyncpg.exceptions import TargetServerAttributeNotMatched

from adapters.http.problems import unexpected
from adapters.postgres import asyncpg_target, database_unavailable, libpq_parameters, servers_of

FAILOVER_URL = (
    "postgresql://ordo:s3cret@db-a:5432,db-b:5433/ordo"
    "?target_session_attrs=read-write&schema=prod&pool_size=4"
)


def test_a_multi_host_url_keeps_every_server_and_drops_ordos_own_options() -> None:
    dsn, schema = asyncpg_target(FAILOVER_URL)

    assert (
        dsn == "postgresql://ordo:s3cret@db-a:5432,db-b:5433/ordo?target_session_attrs=read-write"
    )
    assert schema == "prod"


def test_libpq_is_given_the_servers_as_lists_and_the_other_options_as_keywords() -> None:
    assert libpq_parameters(FAILOVER_URL) == {
        "user": "ordo",
        "password": "s3cret",
        "host": "db-a,db-b",
        "port": "5432,5433",
        "dbname": "ordo",
        "target_session_attrs": "read-write",
    }


def test_a_log_names_the_servers_without_the_password() -> None:
    assert servers_of(FAILOVER_URL) == "db-a:5432,db-b:5433/ordo"


def test_a_refused_or_cut_connection_or_a_standby_means_the_database_is_unavailable() -> None:
    assert database_unavailable(ConnectionRefusedError(111, "Connect call failed"))
    assert database_unavailable(asyncpg.ConnectionDoesNotExistError("closed mid-operation"))
    assert database_unavailable(asyncpg.CannotConnectNowError("the database is starting up"))
    assert database_unavailable(TargetServerAttributeNotMatched("none is read-write"))
    assert database_unavailable(psycopg.OperationalError("server closed the connection"))
    assert database_unavailable(OSError("Multiple exceptions: [Errno 111] ..., [Errno 99] ..."))


def test_a_cause_further_down_the_chain_counts_too() -> None:
    try:
        try:
            raise ConnectionResetError(104, "reset by peer")
        except ConnectionResetError as lost:
            raise RuntimeError("append failed") from lost
    except RuntimeError as error:
        assert database_unavailable(error)


def test_a_bug_or_a_misconfiguration_is_not_an_unavailable_database() -> None:
    assert not database_unavailable(ValueError("bad"))
    assert not database_unavailable(FileNotFoundError(2, "no such file"))
    assert not database_unavailable(asyncpg.ClientConfigurationError("bad sslmode"))
    assert not database_unavailable(asyncpg.UniqueViolationError("duplicate key"))


def test_an_unavailable_database_is_answered_503_with_retry_after() -> None:
    answer = unexpected(None, ConnectionRefusedError(111, "Connect call failed"))  # type: ignore[arg-type]

    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "2"
    assert answer.content.code == "database_unavailable"


def test_any_other_error_stays_a_500() -> None:
    answer = unexpected(None, KeyError("x"))  # type: ignore[arg-type]

    assert (answer.status_code, answer.content.code) == (500, "internal_error")
