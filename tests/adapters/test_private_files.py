"""The secrets an instance generates for itself: written whole, once, readable by its owner."""

from __future__ import annotations

import multiprocessing
import secrets
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from adapters import config
from adapters.private_files import write_private, written_once
from adapters.webhooks.signing import webhooks_key


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_first_reader_writes_it_and_later_ones_read_it(tmp_path: Path) -> None:
    path = tmp_path / "data" / "secret"

    first = written_once(path, lambda: b"mine")
    again = written_once(path, lambda: pytest.fail("generated a second time"))

    assert first == again == b"mine"
    assert mode_of(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret"]  # no partial file left


def test_another_process_that_put_its_own_in_place_first_wins(tmp_path: Path) -> None:
    path = tmp_path / "secret"

    def while_another_writes_theirs() -> bytes:
        path.write_bytes(b"theirs")
        return b"mine"

    assert written_once(path, while_another_writes_theirs) == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


def test_workers_starting_together_share_one_webhooks_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    start, keys = context.Barrier(6), context.SimpleQueue()

    def worker() -> None:
        start.wait()
        keys.put(webhooks_key(None, tmp_path))

    workers = [context.Process(target=worker) for _ in range(6)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(10)

    assert [process.exitcode for process in workers] == [0] * 6
    assert {keys.get() for _ in workers} == {(tmp_path / "webhooks.key").read_bytes()}


def test_a_webhooks_key_written_while_ours_was_generated_is_the_one_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = Fernet.generate_key()

    def while_another_worker_writes_theirs() -> bytes:
        (tmp_path / "webhooks.key").write_bytes(theirs)
        return b"mine"

    monkeypatch.setattr(Fernet, "generate_key", while_another_worker_writes_theirs)

    assert webhooks_key(None, tmp_path) == theirs


def test_a_configured_webhooks_key_writes_no_file(tmp_path: Path) -> None:
    assert webhooks_key("configured", tmp_path) == b"configured"
    assert not (tmp_path / "webhooks.key").exists()


def test_the_local_auth_secret_is_the_one_another_process_wrote_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def while_ordo_token_writes_theirs(_: int) -> str:
        (tmp_path / "auth-secret").write_text("theirs")
        return "mine"

    monkeypatch.setattr(secrets, "token_urlsafe", while_ordo_token_writes_theirs)

    assert config.local_secret(tmp_path) == "theirs"


def test_the_local_auth_secret_is_never_readable_by_others(tmp_path: Path) -> None:
    secret = config.local_secret(tmp_path)

    assert mode_of(tmp_path / "auth-secret") == 0o600
    assert config.local_secret(tmp_path) == secret


def test_writing_a_private_file_replaces_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    write_private(path, b"old")
    write_private(path, b"new")

    assert path.read_bytes() == b"new"
    assert mode_of(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]
