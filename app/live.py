"""Live co-editing in the application: the WebSocket endpoint ``/sync/{document_id}``, the
Starlette transport for :mod:`sync`, and re-checking open sockets when access changes.

The handshake decides before any document byte is sent: a cookie session needs an allowed
``Origin`` (else 403), a ``?ticket=`` a valid single-use sync ticket for this document
(:mod:`app.services.sync_tickets`), a ``?token=`` a valid personal access token (a token bound
to one document works only there); editors get EDIT, readers READ, everyone else is refused
with the same answer as for a missing document. Every socket remembers the credential it was
opened with and is closed when that credential ends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TypeVar
from urllib.parse import urlsplit

import anyio
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.access import Access, Action
from app.credential_events import ends
from app.db import Database
from app.errors import Forbidden, HTTPError, NotFound, NotSignedIn
from app.http.context import Ctx, authenticate, credential_of, in_transaction
from app.i18n import N_
from app.models import Document, User
from app.services import sync_tickets
from app.services.documents import group_usage
from app.services.note_quota import NoteQuota
from app.services.notes import record_edit
from app.settings import Settings
from sync import CloseCode, ConnectionClosed, Identity, Permission, RoomManager
from sync.protocol import is_document_update

log = logging.getLogger("plein.live")


class StarletteTransport:
    """:class:`sync.Transport` over a Starlette WebSocket: binary frames only."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._closed = False
        # Frames that start as a sync update or step 2 from this client: enough to tell
        # "this person edited" for the activity feed (the room decides what is applied).
        self.update_frames = 0
        self._shut_task: asyncio.Task[None] | None = None
        self.shut_code: tuple[int, str] | None = None

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
        if is_document_update(data):
            self.update_frames += 1
        return bytes(data)

    def shut(self, code: int, reason: str) -> None:
        """Close at once, from synchronous code: no frame goes out after this returns (the
        close handshake itself follows in a task of its own)."""
        if self._closed:
            return
        self._closed = True
        self.shut_code = (code, reason)
        self._shut_task = asyncio.get_running_loop().create_task(
            self._close_socket(code, reason))

    async def finish_shut(self) -> None:
        """If ``shut`` ran before the socket was accepted, close it now with that code."""
        if self.shut_code is not None:
            await self._close_socket(*self.shut_code)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed:
            return
        self._closed = True
        await self._close_socket(code, reason)

    async def _close_socket(self, code: int, reason: str) -> None:
        if self.websocket.application_state == WebSocketState.CONNECTED:
            try:
                await self.websocket.close(code=code, reason=reason[:120])
            except (RuntimeError, OSError):
                pass  # already gone


@dataclass(eq=False)
class _Socket:
    """One open /sync socket: what it was opened with, so access and credential changes
    find exactly the sockets they affect."""

    key: str  # the room manager's conn_key: unique per socket
    document_id: str
    group_id: str
    user_id: str
    credential: str  # session:<hash> | token:<id> (app.credential_events)
    permission: Permission
    transport: StarletteTransport


@dataclass(frozen=True)
class _Grant:
    permission: Permission
    user_id: str
    user_name: str
    group_id: str
    credential: str
    # The group's storage in use, measured for an editor when the live quota is on.
    usage: int | None = None


T = TypeVar("T")


