"""Single sign-on pages: ``GET /auth/oidc/login`` sends the browser to the provider,
``GET /auth/oidc/callback`` ends the sign-on there (app.services.oidc), ``POST
/auth/oidc/link`` links a provider account to an existing Plein account once its password is
proven.

The callback works in three steps so that no database transaction waits on the network: the
sign-on under way is used up (committed even when it is refused, so a replayed callback
finds nothing), the code is redeemed and the ID token checked, then the person is signed in.
"""

from __future__ import annotations

import logging
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.errors import NotFound, RateLimited
from app.http.context import CookieChange, Ctx, in_transaction
from app.models import User
from app.pages.forms import OTP_PENDING, OTP_PENDING_SECONDS, open_note, refused, signed_note
from app.pages.framework import Page, PageCtx, PageResult, Redirect, safe_next, serve_page
from app.services import account_links, accounts, oidc, twostep

log = logging.getLogger("plein.oidc")

BROWSER_COOKIE = "plein_oidc"
LINK_SECONDS = 600


def _provider(request: Request) -> oidc.Provider:
    settings = request.app.state.runtime.settings
    if not settings.oidc_enabled:
        raise NotFound()
    found: oidc.Provider | None = getattr(request.app.state, "oidc_provider", None)
    if found is None:
        found = oidc.Provider(settings)
        request.app.state.oidc_provider = found
    return found


def _failure_page(reason: str) -> Page:
    log.info("single sign-on refused: %s", reason)
    return Page("oidc_error.html", {"reason": reason},
                status=403 if reason in ("registration_closed", "account_inactive") else 400)


async def login(request: Request) -> Response:
    provider = _provider(request)
    next_url = safe_next(request.query_params.get("next"))
    try:
        await run_in_threadpool(provider.metadata)  # before the transaction: network
    except oidc.OidcFailure as exc:
        failure = exc.reason
        return await serve_page(request, lambda p: _failure_page(failure), auth=False,
                                write=False)

    def go(p: PageCtx) -> PageResult:
        browser = secrets.token_urlsafe(32)
        started = oidc.start(p.db, browser=browser, next_url=next_url)
        p.ctx.cookies.append(CookieChange(BROWSER_COOKIE, browser,
                                          max_age=oidc.LOGIN_MINUTES * 60))
        return Redirect(provider.authorization_url(state=started.state, nonce=started.nonce,
                                                   verifier=started.verifier))

    return await serve_page(request, go, auth=False, write=True)


async def callback(request: Request) -> Response:
    provider = _provider(request)
    params = request.query_params
    browser = request.cookies.get(BROWSER_COOKIE)

    def take(ctx: Ctx) -> oidc.Pending | oidc.OidcFailure:
        try:
            return oidc.consume(ctx.db, state=params.get("state", ""), browser=browser)
        except oidc.OidcFailure as exc:
            return exc  # returned, not raised: the used-up sign-on must be committed

    taken, _ctx = await in_transaction(request, write=True, fn=take)
    outcome: oidc.Identity | oidc.OidcFailure = taken if isinstance(taken, oidc.OidcFailure) \
        else oidc.OidcFailure("provider_refused", params.get("error", "")[:100])
    if isinstance(taken, oidc.Pending) and "code" in params and "error" not in params:
        pending = taken

        def check() -> oidc.Identity:
            token = provider.exchange_code(params["code"][:2000], pending.verifier)
            return provider.verify_id_token(token, nonce=pending.nonce)
        try:
            outcome = await run_in_threadpool(check)
        except oidc.OidcFailure as exc:
            outcome = exc
    next_url = taken.next_url if isinstance(taken, oidc.Pending) else "/"

    def finish(p: PageCtx) -> PageResult:
        p.ctx.cookies.append(CookieChange(BROWSER_COOKIE, None))
        if isinstance(outcome, oidc.OidcFailure):
            return _failure_page(outcome.reason)
        try:
            resolved = oidc.resolve(p.db, p.settings, p.runtime.passwords, outcome)
        except oidc.OidcFailure as exc:
            return _failure_page(exc.reason)
        if resolved.user is None:
            return Page("oidc_link.html", {"email": resolved.link_email, "next": next_url,
                                           "note": _link_note(p, outcome)})
        return _signed_in(p, resolved.user.id, next_url)

    return await serve_page(request, finish, auth=False, write=True)


def _signed_in(p: PageCtx, user_id: str, next_url: str) -> PageResult:
    """Sign in, or ask for the authenticator code first when the person has it on (the
    provider proves who they are there, not that they hold their second factor here)."""
    user = p.db.get(User, user_id)
    assert user is not None  # noqa: S101 - resolved in this transaction
    if twostep.enabled(p.db, user.id):
        return Page("login_otp.html", {"next": next_url, "pending": signed_note(
            p, OTP_PENDING, {"uid": user.id}, OTP_PENDING_SECONDS)})
    p.ctx.sign_in(user)
    accounts.logged_in(p.db, user, ip=p.client_ip, method="sso")
    return Redirect(next_url)


# -- linking to an existing account ------------------------------------------------------------

def _link_note(p: PageCtx, identity: oidc.Identity) -> str:
    return signed_note(p, "oidc-link", {"iss": identity.issuer, "sub": identity.subject,
                                        "email": identity.email, "name": identity.name},
                       LINK_SECONDS)


def _open_link_note(p: PageCtx, note: str) -> oidc.Identity | None:
    payload = open_note(p, "oidc-link", note)
    if payload is None:
        return None
    return oidc.Identity(issuer=str(payload["iss"]), subject=str(payload["sub"]),
                         email=payload.get("email"), name=str(payload.get("name", "")))


def link(p: PageCtx) -> PageResult:
    note = p.form.get("note", "")[:4000]
    next_url = safe_next(p.form.get("next"))
    identity = _open_link_note(p, note)
    if identity is None or identity.email is None:
        return _failure_page("expired")
    context = {"email": identity.email, "next": next_url, "note": note}
    try:
        user = accounts.authenticate(p.db, p.settings, p.runtime.passwords, email=identity.email,
                                     password=p.form.get("password", ""), ip=p.client_ip)
    except RateLimited as exc:
        return Page("oidc_link.html", {**context, "error": refused(p.language, exc).message},
                    status=429)
    if user is None:
        return Page("oidc_link.html", {**context, "error_key": "invalid"}, status=401)
    if oidc.linked_user(p.db, identity) is None:
        oidc.link(p.db, identity, user)
    # The provider verified the address and the person proved the password: both are theirs.
    account_links.mark_verified(p.db, user)
    return _signed_in(p, user.id, next_url)


def routes() -> list[BaseRoute]:
    from app.pages.framework import page

    return [
        Route("/auth/oidc/login", login, methods=["GET"]),
        Route("/auth/oidc/callback", callback, methods=["GET"]),
        page("/auth/oidc/link", link, methods=("POST",), auth=False),
    ]
