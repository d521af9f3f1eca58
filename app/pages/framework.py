"""The page route wrapper: parse the form (with limits), check CSRF on POST, run the handler in
one transaction, render a template or redirect. Handlers stay thin: parse → service → render."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy.orm import Session
from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from app.access import Access
from app.errors import BadRequest, NotSignedIn, PayloadTooLarge
from app.http.context import Ctx, authenticate, check_csrf, in_transaction
from app.http.cookies import apply_cookies
from app.http.search_gate import in_search_transaction
from app.i18n import N_
from app.models import User
from app.pages.notices import saved_notice
from app.pages.render import choose_language, render_html
from app.runtime import Runtime
from app.settings import Settings

FORM_FIELD_LIMIT = 64 * 1024
FORM_MAX_FIELDS = 200


@dataclass
class Page:
    """Render ``template`` with ``context``; ``status`` lets a form re-render with 400/422."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass
class Redirect:
    url: str


def safe_next(target: str | None, default: str = "/") -> str:
    """Only same-site paths: ``next`` must never send people to another site."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return default
    return target


@dataclass
class Download:
    """A file made by the page (a CSV of the audit log): sent as an attachment, never cached."""

    body: bytes
    media_type: str
    filename: str


PageResult = Page | Redirect | Download
PageHandler = Callable[..., PageResult]
ContextProcessor = Callable[[Ctx], Mapping[str, Any]]
"""Adds what every full page of a signed-in person shows (parts of the header, such as the
unread badge) to its template context. The application lists them once, in
``app.state.page_context`` (see :func:`app.pages.page_context`), so this wrapper needs to know
no area."""


@dataclass
class PageCtx:
    """What a page handler sees: the request context plus the submitted form (POST)."""

    ctx: Ctx
    form: Mapping[str, str]
    form_lists: dict[str, list[str]]
    language: str

    @property
    def method(self) -> str:
        return str(self.ctx.conn.scope["method"])

    @property
    def query(self) -> QueryParams:
        return self.ctx.conn.query_params

    # The parts of the request context handlers use most, read through (not copied): signing
    # in replaces ``ctx.user`` and ``ctx.access`` during the request.
    @property
    def db(self) -> Session:
        return self.ctx.db

    @property
    def access(self) -> Access:
        return self.ctx.access

    @property
    def user(self) -> User | None:
        return self.ctx.user

    @property
    def runtime(self) -> Runtime:
        return self.ctx.runtime

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def client_ip(self) -> str:
        return self.ctx.client_ip


async def _read_form(request: Request, limit: int) -> FormData:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge()
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        if content_type.startswith("multipart/form-data"):
            return await request.form(max_files=0, max_fields=FORM_MAX_FIELDS,
                                      max_part_size=FORM_FIELD_LIMIT)
        raise BadRequest(N_("Send the form as application/x-www-form-urlencoded."))
    return await request.form(max_files=0, max_fields=FORM_MAX_FIELDS,
                              max_part_size=FORM_FIELD_LIMIT)


async def _submitted(request: Request, limit: int
                     ) -> tuple[Mapping[str, str], dict[str, list[str]]]:
    """The posted form's fields (first value, and every value), none for a GET."""
    if request.method != "POST":
        return {}, {}
    data = await _read_form(request, limit)
    return ({k: v for k, v in data.items() if isinstance(v, str)},
            {k: [v for v in data.getlist(k) if isinstance(v, str)] for k in data})


def _render(request: Request, ctx: Ctx, language: str, result: Page) -> HTMLResponse:
    """Rendered inside the transaction, so templates may read lazy attributes. Full pages of a
    signed-in person also get what the context processors add (fragments have no header)."""
    context: dict[str, Any] = {"user": ctx.user, "csrf_token": ctx.csrf_token(),
                               "path": request.url.path,
                               "saved_notice": saved_notice(request.query_params, language),
                               "sso_enabled": ctx.settings.oidc_enabled}
    if ctx.user is not None and not result.template.startswith("_"):
        processors: tuple[ContextProcessor, ...] = request.app.state.page_context
        for processor in processors:
            context.update(processor(ctx))
    return render_html(language, result.template, {**context, **result.context},
                       status=result.status)


def page(path: str, handler: PageHandler, *, methods: tuple[str, ...] = ("GET",),
         auth: bool = True, name: str | None = None, search_pool: bool = False) -> Route:
    """``search_pool``: run on the searches' own threads, per-person limited
    (app.http.search_gate)."""

    async def endpoint(request: Request) -> Response:
        return await serve_page(request, handler, auth=auth, write=request.method == "POST",
                                search_pool=search_pool)

    endpoint.__name__ = handler.__name__
    return Route(path, endpoint, methods=list(methods), name=name or handler.__name__)


async def serve_page(request: Request, handler: PageHandler, *, auth: bool, write: bool,
                     search_pool: bool = False) -> Response:
    """Run a page handler in one transaction and answer with its page or redirect.
    ``write``: a write transaction (POST forms; a GET that must record something, such as
    the end of a single sign-on, which then checks no CSRF token: it has no form)."""
    runtime: Runtime = request.app.state.runtime
    form, lists = await _submitted(request, runtime.settings.max_json_bytes)

    def run(ctx: Ctx) -> Response:
        authenticate(ctx)
        language = choose_language(request, runtime.settings.default_language,
                                   ctx.user.language if ctx.user else None)
        if auth and ctx.user is None:
            raise NotSignedIn()
        if request.method == "POST":
            check_csrf(ctx, form.get("csrf_token"), always=True)
        ctx.ensure_anon_id()
        pctx = PageCtx(ctx=ctx, form=form, form_lists=lists, language=language)
        result = handler(pctx, **request.path_params)
        if isinstance(result, Redirect):
            return RedirectResponse(result.url, status_code=303)
        if isinstance(result, Download):
            return Response(result.body, media_type=result.media_type, headers={
                "Content-Disposition": f'attachment; filename="{result.filename}"'})
        return _render(request, ctx, language, result)

    try:
        transaction = in_search_transaction if search_pool else in_transaction
        response, ctx = await transaction(request, write=write, fn=run)
    except NotSignedIn:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    apply_cookies(response, ctx)
    response.headers.setdefault("Cache-Control", "no-store")
    return response
