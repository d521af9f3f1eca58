"""The page route wrapper: parse the form (with limits), check CSRF on POST, run the handler in
one transaction, render a template or redirect. Handlers stay thin: parse → service → render."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.errors import BadRequest, NotSignedIn, PayloadTooLarge
from app.http.context import Ctx, authenticate, check_csrf, in_transaction
from app.http.cookies import apply_cookies
from app.http.search_gate import in_search_transaction
from app.i18n import N_
from app.pages.render import choose_language, render_html

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


PageResult = Page | Redirect
PageHandler = Callable[..., PageResult]


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

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ctx, name)


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


def page(path: str, handler: PageHandler, *, methods: tuple[str, ...] = ("GET",),
         auth: bool = True, name: str | None = None, search_pool: bool = False) -> Route:
    """``search_pool``: run on the searches' own threads, per-person limited
    (app.http.search_gate)."""

    async def endpoint(request: Request) -> Response:
        runtime = request.app.state.runtime
        form: Mapping[str, str] = {}
        lists: dict[str, list[str]] = {}
        if request.method == "POST":
            data = await _read_form(request, runtime.settings.max_json_bytes)
            form = {k: v for k, v in data.items() if isinstance(v, str)}
            lists = {k: [v for v in data.getlist(k) if isinstance(v, str)] for k in data}
        write = request.method == "POST"

        def run(ctx: Ctx) -> tuple[PageResult, str, dict[str, Any]]:
            authenticate(ctx)
            language = choose_language(request, runtime.settings.default_language,
                                       ctx.user.language if ctx.user else None)
            if auth and ctx.user is None:
                raise NotSignedIn()
            if write:
                check_csrf(ctx, form.get("csrf_token"), always=True)
            ctx.ensure_anon_id()
            pctx = PageCtx(ctx=ctx, form=form, form_lists=lists, language=language)
            result = handler(pctx, **request.path_params)
            base: dict[str, Any] = {"user": ctx.user, "csrf_token": ctx.csrf_token(),
                                    "path": request.url.path}
            if isinstance(result, Page) and ctx.user is not None \
                    and not result.template.startswith("_"):  # fragments have no header
                from app.pages.notifications import unread_badge

                base["unread_notifications"] = unread_badge(ctx)
            if isinstance(result, Page):
                # Render inside the transaction so templates may read lazy attributes.
                base["__html"] = render_html(language, result.template, {**base, **result.context},
                                             status=result.status)
            return result, language, base

        try:
            transaction = in_search_transaction if search_pool else in_transaction
            (result, _language, base), ctx = await transaction(request, write=write, fn=run)
        except NotSignedIn:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
        response: Response
        if isinstance(result, Redirect):
            response = RedirectResponse(result.url, status_code=303)
        else:
            response = base["__html"]
        apply_cookies(response, ctx)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    endpoint.__name__ = handler.__name__
    return Route(path, endpoint, methods=list(methods), name=name or handler.__name__)
