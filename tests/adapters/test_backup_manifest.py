"""A backup's manifest, and what a restore refuses: a damaged file, another store's backup, a
restored log that is not the one backed up."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.backup.manifest import (
    BackupError,
    LogRow,
    Manifest,
    checked_manifest,
    file_entry,
    now,
    summarised,
    verify_restored_log,
    write_manifest,
)
from adapters.storedevents import EventMapper
from tests.domain.builders import dispensed, issued

MAPPER = EventMapper()


def row(position: int, event: object) -> LogRow:
    stored = MAPPER.to_stored(event)  # type: ignore[arg-type]
    return (
        position,
        str(stored.originator_id),
        stored.originator_version,
        stored.topic,
        stored.state,
    )


LOG = [
    row(1, issued(3)),
    row(2, dispensed(2, (1, 1))),
    row(5, dispensed(3, (1, 1), dispensation_id="d2")),
]


def backed_up(directory: Path, rows: list[LogRow] = LOG) -> Manifest:
    (directory / "ordo.dump").write_bytes(b"the dump" * 100)
    manifest = Manifest(
        store="postgresql",
        created_at=now(),
        log=summarised(rows),
        tables={"ordo_events": len(rows)},
        files={"ordo.dump": file_entry(directory / "ordo.dump")},
    )
    write_manifest(directory, manifest)
    return manifest


def test_a_whole_backup_is_accepted_as_written(tmp_path: Path) -> None:
    manifest = backed_up(tmp_path)

    assert checked_manifest(tmp_path, "postgresql") == manifest
    assert (manifest.log.events, manifest.log.head) == (3, 5)


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    backed_up(tmp_path)
    dump = tmp_path / "ordo.dump"
    dump.write_bytes(dump.read_bytes()[:-1])

    with pytest.raises(BackupError, match="truncated"):
        checked_manifest(tmp_path, "postgresql")


def test_an_altered_file_of_the_same_size_is_refused(tmp_path: Path) -> None:
    backed_up(tmp_path)
    dump = tmp_path / "ordo.dump"
    dump.write_bytes(dump.read_bytes().replace(b"dump", b"DUMP", 1))

    with pytest.raises(BackupError, match="SHA-256"):
        checked_manifest(tmp_path, "postgresql")


def test_a_missing_file_or_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="not an ordo backup"):
        checked_manifest(tmp_path, "postgresql")
    backed_up(tmp_path)
    (tmp_path / "ordo.dump").unlink()

    with pytest.raises(BackupError, match="missing"):
        checked_manifest(tmp_path, "postgresql")


def test_a_backup_of_the_other_store_is_refused(tmp_path: Path) -> None:
    backed_up(tmp_path)

    with pytest.raises(BackupError, match="not of sqlite"):
        checked_manifest(tmp_path, "sqlite")


def test_the_log_backed_up_restores_as_itself(tmp_path: Path) -> None:
    verify_restored_log(iter(LOG), backed_up(tmp_path))


def test_a_restored_log_missing_its_last_event_is_refused(tmp_path: Path) -> None:
    manifest = backed_up(tmp_path)

    with pytest.raises(BackupError, match="not the one backed up"):
        verify_restored_log(iter(LOG[:-1]), manifest)


def test_a_restored_event_altered_is_refused(tmp_path: Path) -> None:
    manifest = backed_up(tmp_path)
    position, stream, version, topic, state = LOG[1]
    altered = (position, stream, version, topic, state.replace(b'"d1"', b'"d9"'))

    with pytest.raises(BackupError, match="not the one backed up"):
        verify_restored_log(iter([LOG[0], altered, LOG[2]]), manifest)


def test_a_stream_with_a_missing_version_is_refused() -> None:
    with pytest.raises(BackupError, match="jumps to version 3"):
        summarised([LOG[0], LOG[2]])


def test_positions_out_of_order_are_refused() -> None:
    with pytest.raises(BackupError, match="out of order"):
        summarised([LOG[0], (1, *LOG[1][1:])])


def test_an_event_that_does_not_decode_is_refused() -> None:
    position, stream, version, topic, _ = LOG[1]

    with pytest.raises(BackupError, match="does not decode"):
        summarised([LOG[0], (position, stream, version, topic, b"{not json")])
    with pytest.raises(BackupError, match="does not decode"):
        summarised([(1, "x", 1, "SomethingElse.v1", b"{}")])