class LiveSync:
    """Owns the room manager and knows every open socket, with the person and the credential
    that opened it. An access change re-checks exactly the affected sockets, and a credential
    that ends (sign-out, password change, revoked token, deactivated account) closes the
    sockets opened with it -- both before the request that caused them answers: the
    listeners run in the committing thread and wait until the sockets are closed or
    downgraded (an edit sent after that answer can never reach the person who lost access).
    A periodic re-check (``watch``) catches whatever no event announced (an expired session,
    a change made by another process).

    Built with what it needs (the room manager, the database, the live quota); ``start``
    (from the application's lifespan) captures the event loop the sockets live in. Before
    that, changes are ignored: there is no socket to re-check."""

    def __init__(self, manager: RoomManager, db: Database,
                 quota: NoteQuota | None = None) -> None:
        self.manager = manager
        self.db = db
        self.quota = quota
        self.sockets: dict[str, _Socket] = {}
        self._serial = itertools.count(1)
        # Bumped (in the loop) on every access or credential change: a handshake that ran
        # while one happened decides again before its socket counts as open.
        self._generation = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    @property
    def open(self) -> set[str]:
        """Ids of the notes with at least one open socket."""
        return {s.document_id for s in self.sockets.values()}

    def start(self) -> None:
        """Capture the running event loop: committing threads hand their changes to it."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def _in_loop(self, fn: Callable[[], T], timeout: float = 5.0) -> T | None:
        """Run ``fn`` on the event loop and wait for it (None if there is no loop)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return None
        if threading.get_ident() == self._loop_thread:
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def call() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(call)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            log.warning("the event loop did not apply a live-sync change within %s s", timeout)
            return None

    # -- called from committing threads (the access and credentials topics, app.db_hooks) -----

    def on_access_change(self, groups: frozenset[str]) -> None:
        def affected() -> list[_Socket]:
            self._generation += 1
            return [s for s in self.sockets.values() if s.group_id in groups]

        sockets = self._in_loop(affected)
        if not sockets:
            return
        # Decided here, in the committing thread, after the commit: no event-loop thread is
        # needed, and the request answers only once the sockets are changed.
        decisions = _decide_all(self.db, {(s.document_id, s.user_id) for s in sockets})
        self._in_loop(lambda: self._apply(sockets, decisions))

    def on_credentials_ended(self, ended: frozenset[str]) -> None:
        def affected() -> list[_Socket]:
            self._generation += 1
            return [s for s in self.sockets.values() if ends(s.credential, s.user_id, ended)]

        sockets = self._in_loop(affected)
        if not sockets:
            return
        # Confirmed against the database (a change rolled back in a savepoint may have been
        # reported): 4403 makes a stock client give up for good, so only for the truly dead.
        with self.db.read() as session:
            dead = [s for s in sockets
                    if not sync_tickets.credential_alive(session, s.credential, s.user_id)]

        def close() -> None:
            for sock in dead:
                if self.sockets.get(sock.key) is sock:
                    self._shut(sock, CloseCode.FORBIDDEN, "signed out")

        if dead:
            self._in_loop(close)

    # -- in the loop ----------------------------------------------------------------------------

    def _apply(self, sockets: list[_Socket],
               decisions: dict[tuple[str, str], Permission | None]) -> None:
        for sock in sockets:
            if self.sockets.get(sock.key) is not sock:
                continue  # already gone
            permission = decisions.get((sock.document_id, sock.user_id))
            if permission is None:
                self._shut(sock, CloseCode.FORBIDDEN, "access revoked")
                continue
            if permission is sock.permission:
                continue
            sock.permission = permission
            changed = self.manager.set_permission(sock.document_id, sock.key, permission)
            if permission is Permission.EDIT or not changed:
                # Upgraded from read-only (the page was rendered so), or not in its room
                # yet: make the client reconnect.  Not FORBIDDEN: y-websocket gives up for
                # good on 44xx codes.
                self._shut(sock, CloseCode.GOING_AWAY, "access changed")

    def _shut(self, sock: _Socket, code: int, reason: str) -> None:
        if self.manager.revoke(sock.document_id, sock.key, code, reason) == 0:
            # Not in its room (yet): no frame may go out from now on, whatever happens next.
            sock.transport.shut(code, reason)

    async def watch(self, interval: float) -> None:
        """Every ``interval`` seconds, check that every open socket's credential is still
        alive and its person still may read (write) the note: the safety net under the
        events, for any path that ends access or a credential without one."""
        while True:
            await anyio.sleep(interval)
            sockets = list(self.sockets.values())
            if not sockets:
                continue
            try:
                alive, decisions = await anyio.to_thread.run_sync(
                    _check_all, self.db, sockets)
            except Exception:
                log.exception("live-sync re-check failed")  # the next round tries again
                continue
            dead = [s for s in sockets if (s.credential, s.user_id) not in alive]
            for sock in dead:
                if self.sockets.get(sock.key) is sock:
                    self._shut(sock, CloseCode.FORBIDDEN, "signed out")
            self._apply([s for s in sockets if s not in dead], decisions)

    # -- the endpoint ---------------------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        document_id = websocket.path_params["document_id"]
        generation = self._generation
        try:
            ticket = websocket.query_params.get("ticket")
            measure = self.quota is not None and self.quota.enabled
            granted, _ = await in_transaction(
                websocket, write=ticket is not None,
                fn=lambda ctx: _handshake(ctx, document_id, ticket, measure=measure))
            if granted is None:
                raise NotSignedIn()
            grant = granted
            # An access or credential change committed while we decided: decide again, so
            # a socket never opens on a decision that was already outdated.
            while generation != self._generation:
                generation = self._generation
                grant = await anyio.to_thread.run_sync(_redecide, self.db, document_id,
                                                       grant)
        except HTTPError as exc:
            # Refused before accept: the client gets an HTTP 403 and no document byte.
            log.info("sync refused for %s: %s", document_id, exc.code)
            await websocket.close(code=1008)
            return
        transport = StarletteTransport(websocket)
        sock = _Socket(f"{grant.user_id}#{next(self._serial)}", document_id, grant.group_id,
                       grant.user_id, grant.credential, grant.permission, transport)
        self.sockets[sock.key] = sock
        try:
            await websocket.accept()
            if self.quota is not None and grant.usage is not None:
                self.quota.track(document_id, grant.group_id, grant.usage)
            await self.manager.serve(transport, document_id, sock.permission, sock.key,
                                     Identity(grant.user_id, grant.user_name))
        finally:
            self.sockets.pop(sock.key, None)
            with anyio.CancelScope(shield=True):
                await transport.finish_shut()
            if sock.permission is Permission.EDIT and transport.update_frames:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(_record_edit, self.db, document_id,
                                                   grant.user_id)


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


