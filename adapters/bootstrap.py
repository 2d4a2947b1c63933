"""The composition root: settings in, a wired application out. Nothing else builds adapters."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    asynccontextmanager,
    closing,
    contextmanager,
    suppress,
)

import structlog
from litestar import Litestar

from adapters.access import AccessLogStore, AccessRecorder, open_access_log, patient_lookup
from adapters.auth import TokenVerifier
from adapters.catalogue import (
    CatalogueSnapshot,
    CatalogueStore,
    LiveCatalogue,
    load_snapshot,
    open_catalogue_store,
)
from adapters.config import Settings
from adapters.eventfeed import PostgresEventFeed
from adapters.heap import freeze_started_objects
from adapters.http.app import Limits, create_app
from adapters.librarylog import LibraryLog, open_library_log
from adapters.logging import configure_logging
from adapters.mailer.compose import RENDERERS, Renderer
from adapters.mailer.run import Mailer
from adapters.mailer.store import PostgresOutbox, SqliteOutbox
from adapters.mailer.transport import transport_for
from adapters.messaging.directory import MssanteDirectory
from adapters.messaging.non_substitution import PrescriberNotices
from adapters.messaging.ordonnance import ordonnance_renderers
from adapters.messaging.service import ConversationService
from adapters.postgres import open_pool
from adapters.readmodels import ReadModels, open_read_models
from adapters.readmodels.sqlite import SqliteEventFeed
from adapters.receipts import KeyRing, ReceiptVerifier
from adapters.reconciliation import reconciliation_for
from adapters.service import PrescriptionService, paris_clock
from adapters.store import EventStore
from adapters.store.embedded import EmbeddedEventStore
from adapters.store.postgres import PostgresEventStore
from adapters.tracing import start_tracing, stop_tracing
from adapters.webhooks.run import Deliverer, Senders
from adapters.webhooks.signing import SecretBox, webhooks_key
from adapters.webhooks.store import SqliteWebhooks
from adapters.webhooks.store_postgres import PostgresWebhooks
from adapters.webhooks.subscriptions import Subscriptions
from domain.catalogue import PackLookup
from domain.reconciliation.records import catalogue_substitutes

Packs = Callable[[], PackLookup | None]  # the catalogue snapshot in force, None: none imported
log = structlog.get_logger("ordo.serve")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


FAILPOINTS: dict[str, Callable[[], None]] = {
    # Crash tests: die the hard way once the events are durable, before any answer is sent.
    "crash_after_append": _die,
    # `ordo worker`: once a batch's views are committed, before its Kafka offsets are.
    "crash_after_view_commit": _die,
    # `ordo catalogue import` dies after 4,000 packs (adapters/catalogue/cli.py).
    "catalogue_kill_midway": _die,
}


def failpoint(settings: Settings, name: str) -> Callable[[], None]:
    """The failpoint `name` when ORDO_FAILPOINT names it; otherwise nothing happens there."""
    if settings.failpoint is not None and settings.failpoint not in FAILPOINTS:
        # A misspelt failpoint would let a crash test pass without crashing anything.
        msg = f"unknown ORDO_FAILPOINT {settings.failpoint!r}: one of {', '.join(FAILPOINTS)}"
        raise ValueError(msg)
    return FAILPOINTS[name] if settings.failpoint == name else lambda: None


def build_log(settings: Settings) -> LibraryLog:
    return open_library_log(settings.database_url, settings.data_dir, settings.db_pool_size)


def build_store(settings: Settings, log: LibraryLog) -> EventStore:
    """The store the use cases append through: asyncpg with group commit on PostgreSQL, the
    embedded log's recorder otherwise. Opened by the app's lifespan (it needs the loop)."""
    if settings.database_url:
        return PostgresEventStore(settings.database_url, settings.db_pool_size)
    return EmbeddedEventStore(log)


def store_lifespan(store: EventStore) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def opened(_: Litestar) -> AsyncIterator[None]:
        await store.start()
        try:
            yield
        finally:
            await store.close()

    return opened


class AppendListeners:
    """Called after every append: the failpoint, then whoever wants waking (the runner)."""

    def __init__(self, crash: Callable[[], None]) -> None:
        self.listeners: list[Callable[[], None]] = [crash]

    def __call__(self) -> None:
        for listener in self.listeners:
            listener()


@asynccontextmanager
async def read_models_for(settings: Settings) -> AsyncIterator[ReadModels]:
    """The instance's log and read models, as `ordo serve` opens them, for command-line tools."""
    event_log = build_log(settings)
    read_models = await open_read_models(settings, event_log)
    try:
        yield read_models
    finally:
        await read_models.close()
        event_log.close()


