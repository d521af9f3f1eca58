"""Live co-editing in the application: the WebSocket endpoint ``/sync/{document_id}``, the
Starlette transport for :mod:`sync`, and re-checking open sockets when access changes.

The handshake decides before any document byte is sent: a cookie session needs an allowed
``Origin`` (else 403), a ``?token=`` needs a valid personal access token (a token bound to one
document works only there); editors get EDIT, readers READ, everyone else is refused with the
same answer as for a missing document.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.access import Access, Action
from app.errors import Forbidden, HTTPError, NotFound, NotSignedIn
from app.http.context import Ctx, authenticate, in_transaction
from app.models import Document, User
from app.services.documents import group_usage
from app.services.note_quota import NoteQuota
from app.settings import Settings
from sync import CloseCode, ConnectionClosed, Permission, RoomManager

if TYPE_CHECKING:
    from app.http.services import Services

log = logging.getLogger("plein.live")


class StarletteTransport:
    """:class:`sync.Transport` over a Starlette WebSocket: binary frames only."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._closed = False
        # Frames that start as a sync update or step 2 from this client: enough to tell
        # "this person edited" for the activity feed (the room decides what is applied).
        self.update_frames = 0

    async def send(self, message: bytes) -> None:
        if self._closed:
            raise ConnectionClosed(1000, "closed")
        try:
            await self.websocket.send_bytes(message)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            self._closed = True
            raise ConnectionClosed(1006, "peer gone") from exc

    async def recv(self) -> bytes:
        if self._closed:
            raise ConnectionClosed(1000, "closed")
        try:
            message = await self.websocket.receive()
        except (RuntimeError, OSError) as exc:
            self._closed = True
            raise ConnectionClosed(1006, "peer gone") from exc
        if message["type"] == "websocket.disconnect":
            self._closed = True
            raise ConnectionClosed(int(message.get("code", 1000)), str(message.get("reason", "")))
        data = message.get("bytes")
        if data is None:
            # The protocol is binary; a text frame is a confused or hostile client.
            await self.close(1003, "binary frames only")
            raise ConnectionClosed(1003, "binary frames only")
        # An empty step 2 (nothing new since the server's state vector) is a handful of bytes.
        if data[:2] == b"\x00\x02" or (data[:2] == b"\x00\x01" and len(data) > 8):
            self.update_frames += 1
        return bytes(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        if self.websocket.application_state == WebSocketState.CONNECTED:
            try:
                await self.websocket.close(code=code, reason=reason[:120])
            except (RuntimeError, OSError):
                pass  # already gone


@dataclass
class _Open:
    group_id: str
    people: Counter[str] = field(default_factory=Counter)


class LiveSync:
    """Owns the room manager and knows who is connected to which document, so an access
    change re-checks exactly the affected sockets (within a second: it runs at once)."""

    def __init__(self, manager: RoomManager, quota: NoteQuota | None = None) -> None:
        self.manager = manager
        self.quota = quota
        self.open: dict[str, _Open] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._services: Services | None = None

    def bind(self, loop: asyncio.AbstractEventLoop, services: Services) -> None:
        self._loop = loop
        self._services = services

    # Called from a worker thread right after a commit (app.access_events).
    def on_access_change(self, groups: set[str]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        affected = [doc_id for doc_id, entry in self.open.items() if entry.group_id in groups]
        if affected:
            loop.call_soon_threadsafe(lambda: loop.create_task(self.recheck(affected)))

    async def recheck(self, document_ids: list[str]) -> None:
        services = self._services
        if services is None:
            return
        todo = [(doc_id, user_id) for doc_id in document_ids
                for user_id in list(self.open.get(doc_id, _Open("")).people)]
        decisions = await anyio.to_thread.run_sync(_decide_all, services, todo)
        for (doc_id, user_id), permission in decisions.items():
            if permission is None:
                self.manager.revoke(doc_id, user_id)
            else:
                changed = self.manager.set_permission(doc_id, user_id, permission)
                if changed and permission is Permission.EDIT:
                    # Upgraded from read-only (the page was rendered so): make the client
                    # reconnect.  Not FORBIDDEN: y-websocket gives up for good on 44xx codes.
                    self.manager.revoke(doc_id, user_id, CloseCode.GOING_AWAY,
                                        "access changed")

    async def serve(self, websocket: WebSocket) -> None:
        document_id = websocket.path_params["document_id"]
        try:
            (permission, user_id, group_id, usage), _ = await in_transaction(
                websocket, write=False,
                fn=lambda ctx: _handshake(ctx, document_id,
                                          measure=self.quota is not None and self.quota.enabled))
        except HTTPError as exc:
            # Refused before accept: the client gets an HTTP 403 and no document byte.
            log.info("sync refused for %s: %s", document_id, exc.code)
            await websocket.close(code=1008)
            return
        await websocket.accept()
        if self.quota is not None and usage is not None:
            self.quota.track(document_id, group_id, usage)
        entry = self.open.setdefault(document_id, _Open(group_id))
        entry.people[user_id] += 1
        transport = StarletteTransport(websocket)
        try:
            await self.manager.serve(transport, document_id, permission, user_id)
        finally:
            if permission is Permission.EDIT and transport.update_frames and self._services:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_record_edit, self._services, document_id,
                                                   user_id)
            entry.people[user_id] -= 1
            if entry.people[user_id] <= 0:
                del entry.people[user_id]
            if not entry.people:
                self.open.pop(document_id, None)


def allowed_origins(settings: Settings, conn: HTTPConnection) -> set[str]:
    origins = {_origin(settings.resolved_base_url), *settings.allowed_origins}
    host = conn.headers.get("host")
    if host:
        scheme = "https" if conn.url.scheme in ("wss", "https") else "http"
        origins.add(f"{scheme}://{host}")
    return origins


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _handshake(ctx: Ctx, document_id: str, *, measure: bool = False
               ) -> tuple[Permission, str, str, int | None]:
    """The permission, the person and the group; for an editor (with ``measure``) also the
    group's storage in use, for the live quota check."""
    authenticate(ctx, allow_query_token=True, document_id=document_id)
    user = ctx.user
    if user is None:
        raise NotSignedIn()
    if ctx.api_token is None:
        # A cookie rides along on any page's WebSocket: only our own pages may use it.
        origin = ctx.conn.headers.get("origin", "")
        if origin.rstrip("/") not in allowed_origins(ctx.settings, ctx.conn):
            raise Forbidden("This origin may not open live connections.", code="bad_origin")
    doc = ctx.db.get(Document, document_id)
    if doc is None or doc.kind != "note" or not ctx.access.can_document(Action.DOCUMENT_READ,
                                                                       doc):
        raise NotFound("No such document.")
    writable = ctx.access.can_document(Action.DOCUMENT_WRITE, doc)
    usage = group_usage(ctx.db, ctx.settings, doc.group_id) if writable and measure else None
    return (Permission.EDIT if writable else Permission.READ), user.id, doc.group_id, usage


def _record_edit(services: Services, document_id: str, user_id: str) -> None:
    from app.services.notes import record_edit

    try:
        with services.db.write() as session:
            record_edit(session, document_id, user_id)
    except Exception:
        log.exception("could not record the edit activity")  # the edit itself is safe


def _decide_all(services: Services, todo: list[tuple[str, str]]
                ) -> dict[tuple[str, str], Permission | None]:
    decisions: dict[tuple[str, str], Permission | None] = {}
    with services.db.read() as session:
        for doc_id, user_id in todo:
            user = session.get(User, user_id)
            doc = session.get(Document, doc_id)
            access = Access(session, user)
            if user is None or doc is None or not access.can_document(Action.DOCUMENT_READ, doc):
                decisions[(doc_id, user_id)] = None
            elif access.can_document(Action.DOCUMENT_WRITE, doc):
                decisions[(doc_id, user_id)] = Permission.EDIT
            else:
                decisions[(doc_id, user_id)] = Permission.READ
    return decisions
