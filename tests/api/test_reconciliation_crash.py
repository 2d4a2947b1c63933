"""A batch survives its process: a crash mid-batch is resumed by another process, exactly.

Each chunk is committed in one transaction (claims, paid lines, items, progress), and the
process working on a batch holds a lease it renews with every chunk. Here a process "dies"
after two chunks (its lease left to run out); another one, reading the batch, resumes it at the
third chunk, and every invoice gets the outcome it would have had without the crash (the same
packs are billed again and again, so which invoice was paid first matters: `over_billed`).
(`tests/integration/test_reconciliation_100k.py` kills a real server process instead.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import pytest

from adapters.config import Settings
from adapters.librarylog import open_library_log
from adapters.readmodels import ReadModels, open_read_models
from adapters.reconciliation import reconciliation_for
from adapters.reconciliation.chunks import ParsedChunk, decide_chunk
from adapters.reconciliation.store import Batch
from projections.runner import ProjectionRunner
from tests.api.test_reconciliation_memory import append_prescriptions, body

T = TypeVar("T")
INVOICES = 5_000
CHUNK = 1_000


class Crash(BaseException):
    """The process dies: nothing of it runs any more (not even an `except Exception`)."""


async def with_log(
    settings: Settings, scenario: Callable[[ReadModels, list[str]], Awaitable[T]]
) -> T:
    """A log of dispensed prescriptions, projected; then the scenario."""
    log = open_library_log(settings.database_url, settings.data_dir)
    read_models = await open_read_models(settings, log)
    try:
        numbers = append_prescriptions(log)
        await ProjectionRunner(read_models.source, read_models.store).catch_up()
        return await scenario(read_models, numbers)
    finally:
        await read_models.close()
        log.close()


async def crash_after_two_chunks(
    read_models: ReadModels, numbers: list[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    first = reconciliation_for(read_models, owner="first", chunk_lines=CHUNK, lease_seconds=1)
    await first.store.create()
    commit = first.store.commit_chunk
    committed = 0

    async def dying(*args: Any, **kwargs: Any) -> Any:
        nonlocal committed
        if committed == 2:
            raise Crash
        committed += 1
        return await commit(*args, **kwargs)

    monkeypatch.setattr(first.store, "commit_chunk", dying)
    batch_id = await first.receive(body(numbers, INVOICES, 1))
    with pytest.raises(Crash):
        await first.process(batch_id)
    half = await first.store.batch(batch_id)
    assert half is not None and half.status == "running"
    assert (half.chunks_done, half.lines_done, half.owner) == (2, 2 * CHUNK, "first")
    return batch_id


async def uninterrupted(read_models: ReadModels, numbers: list[str], run: int) -> list[str]:
    """The outcome of each line had the batch run in one go, from the rules alone."""
    raw = b"".join([piece async for piece in body(numbers, INVOICES, run)])
    parsed = ParsedChunk.of(raw, 1)
    states = await read_models.store.encoded_states(parsed.numbers)
    prepared = decide_chunk("reference", 0, parsed, states, previous={}, paid={})
    return [item[3] for item in prepared.result.items]


async def test_a_batch_cut_off_by_a_crash_is_resumed_by_another_process(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(
        read_models: ReadModels, numbers: list[str]
    ) -> tuple[Batch, list[tuple[int, str]], list[str]]:
        expected = await uninterrupted(read_models, numbers, 1)
        batch_id = await crash_after_two_chunks(read_models, numbers, monkeypatch)
        second = reconciliation_for(read_models, owner="second", chunk_lines=CHUNK)

        await second.status(batch_id)  # the first process's lease still runs: left alone
        assert batch_id not in second._tasks
        await asyncio.sleep(1.2)  # now it has run out
        await second.status(batch_id)  # reading the batch resumes it, here
        await second.wait(batch_id)

        resumed = await second.store.batch(batch_id)
        lines: list[tuple[int, str]] = [
            (item.line, item.outcome)
            async for page in second.item_pages(batch_id, None)
            for item in page
        ]
        assert resumed is not None
        return resumed, lines, expected

    resumed, lines, expected = await with_log(settings, scenario)

    assert resumed.status == "done" and resumed.owner is None
    assert resumed.lines_done == resumed.lines_total == INVOICES
    assert [line for line, _ in lines] == list(range(1, INVOICES + 1))  # once each
    assert [outcome for _, outcome in lines] == expected  # as if it had never stopped
    assert {"matched", "over_billed", "quantity_mismatch"} <= set(expected)
    assert "duplicate_invoice" not in resumed.counts


async def test_an_upload_cut_off_leaves_nothing_behind(settings: Settings) -> None:
    async def scenario(read_models: ReadModels, numbers: list[str]) -> list[Batch]:
        reconciliation = reconciliation_for(read_models, chunk_lines=CHUNK)
        await reconciliation.store.create()

        async def broken() -> AsyncIterator[bytes]:
            async for piece in body(numbers, INVOICES, 3):
                yield piece
                raise ConnectionResetError("the client went away")

        with pytest.raises(ConnectionResetError):
            await reconciliation.receive(broken())
        return await reconciliation.store.unfinished()

    assert await with_log(settings, scenario) == []