@asynccontextmanager
async def service_for(settings: Settings) -> AsyncIterator[PrescriptionService]:
    """The use cases on the instance's store, for command-line tools that read through them."""
    event_log = build_log(settings)
    store = build_store(settings, event_log)
    await store.start()
    try:
        yield PrescriptionService(store)
    finally:
        await store.close()
        event_log.close()


@asynccontextmanager
async def catalogue_store_for(settings: Settings) -> AsyncIterator[CatalogueStore]:
    """The instance's medicines catalogue tables (imports, snapshots, facts)."""
    store = await open_catalogue_store(settings)
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def catalogue_snapshot_for(settings: Settings) -> AsyncIterator[CatalogueSnapshot]:
    """The catalogue snapshot in force, loaded once, for command-line tools (EMPTY if none)."""
    async with catalogue_store_for(settings) as store:
        yield await load_snapshot(store)


@contextmanager
def access_log_for(settings: Settings) -> Iterator[AccessLogStore]:
    """The access log's own table, beside the event log."""
    store = open_access_log(settings.database_url, settings.data_dir)
    try:
        yield store
    finally:
        store.close()


def catalogue_follower(
    settings: Settings, catalogue: LiveCatalogue
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan: the snapshot in force before the first request, then a new import's
    within `catalogue_refresh_seconds` (plus its loading time)."""

    @asynccontextmanager
    async def follow(_: Litestar) -> AsyncIterator[None]:
        async with (
            catalogue_store_for(settings) as store,
            catalogue.kept_current(store, settings.catalogue_refresh_seconds),
        ):
            yield

    return follow


# --- the mailer: `ordo mailer`, or in-process in `ordo serve` -----------------------------


def renderers_for(event_log: LibraryLog, catalogue: Packs = lambda: None) -> dict[str, Renderer]:
    """The QR code, and the ordonnance as a PDF read from this log (each recipient's copy, as
    its day in Paris reads it, counted in units where `catalogue` knows its packs)."""
    drawn = ordonnance_renderers(event_log, lambda: paris_clock().today, catalogue)
    return {**RENDERERS, **drawn}


@asynccontextmanager
async def mailer_for(
    settings: Settings, event_log: LibraryLog | None = None, catalogue: Packs = lambda: None
) -> AsyncIterator[Mailer]:
    """A mailer on this instance's log and store: SQLite beside the embedded log, or the
    PostgreSQL schema of the log; its PDFs count units where `catalogue` knows the packs."""
    transports = [
        transport_for(settings.smtp_url, settings.data_dir)
        for _ in range(settings.mailer_connections)
    ]
    if settings.database_url is None:
        owned = event_log is None
        the_log = event_log or open_library_log(None, settings.data_dir, 2)
        store = SqliteOutbox(settings.data_dir / "mailer.sqlite3")
        try:
            renderers = renderers_for(the_log, catalogue)
            yield Mailer(SqliteEventFeed(the_log), store, transports, renderers=renderers)
        finally:
            for transport in transports:
                transport.close()
            await store.close()
            if owned:
                the_log.close()
        return
    pool, schema = await open_pool(settings.database_url, 4)
    source = PostgresEventFeed(pool, schema)
    # Read by the PDF renderers, one composing thread per relay connection.
    documents = open_library_log(
        settings.database_url, settings.data_dir, settings.mailer_connections
    )
    try:
        renderers = renderers_for(documents, catalogue)
        yield Mailer(source, PostgresOutbox(pool, schema), transports, renderers=renderers)
    finally:
        for transport in transports:
            transport.close()
        await source.close()
        await pool.close()
        documents.close()


def webhooks_box(settings: Settings) -> SecretBox:
    """The box the subscriptions' secrets are sealed in."""
    return SecretBox(webhooks_key(settings.webhooks_key, settings.data_dir))


@asynccontextmanager
async def webhooks_for(
    settings: Settings, event_log: LibraryLog | None = None
) -> AsyncIterator[Deliverer]:
    """The webhooks' deliverer on this instance's log, its state beside the log: SQLite beside
    the embedded log, or the PostgreSQL schema of the log."""
    box = webhooks_box(settings)
    async with AsyncExitStack() as stack:
        senders = Senders(timeout=10)
        stack.push_async_callback(senders.aclose)
        if settings.database_url is None:
            store = SqliteWebhooks(settings.data_dir / "webhooks.sqlite3")
            stack.push_async_callback(store.close)
            the_log = event_log or stack.enter_context(
                closing(open_library_log(None, settings.data_dir, 2))
            )
            yield Deliverer(SqliteEventFeed(the_log), store, box, senders)
            return
        # The leader's lock and the follower hold one connection each; the rest serve the
        # API's subscriptions.
        pool, schema = await open_pool(settings.database_url, 6)
        stack.push_async_callback(pool.close)
        source = PostgresEventFeed(pool, schema)
        stack.push_async_callback(source.close)
        yield Deliverer(source, PostgresWebhooks(pool, schema), box, senders)


def webhooks_side(
    settings: Settings, event_log: LibraryLog
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan: the subscriptions in the app's state, and the deliverer running in this
    process where the mailer runs (`mailer_here`), behind its lock like `ordo webhooks`."""

    @asynccontextmanager
    async def deliver(app: Litestar) -> AsyncIterator[None]:
        async with webhooks_for(settings, event_log) as deliverer:
            await deliverer.store.create()
            app.state.subscriptions = Subscriptions(
                deliverer.store, deliverer.box, allow_http=settings.webhooks_allow_http
            )
            if not mailer_here(settings):
                yield
                return
            stopping = asyncio.Event()
            task = asyncio.create_task(deliverer.run(stopping))
            try:
                yield
            finally:
                await _stopped(task, stopping)

    return deliver


async def _stopped(task: asyncio.Task[None], stopping: asyncio.Event) -> None:
    stopping.set()
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def mailer_here(settings: Settings) -> bool:
    """Whether `ordo serve` delivers the e-mails itself (unless ORDO_MAILER=off): on the
    embedded default while it follows the log itself; on PostgreSQL once a relay is named
    (ORDO_SMTP_URL), behind `ordo mailer`'s advisory lock, so that of several servers and
    mailers one delivers and the others wait as standbys."""
    if not settings.mailer_in_process:
        return False
    if settings.database_url is None:
        return settings.projections_in_process
    return settings.smtp_url is not None


def announce_mailer(here: bool) -> None:
    """Say at start who delivers the e-mails: nothing is sent while nobody does."""
    if here:
        log.warning(
            "mailer_in_process",
            detail="this server delivers the e-mails, or waits as a standby while another "
            "process holds the mailer lock (ORDO_MAILER=off leaves it to `ordo mailer`)",
        )
    else:
        log.warning(
            "mailer_not_in_process",
            detail="this server delivers no e-mail: `ordo mailer` must run beside it",
        )


def mailer_in_process(
    settings: Settings, event_log: LibraryLog, woken_by: list[Callable[[], None]], packs: Packs
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan: the mailer running in this process when `mailer_here`, said at start."""

    @asynccontextmanager
    async def deliver(_: Litestar) -> AsyncIterator[None]:
        here = mailer_here(settings)
        announce_mailer(here)
        if not here:
            yield
            return
        stopping = asyncio.Event()
        async with mailer_for(settings, event_log, packs) as mailer:
            if isinstance(mailer.source, SqliteEventFeed):
                woken_by.append(mailer.source.notify)  # at once after this process's appends
            task = asyncio.create_task(mailer.run(stopping))
            try:
                yield
            finally:
                stopping.set()
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task

    return deliver


def read_side(
    settings: Settings, event_log: LibraryLog, catalogue: LiveCatalogue, appended: AppendListeners
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan: the read models and the reconciliation over them, in the app's state; in
    this process, the runner following the log into them unless told not to."""

    @asynccontextmanager
    async def opened(app: Litestar) -> AsyncIterator[None]:
        read_models = await open_read_models(settings, event_log)
        app.state.read_models = read_models
        reconciliation = reconciliation_for(
            read_models,
            substitute=catalogue_substitutes(catalogue.in_force),
            receipts=ReceiptVerifier(KeyRing(settings.data_dir, settings.receipt_key)),
        )
        app.state.reconciliation = reconciliation
        if isinstance(read_models.source, SqliteEventFeed):
            appended.listeners.append(read_models.source.notify)
        stopping = asyncio.Event()
        tasks = []
        if settings.projections_in_process:
            tasks.append(asyncio.create_task(read_models.follow(stopping)))
            tasks.append(asyncio.create_task(read_models.watch_lag(stopping)))
        try:
            yield
        finally:
            stopping.set()
            for task in tasks:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await reconciliation.close()
            await read_models.close()

    return opened


def access_log_writer(
    access_log: AccessRecorder,
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    """A lifespan: the access log's batch writer; on shutdown it writes what is queued, then
    stops."""

    @asynccontextmanager
    async def writing(_: Litestar) -> AsyncIterator[None]:
        access_log.start()
        try:
            yield
        finally:
            await asyncio.to_thread(access_log.stop)
            access_log.store.close()

    return writing


def verifier_for(settings: Settings) -> TokenVerifier:
    return TokenVerifier(
        secret=settings.auth_secret,
        public_key=settings.auth_public_key,
        jwks_url=settings.auth_jwks_url,
        issuer=settings.auth_issuer,
        audience=settings.auth_audience,
        claims=settings.auth_claims,
    )


def limits_for(settings: Settings) -> Limits:
    return Limits(
        rate_limit_per_minute=settings.rate_limit_per_minute,
        rate_limit_burst=settings.rate_limit_burst,
        request_timeout_seconds=settings.request_timeout_seconds,
    )


def build_app(settings: Settings, log: LibraryLog | None = None) -> Litestar:
    configure_logging(settings.log_hash_key)
    traced = start_tracing("ordo-api")  # only with OTEL_EXPORTER_OTLP_ENDPOINT
    event_log = log or build_log(settings)
    appended = AppendListeners(failpoint(settings, "crash_after_append"))
    # The medicines catalogue in force: `catalogue.snapshot().facts(cip13)` answers a pack's
    # facts, or None when unknown. Until a catalogue is imported the rules take the
    # prescriber's word.
    catalogue = LiveCatalogue()
    store = build_store(settings, event_log)
    directory = MssanteDirectory(settings.mssante_directory)
    service = PrescriptionService(
        store,
        after_append=appended,
        catalogue=catalogue.in_force,
        catalogue_strict=settings.catalogue_strict,
        prescriber_notices=PrescriberNotices(directory, settings.postmaster).told,
    )
    access_log = AccessRecorder(
        open_access_log(settings.database_url, settings.data_dir), patient_lookup(event_log)
    )
    conversations = ConversationService(
        store, directory, settings.postmaster, after_append=appended, catalogue=catalogue.in_force
    )
    return create_app(
        service,
        verifier_for(settings),
        max_body_bytes=settings.max_body_bytes,
        lifespan=[
            store_lifespan(store),
            read_side(settings, event_log, catalogue, appended),
            catalogue_follower(settings, catalogue),
            access_log_writer(access_log),
            mailer_in_process(settings, event_log, appended.listeners, catalogue.in_force),
            webhooks_side(settings, event_log),
        ],
        access_log=access_log,
        record_access=settings.access_log,
        on_shutdown=[*([event_log.close] if log is None else []), stop_tracing],
        catalogue=catalogue,
        conversations=conversations,
        receipts=KeyRing(settings.data_dir, settings.receipt_key),
        receipt_issuer=settings.receipt_issuer,
        limits=limits_for(settings),
        traced=traced,
    )


def app_from_env() -> Litestar:
    """Entry point for ASGI servers: `uvicorn --factory adapters.bootstrap:app_from_env`; the
    server's start-up objects are frozen out of the garbage collector's walks (`adapters.heap`)."""
    app = build_app(Settings.from_env())
    app.on_startup.append(freeze_started_objects)
    return app