def _handshake(ctx: Ctx, document_id: str, ticket: str | None, *, measure: bool = False
               ) -> _Grant | None:
    """Who may open this socket, with what permission; with ``measure``, an editor's grant
    also carries the group's storage in use, for the live quota check."""
    grant = _credential_handshake(ctx, document_id, ticket)
    if grant is not None and measure and grant.permission is Permission.EDIT:
        grant = replace(grant, usage=group_usage(ctx.db, ctx.settings, grant.group_id))
    return grant


def _credential_handshake(ctx: Ctx, document_id: str, ticket: str | None) -> _Grant | None:
    if ticket is not None:
        # Spent here, valid or not: the refusal is raised after the commit.
        try:
            return _ticket_handshake(ctx, document_id, ticket)
        except HTTPError as exc:
            ctx.deferred_error = exc
            return None
    authenticate(ctx, allow_query_token=True, document_id=document_id)
    if ctx.user is None:
        raise NotSignedIn()
    user = ctx.user
    if ctx.api_token is None:
        # A cookie rides along on any page's WebSocket: only our own pages may use it.
        origin = ctx.conn.headers.get("origin", "")
        if origin.rstrip("/") not in allowed_origins(ctx.settings, ctx.conn):
            raise Forbidden(N_("This origin may not open live connections."), code="bad_origin")
    credential = credential_of(ctx)
    permission, group_id = _decide(ctx.db, ctx.access, document_id)
    return _Grant(permission, user.id, user.name, group_id, credential)


def _ticket_handshake(ctx: Ctx, document_id: str, ticket: str) -> _Grant:
    # A ticket is no ambient authority (it is in the URL, asked for with a credential):
    # no Origin check.
    redeemed = sync_tickets.redeem_ticket(ctx.db, ticket, document_id)
    if redeemed is None:
        raise NotSignedIn(N_("The sync ticket is not valid."), code="invalid_ticket")
    ctx.user = redeemed.user
    ctx.access = Access(ctx.db, redeemed.user)
    permission, group_id = _decide(ctx.db, ctx.access, document_id)
    return _Grant(permission, redeemed.user.id, redeemed.user.name, group_id,
                  redeemed.credential)


def _decide(db: Session, access: Access, document_id: str) -> tuple[Permission, str]:
    doc = db.get(Document, document_id)
    if doc is None or doc.kind != "note" or not access.can_document(Action.DOCUMENT_READ, doc):
        raise NotFound(N_("No such document."))
    writable = access.can_document(Action.DOCUMENT_WRITE, doc)
    return (Permission.EDIT if writable else Permission.READ), doc.group_id


def _redecide(db: Database, document_id: str, grant: _Grant) -> _Grant:
    """The handshake's decision again (its credential already spent or checked): NotFound /
    NotSignedIn if the socket may not open any more."""
    with db.read() as session:
        if not sync_tickets.credential_alive(session, grant.credential, grant.user_id):
            raise NotSignedIn()
        user = session.get_one(User, grant.user_id)
        permission, group_id = _decide(session, Access(session, user), document_id)
        return replace(grant, permission=permission, user_name=user.name, group_id=group_id)


def _record_edit(db: Database, document_id: str, user_id: str) -> None:
    try:
        with db.write() as session:
            record_edit(session, document_id, user_id)
    except Exception:
        log.exception("could not record the edit activity")  # the edit itself is safe


def _decide_all(db: Database, todo: Iterable[tuple[str, str]]
                ) -> dict[tuple[str, str], Permission | None]:
    with db.read() as session:
        return _decisions(session, todo)


def _decisions(session: Session, todo: Iterable[tuple[str, str]]
               ) -> dict[tuple[str, str], Permission | None]:
    decisions: dict[tuple[str, str], Permission | None] = {}
    for doc_id, user_id in todo:
        user = session.get(User, user_id)
        doc = session.get(Document, doc_id)
        access = Access(session, user)
        if user is None or not user.is_active or doc is None \
                or not access.can_document(Action.DOCUMENT_READ, doc):
            decisions[(doc_id, user_id)] = None
        elif access.can_document(Action.DOCUMENT_WRITE, doc):
            decisions[(doc_id, user_id)] = Permission.EDIT
        else:
            decisions[(doc_id, user_id)] = Permission.READ
    return decisions


def _check_all(db: Database, sockets: list[_Socket]
               ) -> tuple[set[tuple[str, str]], dict[tuple[str, str], Permission | None]]:
    """Which (credential, person) pairs are alive, and every socket's access now."""
    with db.read() as session:
        alive = {(credential, user_id)
                 for credential, user_id in {(s.credential, s.user_id) for s in sockets}
                 if sync_tickets.credential_alive(session, credential, user_id)}
        return alive, _decisions(session, {(s.document_id, s.user_id) for s in sockets})
