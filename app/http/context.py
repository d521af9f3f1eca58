"""Per-request context: who is asking (session cookie or bearer token), the transaction, the
access decisions, and the cookies to set on the way out."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import anyio
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from app.access import Access
from app.credential_events import session_key, token_key
from app.errors import CSRFFailed, HTTPError, NotSignedIn
from app.i18n import N_
from app.models import ApiToken, User
from app.runtime import Runtime
from app.services import accounts, audit
from app.services.mail import Mail
from app.settings import Settings

SESSION_COOKIE = "plein_session"
ANON_COOKIE = "plein_anon"
LANG_COOKIE = "plein_lang"
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

T = TypeVar("T")


@dataclass
class CookieChange:
    name: str
    value: str | None  # None deletes
    max_age: int | None = None
    http_only: bool = True


@dataclass
class Ctx:
    conn: HTTPConnection
    runtime: Runtime
    db: Session
    access: Access
    user: User | None = None
    session_token: str | None = None
    api_token: ApiToken | None = None
    cookies: list[CookieChange] = field(default_factory=list)
    deferred_error: HTTPError | None = None
    anon_id: str | None = None
    # Bookkeeping written after the request in its own short transaction (see in_transaction).
    touch_session: bool = False
    touch_token: bool = False
    # Downloads to enter in the audit log, written before the response's body is sent.
    downloads: list[audit.Download] = field(default_factory=list)
    # Mail to send once the transaction committed (account links: never stored in clear).
    outbox: list[Mail] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def client_ip(self) -> str:
        return self.conn.client.host if self.conn.client else "unknown"

    def require_user(self) -> User:
        if self.user is None:
            raise NotSignedIn()
        return self.user

    def csrf_token(self) -> str:
        """CSRF token bound to the session (or, before sign-in, to an anonymous cookie)."""
        basis = self.session_token or self.anon_id or self.conn.cookies.get(ANON_COOKIE) or ""
        return csrf_for(self.runtime.secret, basis)

    def ensure_anon_id(self) -> None:
        """Give a signed-out visitor a random cookie to bind the sign-in form's CSRF token to
        (so a cross-site page cannot sign the visitor into another account)."""
        if self.session_token is None and not self.conn.cookies.get(ANON_COOKIE):
            self.anon_id = secrets.token_urlsafe(24)
            self.cookies.append(CookieChange(ANON_COOKIE, self.anon_id, max_age=86400))

    def sign_in(self, user: User) -> None:
        if self.session_token:
            accounts.revoke_session(self.db, self.session_token)
        token = accounts.create_session(self.db, self.settings, user,
                                        self.conn.headers.get("user-agent", ""), self.client_ip)
        self.session_token = token
        self.user = user
        self.access = access_for(self.db, self.settings, user)
        self.cookies.append(CookieChange(SESSION_COOKIE, token,
                                         max_age=self.settings.session_days * 86400))

    def sign_out(self) -> None:
        if self.session_token:
            accounts.revoke_session(self.db, self.session_token)
        self.session_token = None
        self.user = None
        self.cookies.append(CookieChange(SESSION_COOKIE, None))


def csrf_for(secret: bytes, basis: str) -> str:
    if not basis:
        return ""
    return hmac.new(secret, b"csrf|" + basis.encode(), hashlib.sha256).hexdigest()


def authenticate(ctx: Ctx, *, allow_query_token: bool = False,
                 document_id: str | None = None) -> None:
    """Resolve the principal: ``Authorization: Bearer`` first, else the session cookie.

    A token bound to one document (handed to a sync client) works for that document only:
    it is refused everywhere else, so a leaked sync URL is not the person's whole account.
    Callers serving one document pass its ``document_id``."""
    header = ctx.conn.headers.get("authorization", "")
    secret: str | None = None
    if header.lower().startswith("bearer "):
        secret = header[7:].strip()
    elif allow_query_token:
        secret = ctx.conn.query_params.get("token")
    if secret is not None:
        found = accounts.token_user(ctx.db, secret)
        if found is None:
            raise NotSignedIn(N_("The access token is not valid."), code="invalid_token")
        if found[0].document_id is not None and found[0].document_id != document_id:
            raise NotSignedIn(N_("This access token is for one document only."),
                              code="invalid_token")
        ctx.api_token, ctx.user = found
        ctx.touch_token = accounts.is_stale(found[0].last_used_at)
    else:
        cookie = ctx.conn.cookies.get(SESSION_COOKIE)
        if cookie:
            found_session = accounts.session_user(ctx.db, cookie)
            if found_session is not None:
                ctx.session_token = cookie
                ctx.user = found_session[1]
                ctx.touch_session = accounts.is_stale(found_session[0].last_seen_at)
    ctx.access = access_for(ctx.db, ctx.settings, ctx.user)


def access_for(db: Session, settings: Settings, user: User | None) -> Access:
    return Access(db, user, admin_needs_totp=settings.require_totp_for_admins)


def credential_of(ctx: Ctx) -> str:
    """The credential this request came with, named as :mod:`app.credential_events` names
    it (``token:<id>`` or ``session:<hash>``; "" when signed out): live channels remember it
    and close when it ends."""
    if ctx.api_token is not None:
        return token_key(ctx.api_token.id)
    if ctx.session_token is not None:
        return session_key(accounts.sha256_hex(ctx.session_token))
    return ""


def check_csrf(ctx: Ctx, submitted: str | None, *, always: bool = False) -> None:
    """State-changing requests that ride on a cookie must prove they come from our pages.
    Bearer-token requests carry no ambient authority, so they need no token; nor do cookieless
    JSON API requests (a cross-site form cannot send ``application/json``). Page forms
    (``always``) need it even before sign-in."""
    if ctx.api_token is not None:
        return
    if not always and ctx.session_token is None:
        return
    expected = ctx.csrf_token()
    # Compared as bytes: compare_digest refuses non-ASCII str, and header values are latin-1.
    if not submitted or not expected or not hmac.compare_digest(
            submitted.encode("utf-8", "surrogateescape"), expected.encode()):
        raise CSRFFailed()


async def in_transaction(conn: HTTPConnection, *, write: bool, fn: Callable[[Ctx], T],
                         limiter: anyio.CapacityLimiter | None = None) -> tuple[T, Ctx]:
    """Run ``fn`` in a worker thread inside one database transaction (committed only if it
    returns; a ``deferred_error`` is raised after the commit, e.g. a counted failed sign-in).
    ``limiter``: a thread pool of its own (searches, app.http.search_gate) instead of the
    shared one."""
    runtime: Runtime = conn.app.state.runtime

    def run() -> tuple[T, Ctx]:
        session = runtime.db.session(write=write)
        try:
            with session.begin():
                ctx = Ctx(conn=conn, runtime=runtime, db=session, access=Access(session, None))
                result = fn(ctx)
            runtime.mail_queue.submit(ctx.outbox)
            if ctx.deferred_error is not None:
                raise ctx.deferred_error
            _record_use(runtime, ctx)
            return result, ctx
        finally:
            session.close()

    if limiter is not None:
        return await anyio.to_thread.run_sync(run, limiter=limiter)
    return await run_in_threadpool(run)


def _record_use(runtime: Runtime, ctx: Ctx) -> None:
    """Slide the session's expiry and note a token's last use, at most hourly, and enter the
    request's downloads in the audit log, in a write transaction of its own: read requests
    stay read-only (no SQLite lock upgrades). Runs before the response's body is sent: if
    the audit entry cannot be written, the download fails rather than go unrecorded."""
    if not (ctx.touch_session or ctx.touch_token or ctx.downloads):
        return
    with runtime.db.write() as session:
        for download in ctx.downloads:
            audit.record_download(session, runtime.settings.audit_download_minutes, download)
        if ctx.touch_session and ctx.session_token:
            accounts.touch_session(session, runtime.settings, ctx.session_token, ctx.client_ip)
        if ctx.touch_token and ctx.api_token is not None:
            accounts.touch_token(session, ctx.api_token.id)
