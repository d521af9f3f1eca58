"""The application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from app.bootstrap import prepare
from app.http.errors import EXCEPTION_HANDLERS
from app.http.headers import SecurityHeaders
from app.http.openapi import openapi_document
from app.http.search_gate import SearchGate
from app.http.timeouts import BodyIdleTimeout
from app.live import LiveSync
from app.runtime import Runtime
from app.services.documents import notes_root
from app.services.mail_queue import MailQueue
from app.services.note_quota import NoteQuota
from app.services.passwords import Passwords
from app.settings import Settings
from app.web_assets import web_dir
from indexer import SearchIndex, configure_workers
from storage import LocalBlobStore
from sync import FileDocumentStore, RoomManager

WEB_DIR = web_dir()
log = logging.getLogger("plein")


def create_app(settings: Settings | None = None) -> Starlette:
    """Build Plein. Creates the data directory, secret, key file and database on first run and
    applies migrations, so ``plein serve`` on an empty directory just works."""
    settings = settings or Settings.from_env()
    prepared = prepare(settings)
    db = prepared.db
    configure_workers(workers=settings.extract_workers, max_jobs=settings.extract_worker_jobs)
    # One KeySource for every store: each follows ``plein keys rotate`` run beside the server.
    quota = NoteQuota(settings)
    manager = RoomManager(FileDocumentStore(notes_root(settings), prepared.keys),
                          settings.sync_limits(), storage_guard=quota.check)
    live = LiveSync(manager, db, quota)
    hooks = prepared.hooks
    runtime = Runtime(settings=settings, db=db, hooks=hooks, passwords=Passwords(settings),
                      secret=prepared.secret, keys=prepared.keys,
                      blob_store=LocalBlobStore(settings.data_dir / "blobs", prepared.keys),
                      live=live,
                      search_index=SearchIndex(settings.data_dir / "index", prepared.keys),
                      mail_queue=MailQueue(settings),
                      search_gate=SearchGate(settings.search_threads,
                                             settings.search_per_person))
    hooks.access.subscribe(live.on_access_change)
    hooks.credentials.subscribe(live.on_credentials_ended)

    from app.pages import page_context, page_routes
    from app.pages.render import error_page
    from app.routes.api import router

    spec = openapi_document(router, extra_paths=_extra_paths())

    async def openapi(_: Request) -> Response:
        return JSONResponse(spec)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def favicon(_: Request) -> Response:
        # Browsers ask for /favicon.ico whatever the page links; answer it rather than log a
        # 404 on every first visit (pages link the SVG beside it).
        return FileResponse(WEB_DIR / "static" / "favicon.ico", media_type="image/x-icon",
                            headers={"Cache-Control": "public, max-age=86400"})

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/favicon.ico", favicon, methods=["GET"]),
        Route("/api/v1/openapi.json", openapi, methods=["GET"]),
        *router.starlette_routes(),
        WebSocketRoute("/sync/{document_id}", live.serve),
        Mount("/static", app=StaticFiles(directory=WEB_DIR / "static"), name="static"),
        *page_routes(),
    ]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            await tasks.start(manager.start)
            live.start()
            tasks.start_soon(live.watch, float(settings.live_check_seconds))
            tasks.start_soon(_maintenance_loop, runtime)
            tasks.start_soon(_mail_loop, runtime)
            tasks.start_soon(_note_snapshot_loop, runtime)
            if settings.indexer == "inprocess":
                tasks.start_soon(_index_loop, runtime)
            try:
                yield
            finally:
                # Closes the sockets and compacts every open note before the process ends.
                await manager.stop()
                tasks.cancel_scope.cancel()
        db.dispose()

    app = Starlette(routes=routes,
                    middleware=[Middleware(SecurityHeaders),
                                Middleware(BodyIdleTimeout, seconds=settings.upload_idle_seconds)],
                    exception_handlers=EXCEPTION_HANDLERS,
                    lifespan=lifespan)
    app.state.runtime = runtime
    app.state.openapi = spec
    app.state.page_context = page_context()
    app.state.error_page = error_page
    return app


async def _maintenance_loop(runtime: Runtime) -> None:
    from app.services.maintenance import run_once

    interval = runtime.settings.maintenance_interval_seconds
    while True:
        await anyio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(run_once, runtime.db, runtime.settings,
                                           runtime.blob_store)
        except Exception:
            # Housekeeping must never take the server down; the next round tries again.
            log.exception("maintenance round failed")


async def _mail_loop(runtime: Runtime) -> None:
    """Notification e-mail (immediate, and daily digests when due), sent from a worker
    thread: never inside a request's transaction, never blocking the event loop."""
    from app.services.notifications import mail_round

    if not runtime.settings.smtp_url:
        return
    while True:
        await anyio.sleep(runtime.settings.mail_interval_seconds)
        try:
            await anyio.to_thread.run_sync(mail_round, runtime.db, runtime.settings)
        except Exception:
            log.exception("mail round failed")


async def _note_snapshot_loop(runtime: Runtime) -> None:
    from app.services.note_snapshots import AutoSnapshots

    snapshots = AutoSnapshots()
    while True:
        await anyio.sleep(runtime.settings.note_snapshot_pause_seconds)
        try:
            await snapshots.round(runtime)
        except Exception:
            log.exception("automatic note versions failed this round")


async def _index_loop(runtime: Runtime) -> None:
    """The one index writer of this installation (unless ``PLEIN_INDEXER=external``)."""
    from app.services import search

    def note_state(document_id: str) -> bytes | None:
        return anyio.from_thread.run(runtime.live.manager.snapshot_state, document_id)

    deps = search.WorkerDeps(db=runtime.db, settings=runtime.settings,
                             store=runtime.blob_store, index=runtime.search_index,
                             note_state=note_state)
    if runtime.search_index.needs_rebuild:
        # An index written by an older schema (e.g. without the suggestion word field):
        # rebuild it once; searches keep answering from the old generation meanwhile.
        log.warning("search index schema is outdated: rebuilding it")
        try:
            await anyio.to_thread.run_sync(search.reindex, deps)
        except Exception:
            log.exception("rebuilding the search index failed; run `plein reindex`")
    while True:
        try:
            handled = await anyio.to_thread.run_sync(search.run_once, deps)
        except Exception:
            log.exception("indexing round failed")
            handled = 0
        if not handled:
            await anyio.sleep(runtime.settings.index_poll_ms / 1000)


def _extra_paths() -> dict[str, object]:
    return {
        "/healthz": {"get": {"operationId": "healthz", "summary": "200 when ready",
                             "responses": {"200": {"description": "Ready"}}}},
        "/api/v1/openapi.json": {"get": {"operationId": "openapi",
                                         "summary": "This document",
                                         "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    }
