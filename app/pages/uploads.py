"""Uploads from the pages, for browsers without JavaScript: a plain ``multipart/form-data``
form post to ``/folders/{fid}/upload`` (several files) or ``/documents/{id}/upload`` (a new
version); and the site administrators' form that imports a group archive (``/admin/import``).
With JavaScript, ``web/static/upload.js`` sends each file to the JSON API instead.

The steps are the API's (one orchestrator, :mod:`app.http.upload_flow`): refuse early (who,
CSRF, right, quota) before a byte is stored → stream each file part into an encrypted blob
(never plaintext on disk) → make the blobs visible in one write transaction → delete the
blobs if that fails.

The CSRF token comes in the query string of the form's ``action``: it is checked before the
body is read, whatever order the browser sends the parts in. A refusal re-renders the page the
form is on, with the message next to the form."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from app.access import Action
from app.errors import (
    BadRequest,
    CSRFFailed,
    HTTPError,
    NotFound,
    NotSignedIn,
    PayloadTooLarge,
)
from app.http.context import Ctx, authenticate, in_transaction
from app.http.cookies import apply_cookies
from app.http.exchange import import_upload, require_site_admin
from app.http.upload_flow import Refused, Step, Stored, UploadSteps, run_upload
from app.pages.context import file_page_result, folder_page_result
from app.pages.forms import N_, FormError, refused
from app.pages.framework import Page, PageCtx, PageResult, page
from app.pages.render import choose_language, format_size, gettext, render_html
from app.services import documents, folders
from app.services.documents import ReceivedFile

MAX_FILES = 20

QUOTA_MESSAGE = N_("The group's storage quota would be exceeded. Remove old versions or files "
                   "from the trash, or ask an administrator for more space.")
TOO_LARGE_MESSAGE = N_("A file is larger than the upload limit of %(size)s.")
NO_FILE_MESSAGE = N_("Choose a file to upload.")
TOO_MANY_MESSAGE = N_("Upload at most %(count)s files at once.")
ONE_FILE_MESSAGE = N_("Choose one file for a new version.")


def upload_message(language: str, exc: HTTPError, max_bytes: int) -> FormError:
    """The refusal in the reader's language (the services' English messages carry numbers
    in bytes; people get sizes)."""
    if isinstance(exc, PayloadTooLarge) and exc.code == "quota_exceeded":
        return FormError(gettext(language, QUOTA_MESSAGE), "file", exc.status)
    if isinstance(exc, PayloadTooLarge) and exc.field in (None, "file"):
        message = gettext(language, TOO_LARGE_MESSAGE) % {"size": format_size(language,
                                                                              max_bytes)}
        return FormError(message, "file", exc.status)
    if exc.code == "no_file":
        return FormError(gettext(language, NO_FILE_MESSAGE), "file", exc.status)
    if exc.code == "too_many_files":
        message = gettext(language, TOO_MANY_MESSAGE) % {"count": MAX_FILES}
        return FormError(message, "file", exc.status)
    return refused(language, exc)


Build = Callable[[PageCtx, FormError], Page]


async def _refusal(request: Request, exc: HTTPError, path: str, build: Build) -> Response:
    """Show the page the form is on, with the message; errors that are not about the upload
    (no such folder, no right, a forged post) get the usual error page."""
    if isinstance(exc, NotFound | CSRFFailed | NotSignedIn) or exc.status == 403:
        raise exc
    runtime = request.app.state.runtime

    def run(ctx: Ctx) -> Response:
        authenticate(ctx)
        language = choose_language(request, runtime.settings.default_language,
                                   ctx.user.language if ctx.user else None)
        error = upload_message(language, exc, runtime.settings.max_upload_bytes)
        pctx = PageCtx(ctx=ctx, form={}, form_lists={}, language=language)
        result = build(pctx, error)
        return render_html(language, result.template,
                           {"user": ctx.user, "csrf_token": ctx.csrf_token(), "path": path,
                            **result.context}, status=result.status)

    response, ctx = await in_transaction(request, write=False, fn=run)
    apply_cookies(response, ctx)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _one_file(received: list[ReceivedFile]) -> None:
    if len(received) > 1:
        raise BadRequest(ONE_FILE_MESSAGE, field="file")


async def _upload(request: Request, *, path: str, precheck: Callable[[Ctx], None],
                  store: Callable[[Ctx, list[ReceivedFile]], Stored[str]], build: Build,
                  single: bool = False) -> Response:
    """Run the upload (:mod:`app.http.upload_flow`); ``store`` answers where to go next."""
    outcome = await run_upload(request, UploadSteps(
        precheck=precheck, store=store, csrf_token=request.query_params.get("csrf_token"),
        csrf_always=True, max_files=MAX_FILES, accept=_one_file if single else None))
    if isinstance(outcome, Refused):
        if outcome.step is Step.PRECHECK and isinstance(outcome.error, NotSignedIn):
            return RedirectResponse(f"/login?next={quote(path)}", status_code=303)
        return await _refusal(request, outcome.error, path, build)
    response = RedirectResponse(outcome.stored.answer, status_code=303)
    apply_cookies(response, outcome.ctx)
    return response


async def folder_upload(request: Request) -> Response:
    fid = str(request.path_params["fid"])

    def precheck(ctx: Ctx) -> None:
        folder = folders.get_folder(ctx.db, ctx.access, fid, Action.FOLDER_WRITE)
        documents.check_quota(ctx.db, ctx.settings, folder.group_id, 0)

    def store(ctx: Ctx, received: list[ReceivedFile]) -> Stored[str]:
        folder = folders.get_folder(ctx.db, ctx.access, fid, Action.FOLDER_WRITE)
        for item in received:
            documents.create_file(ctx.db, ctx.access, ctx.settings, folder, item)
        return Stored(f"/folders/{folder.id}#documents")

    def build(p: PageCtx, error: FormError) -> Page:
        return folder_page_result(p, folders.get_folder(p.db, p.access, fid), error=error,
                                  form="upload")

    return await _upload(request, path=f"/folders/{fid}", precheck=precheck, store=store,
                         build=build)


async def version_upload(request: Request) -> Response:
    doc_id = str(request.path_params["doc_id"])

    def precheck(ctx: Ctx) -> None:
        doc = documents.get_document(ctx.db, ctx.access, doc_id, Action.DOCUMENT_WRITE)
        if doc.kind != "file":
            raise NotFound()
        documents.check_quota(ctx.db, ctx.settings, doc.group_id, 0)

    def store(ctx: Ctx, received: list[ReceivedFile]) -> Stored[str]:
        doc = documents.get_document(ctx.db, ctx.access, doc_id)
        version = documents.add_version(ctx.db, ctx.access, ctx.settings, doc, received[0])
        if version is None:
            # The same bytes as the current version: nothing new, the blob is not used.
            return Stored(f"/documents/{doc.id}?unchanged=1#versions", created=False,
                          unused=(received[0],))
        return Stored(f"/documents/{doc.id}#versions")

    def build(p: PageCtx, error: FormError) -> Page:
        return file_page_result(p, documents.get_document(p.db, p.access, doc_id),
                                error=error, form="upload")

    return await _upload(request, path=f"/documents/{doc_id}", precheck=precheck,
                         store=store, build=build, single=True)


IMPORT_PATH = "/admin/import"


def _import_form(p: PageCtx, error: FormError | None = None) -> Page:
    require_site_admin(p.ctx)
    return Page("group_import.html", {
        "error": error.message if error else None, "field": error.field if error else None,
        "values": {}}, status=error.status if error else 200)


def import_form(p: PageCtx) -> PageResult:
    return _import_form(p)


async def import_upload_page(request: Request) -> Response:
    def precheck(ctx: Ctx) -> None:
        require_site_admin(ctx)

    def store(ctx: Ctx, received: list[ReceivedFile]) -> Stored[str]:
        fields = received[0].fields
        owner = fields.get("owner", "").strip() or None
        plain = fields.get("kind") == "plain"
        name = fields.get("plain_name", "").strip()[:120] or \
            received[0].filename.rsplit(".", 1)[0][:120] or "Import"
        result = import_upload(ctx, received[0], owner, name if plain else None)
        # The archive is not kept: its contents now live in the group's own blobs.
        return Stored(f"/groups/{result.group_id}", unused=(received[0],))

    return await _upload(request, path=IMPORT_PATH, precheck=precheck, store=store,
                         build=_import_form, single=True)


def routes() -> list[BaseRoute]:
    return [
        Route("/folders/{fid}/upload", folder_upload, methods=["POST"]),
        Route("/documents/{doc_id}/upload", version_upload, methods=["POST"]),
        page(IMPORT_PATH, import_form),
        Route(IMPORT_PATH, import_upload_page, methods=["POST"]),
    ]
