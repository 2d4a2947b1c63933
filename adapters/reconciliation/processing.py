"""Batches: received as a stream, reconciled chunk by chunk in the background, read back.

Memory stays flat whatever the batch's size: the upload is staged chunk by chunk as it
arrives (`Chunker`), processing holds at most LOOKAHEAD + 2 chunks (being looked up, decided,
committed: see `_chunks`), and items are read back page by page.

A batch survives a crash. Each chunk is committed in one transaction (its invoice numbers
claimed, its items, the batch's counts and progress, and the chunk dropped from staging), so a
chunk is reconciled entirely or not at all. The process working on a batch holds a lease that
every commit renews; when it dies, the lease runs out (`LEASE_SECONDS`) and the next process
that reads the batch (`GET`, or the first reconciliation request after a restart) resumes it
at the first chunk not committed. An upload cut off before its end never got a `batch_id`
out, so its staged chunks are deleted.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import suppress
from datetime import UTC, datetime
from functools import partial

import anyio.to_thread
import structlog

from adapters.readmodels import ReadModels
from adapters.reconciliation.chunks import (
    Handover,
    LookedUp,
    ParsedChunk,
    PreparedChunk,
    decide_chunk,
    with_paid,
)
from adapters.reconciliation.ndjson import CHUNK_LINES, Chunker, RawChunk
from adapters.reconciliation.store import (
    Batch,
    BatchStore,
    Item,
    LostLease,
)
from domain.reconciliation.invoices import Outcome
from domain.reconciliation.receipts import ReceiptCheck
from domain.reconciliation.records import SubstituteCheck

log = structlog.get_logger("ordo.reconciliation")

OWNER = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
# How long a batch whose process died waits before another process resumes it (every commit
# renews the lease; a chunk takes well under a second). Tests of a real kill shorten it.
LEASE_SECONDS = float(os.environ.get("ORDO_RECONCILIATION_LEASE_SECONDS", "60"))
RETRY_SECONDS = 10.0  # after a failure, before another attempt may take the batch
VIEWS_WAIT_SECONDS = 30.0
ITEMS_PAGE = 5000
LOOKAHEAD = 2  # chunks looked up ahead of the one being decided

Progress = Callable[[int, int], None]  # (invoices done, invoices in the batch)


class Reconciliation:
    """The reconciliation batches of one instance, whichever store holds them."""

    def __init__(
        self,
        store: BatchStore,
        read_models: ReadModels,
        *,
        owner: str = OWNER,
        chunk_lines: int = CHUNK_LINES,
        lease_seconds: float = LEASE_SECONDS,
        views_wait_seconds: float = VIEWS_WAIT_SECONDS,
        substitute: SubstituteCheck | None = None,
        receipts: ReceiptCheck | None = None,
    ) -> None:
        self.store = store
        self.substitute = substitute
        self.receipts = receipts
        self.read_models = read_models
        self.owner = owner
        self.chunk_lines = chunk_lines
        self.lease_seconds = lease_seconds
        self.views_wait_seconds = views_wait_seconds
        self._tasks: dict[str, asyncio.Task[bool]] = {}
        self._ready: asyncio.Task[None] | None = None

    async def ready(self) -> None:
        """Create the tables once, then resume what a dead process left unfinished."""
        if self._ready is None:
            self._ready = asyncio.ensure_future(self._prepare())
        await asyncio.shield(self._ready)

    async def _prepare(self) -> None:
        await self.store.create()
        await self.resume_unfinished()

    # --- receiving -------------------------------------------------------------------------------

    async def receive(self, body: AsyncIterable[bytes]) -> str:
        """Stage the NDJSON body chunk by chunk as it arrives; the new batch's id once all is in.

        Until then the batch is `receiving` and no one knows its id: if the body is cut off,
        what was staged is deleted."""
        batch_id = f"{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(8)}"
        await self.store.new_batch(batch_id, self.owner, self.lease_seconds)
        chunker = Chunker(self.chunk_lines)
        chunk_no = 0
        renewed = time.monotonic()

        async def stage(chunks: list[RawChunk]) -> None:
            nonlocal chunk_no, renewed
            for chunk in chunks:
                await self.store.add_chunk(
                    batch_id,
                    self.owner,
                    chunk_no,
                    chunk,
                    bytes_received=chunker.bytes_received,
                    lease_seconds=self.lease_seconds,
                )
                chunk_no += 1
                renewed = time.monotonic()

        try:
            async for piece in body:
                await stage(chunker.feed(piece))
                if time.monotonic() - renewed > self.lease_seconds / 3:  # a slow sender
                    await self.store.renew(batch_id, self.owner, self.lease_seconds)
                    renewed = time.monotonic()
            await stage(chunker.close())
            await self.store.received(batch_id, self.owner)
        except BaseException:
            with suppress(Exception):
                await asyncio.shield(self.store.forget(batch_id))
            raise
        log.info("reconciliation batch received", batch_id=batch_id, chunks=chunk_no)
        return batch_id

    # --- processing ------------------------------------------------------------------------------

    def start(self, batch_id: str) -> None:
        """Reconcile the batch in the background (once per process at a time)."""
        running = self._tasks.get(batch_id)
        if running is not None and not running.done():
            return
        task = asyncio.create_task(self._background(batch_id), name=f"reconcile {batch_id}")
        self._tasks[batch_id] = task
        task.add_done_callback(lambda done: self._forget_task(batch_id, done))

    async def close(self) -> None:
        """Stop this process's batches, as a crash would (each chunk commits whole; another
        process, or this one restarted, resumes them once their lease ends), then the store."""
        started = [*self._tasks.values(), *([self._ready] if self._ready is not None else [])]
        running = [task for task in started if not task.done()]
        for task in running:
            task.cancel()
        for task in running:
            with suppress(asyncio.CancelledError):
                await task
        await self.store.close()

    def _forget_task(self, batch_id: str, task: asyncio.Task[bool]) -> None:
        if self._tasks.get(batch_id) is task:
            del self._tasks[batch_id]

    async def _background(self, batch_id: str) -> bool:
        try:
            return await self.process(batch_id)
        except asyncio.CancelledError:
            log.info("reconciliation stopped; another process will resume it", batch_id=batch_id)
            raise
        except Exception:
            log.exception("reconciliation failed; it will be resumed", batch_id=batch_id)
            return False

    async def process(self, batch_id: str, on_progress: Progress | None = None) -> bool:
        """Reconcile what remains of the batch; False if another process is working on it."""
        batch = await self.store.claim(batch_id, self.owner, self.lease_seconds)
        if batch is None:
            return False
        try:
            if batch.log_position is None:
                await self._wait_for_views(batch_id)
            await self._chunks(batch, on_progress or (lambda done, total: None))
            await self.store.finish(batch_id, self.owner)
        except LostLease:
            log.warning("reconciliation taken over by another process", batch_id=batch_id)
            return False
        except Exception as error:
            with suppress(Exception):
                await self.store.release(
                    batch_id, self.owner, f"{type(error).__name__}: {error}", RETRY_SECONDS
                )
            raise
        log.info("reconciliation batch done", batch_id=batch_id)
        return True

    async def _wait_for_views(self, batch_id: str) -> None:
        """Reconcile against every event appended before the batch was complete: the views
        trail the log by about a second, so wait for them (a while, then go on and say so)."""
        head = await self.read_models.source.head()
        position = await self.read_models.caught_up(head, self.views_wait_seconds)
        if position < head:
            log.warning("views behind the log", batch_id=batch_id, behind=head - position)
        await self.store.mark_log(batch_id, position, head)

    async def _chunks(self, batch: Batch, on_progress: Progress) -> None:
        """A pipeline of three stages, so that the database and Python work at the same time:

            look up (up to LOOKAHEAD chunks ahead): read the chunk, parse it, look its
                prescriptions and its invoice numbers up;
            decide (in order): the verdicts, given which numbers are taken;
            commit (in order): one transaction per chunk.

        A chunk looked up early cannot see in the store what the chunks decided but not yet
        committed before it claimed and paid: those are handed over (`recent`), so that a
        number repeated across them is a duplicate, and packs paid by one are paid for the
        next. Both merge by invoice number, so a chunk already committed counts once."""
        done = batch.lines_done
        on_progress(done, batch.lines_total)
        chunk_numbers = iter(range(batch.chunks_done, batch.chunks_total))
        lookups: deque[asyncio.Task[LookedUp]] = deque()
        recent: deque[Handover] = deque(maxlen=LOOKAHEAD + 1)
        deciding: asyncio.Task[PreparedChunk] | None = None

        def look_ahead() -> None:
            while len(lookups) < LOOKAHEAD and (chunk_no := next(chunk_numbers, None)) is not None:
                lookups.append(asyncio.create_task(self._look_up(batch.batch_id, chunk_no)))

        def decide_next() -> asyncio.Task[PreparedChunk] | None:
            look_ahead()
            if not lookups:
                return None
            before = list(recent)
            return asyncio.create_task(self._decide(batch.batch_id, lookups.popleft(), before))

        try:
            deciding = decide_next()
            while deciding is not None:
                prepared = await deciding
                recent.append(Handover(prepared.claimed, prepared.paid))
                deciding = decide_next()
                result = await self.store.commit_chunk(
                    batch.batch_id,
                    self.owner,
                    prepared.chunk_no,
                    prepared,
                    lease_seconds=self.lease_seconds,
                )
                done += len(result.items)
                on_progress(done, batch.lines_total)
        finally:
            for task in [*lookups, *([deciding] if deciding else [])]:
                task.cancel()
                with suppress(BaseException):
                    await task

    async def _look_up(self, batch_id: str, chunk_no: int) -> LookedUp:
        first_line, body = await self.store.chunk(batch_id, chunk_no)
        parsed = await anyio.to_thread.run_sync(ParsedChunk.of, body, first_line)
        del body
        states, taken, paid = await asyncio.gather(
            self.read_models.store.encoded_states(parsed.numbers),
            self.store.taken(parsed.keys),
            self.store.paid(parsed.numbers),
        )
        return LookedUp(chunk_no, parsed, states, taken, paid)

    async def _decide(
        self,
        batch_id: str,
        looking_up: asyncio.Task[LookedUp],
        before: list[Handover],
    ) -> PreparedChunk:
        found = await looking_up
        taken = dict(found.taken)
        paid = found.paid.invoices
        keys, numbers = set(found.parsed.keys), found.parsed.numbers
        for chunk in before:  # only what this chunk's invoices ask about
            taken.update(chunk.claimed_of(keys))
            paid = with_paid(paid, chunk.paid, numbers)
        decide = partial(
            decide_chunk,
            previous=taken,
            paid=paid,
            seen=found.paid.seen,
            substitute=self.substitute,
            receipts=self.receipts,
        )
        return await anyio.to_thread.run_sync(
            decide, batch_id, found.chunk_no, found.parsed, found.states
        )

    # --- reading ---------------------------------------------------------------------------------

    async def status(self, batch_id: str) -> Batch | None:
        """The batch as stored; one whose process died is resumed here, in this process."""
        batch = await self.store.batch(batch_id)
        if batch is None or batch.status == "done" or not _expired(batch):
            return batch
        if batch.status == "receiving":
            await self.store.forget(batch_id)
            return None
        self.start(batch_id)
        return batch

    async def item_pages(
        self, batch_id: str, outcome: Outcome | None, page: int = ITEMS_PAGE
    ) -> AsyncIterator[list[Item]]:
        after = 0
        while items := await self.store.items(batch_id, outcome, after, page):
            yield items
            if len(items) < page:
                return
            after = items[-1].line

    async def resume_unfinished(self) -> None:
        for batch in await self.store.unfinished():
            if batch.status == "receiving":
                log.info("deleting an upload cut off by a crash", batch_id=batch.batch_id)
                await self.store.forget(batch.batch_id)
            else:
                log.info("resuming a reconciliation batch", batch_id=batch.batch_id)
                self.start(batch.batch_id)

    async def wait(self, batch_id: str) -> None:
        """Until this process's work on the batch ends (tests, the CLI)."""
        task = self._tasks.get(batch_id)
        if task is not None:
            await asyncio.shield(task)


def _expired(batch: Batch) -> bool:
    return batch.lease_until is None or batch.lease_until < datetime.now(UTC)
