"""The app in the test process: the fast layer's server.

``create_app`` runs on an event loop of its own (an anyio blocking portal, in a thread) with
its lifespan driven, exactly as uvicorn drives it; requests go through httpx's ASGI
transport on that loop, so nothing listens on a socket and no process starts.  Tests that
only need HTTP semantics (validation, who may do what, pages) run here; crash, sync,
browser, timeout and log tests keep the real server of ``tests/live.py`` (marker
``server``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
from starlette.applications import Starlette

from tests.live import Client

#: What requests carry as their host; the app answers any host (like behind a proxy).
URL = "http://testserver"


class _PortalTransport(httpx.BaseTransport):
    """A synchronous httpx transport that hands each request to the app's own event loop.

    Answers are whole bodies (httpx's ASGI transport waits for the app to finish): an endless
    stream (server-sent events) or a websocket needs the real server."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, app: Starlette) -> None:
        self._portal = portal
        self._inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def send() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            forwarded = httpx.Request(request.method, request.url, headers=request.headers,
                                      content=body, extensions=request.extensions)
            response = await self._inner.handle_async_request(forwarded)
            content = await response.aread()
            return response.status_code, response.headers.raw, content

        status, headers, content = self._portal.call(send)
        return httpx.Response(status, headers=headers, content=content, request=request)


class InProcessServer:
    """The subset of :class:`tests.live.LiveServer` a fast test uses: ``url``, ``data_dir``,
    ``client()`` (a :class:`Client` like our pages), ``http()`` (a bare httpx client)."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        self.data_dir = data_dir
        self.settings = settings
        self.url = URL
        self._stack = ExitStack()
        self.app: Starlette | None = None

    def start(self) -> None:
        from app.main import create_app
        from app.settings import Settings

        self.app = create_app(Settings(data_dir=self.data_dir, **self.settings))
        self.portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        self._stack.enter_context(self.portal.wrap_async_context_manager(
            self.app.router.lifespan_context(self.app)))

    def stop(self) -> None:
        self._stack.close()

    @property
    def runtime(self) -> Any:
        """``app.state.runtime``: the database, stores and settings of this app."""
        assert self.app is not None
        return self.app.state.runtime

    def transport(self) -> httpx.BaseTransport:
        assert self.app is not None
        return _PortalTransport(self.portal, self.app)

    def http(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("follow_redirects", False)
        return httpx.Client(transport=self.transport(), base_url=self.url, **kwargs)

    def client(self) -> Client:
        return Client(self.url, transport=self.transport())


@contextmanager
def running_in_process(data_dir: Path, **settings: Any) -> Iterator[InProcessServer]:
    """An app of its own (``settings`` as Settings fields, e.g. ``comments_per_minute=0``)."""
    server = InProcessServer(data_dir, **settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()
