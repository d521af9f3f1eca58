"""Uploads from the pages, for browsers without JavaScript: a plain ``multipart/form-data``
form post to ``/folders/{fid}/upload`` (several files) or ``/documents/{id}/upload`` (a new
version). With JavaScript, ``web/static/upload.js`` sends each file to the JSON API instead.

The steps follow the API's upload (``app.http.api._upload``): refuse early (who, CSRF, right,
quota) before a byte is stored → stream each file part into an encrypted blob (never plaintext
on disk) → make the blobs visible in one write transaction → delete the blobs if that fails.

The CSRF token comes in the query string of the form's ``action``: it is checked before the
body is read, whatever order the browser sends the parts in. A refusal re-renders the page the
form is on, with the message next to the form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import anyio
import magic
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
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
    UnsupportedMediaType,
)
from app.http.context import Ctx, authenticate, check_csrf, in_transaction
from app.http.cookies import apply_cookies
from app.http.uploads import (
    FLUSH_BYTES,
    MAX_FIELD_BYTES,
    SNIFF_BYTES,
    ReceivedFile,
    clean_filename,
)
from app.pages.documents import file_page_result
from app.pages.folders import folder_page_result
from app.pages.forms import N_, FormError, refused
from app.pages.framework import Page, PageCtx
from app.pages.render import choose_language, format_size, gettext, render_html
from app.services import documents, folders
from app.services.blobs import refresh_key_ring
from storage import BlobInfo, BlobStore, BlobWriter, LocalBlobStore

MAX_FILES = 20
MAX_PARTS = MAX_FILES + 8

QUOTA_MESSAGE = N_("The group's storage quota would be exceeded. Remove old versions or files "
                   "from the trash, or ask an administrator for more space.")
TOO_LARGE_MESSAGE = N_("A file is larger than the upload limit of %(size)s.")
NO_FILE_MESSAGE = N_("Choose a file to upload.")
TOO_MANY_MESSAGE = N_("Upload at most %(count)s files at once.")
ONE_FILE_MESSAGE = N_("Choose one file for a new version.")


@dataclass
class _Part:
    filename: str
    client_mime: str
    buffer: bytearray = field(default_factory=bytearray)
    sniff: bytearray = field(default_factory=bytearray)
    size: int = 0
    ended: bool = False
    writer: BlobWriter | None = None
    info: BlobInfo | None = None


class _Receiver:
    """python-multipart callbacks collecting any number of ``file`` parts (each one buffered
    until the next flush) and small text fields."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.part_count = 0
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.current: _Part | str | None = None
        self.field_buffer = bytearray()
        self.fields: dict[str, str] = {}
        self.files: list[_Part] = []
        self.error: HTTPError | None = None

    def on_part_begin(self) -> None:
        self.part_count += 1
        self.headers = {}
        if self.part_count > MAX_PARTS:
            self.error = BadRequest("Too many parts in the upload.", code="too_many_parts")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = b""
        self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        raw_name = options.get(b"filename")
        if name == "file" and raw_name:
            part = _Part(filename=clean_filename(raw_name.decode("utf-8", "replace")),
                         client_mime=self.headers.get(b"content-type", b"").decode("latin-1")[:120])
            self.files.append(part)
            self.current = part
            if len(self.files) > MAX_FILES:
                self.error = BadRequest(TOO_MANY_MESSAGE, code="too_many_files", field="file")
        elif raw_name is not None:
            # Another file input, or the empty part a browser sends for "no file chosen".
            self.current = None
        else:
            self.current = name
            self.field_buffer = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        chunk = data[start:end]
        if isinstance(self.current, _Part):
            part = self.current
            part.size += len(chunk)
            if part.size > self.max_bytes:
                self.error = PayloadTooLarge(TOO_LARGE_MESSAGE, field="file")
                return
            if len(part.sniff) < SNIFF_BYTES:
                part.sniff += chunk[: SNIFF_BYTES - len(part.sniff)]
            part.buffer += chunk
        elif self.current is not None:
            self.field_buffer += chunk
            if len(self.field_buffer) > MAX_FIELD_BYTES:
                self.error = PayloadTooLarge("A form field is too large.", field=self.current)

    def on_part_end(self) -> None:
        if isinstance(self.current, _Part):
            self.current.ended = True
        elif self.current is not None:
            self.fields[self.current] = self.field_buffer.decode("utf-8", "replace")
        self.current = None


async def _pump(store: BlobStore, receiver: _Receiver) -> None:
    """Move buffered bytes into the parts' encrypted writers; commit the parts that ended."""
    for part in receiver.files:
        if part.info is not None:
            continue
        if part.ended or len(part.buffer) >= FLUSH_BYTES:
            if part.writer is None:
                part.writer = await anyio.to_thread.run_sync(store.open_writer)
            if part.buffer:
                data = bytes(part.buffer)
                part.buffer.clear()
                await anyio.to_thread.run_sync(part.writer.write, data)
            if part.ended:
                part.info = await anyio.to_thread.run_sync(part.writer.commit)
                part.writer = None


async def _discard(store: BlobStore, parts: list[_Part]) -> None:
    with anyio.CancelScope(shield=True):
        for part in parts:
            if part.writer is not None:
                await anyio.to_thread.run_sync(part.writer.abort)
            if part.info is not None:
                await anyio.to_thread.run_sync(store.delete, part.info.blob_id)


async def receive_files(request: Request, store: BlobStore, max_bytes: int) -> list[ReceivedFile]:
    """Every non-empty ``file`` part of a multipart body, each now a committed blob that the
    caller makes visible or deletes (see :func:`delete_blobs`)."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise UnsupportedMediaType("Upload the file as multipart/form-data with a part 'file'.")
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("The multipart body has no boundary.", code="bad_multipart")
    receiver = _Receiver(max_bytes)
    parser = MultipartParser(boundary, callbacks={
        "on_part_begin": receiver.on_part_begin,
        "on_header_field": receiver.on_header_field,
        "on_header_value": receiver.on_header_value,
        "on_header_end": receiver.on_header_end,
        "on_headers_finished": receiver.on_headers_finished,
        "on_part_data": receiver.on_part_data,
        "on_part_end": receiver.on_part_end,
    })
    if isinstance(store, LocalBlobStore):
        await anyio.to_thread.run_sync(refresh_key_ring, store)
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except Exception as exc:  # python-multipart raises its own parse errors
                raise BadRequest(f"The multipart body is malformed: {exc}",
                                 code="bad_multipart") from exc
            if receiver.error is not None:
                raise receiver.error
            await _pump(store, receiver)
        parser.finalize()
        if receiver.error is not None:
            raise receiver.error
        await _pump(store, receiver)
        if not receiver.files:
            raise BadRequest(NO_FILE_MESSAGE, field="file", code="no_file")
    except ClientDisconnect:
        await _discard(store, receiver.files)
        raise BadRequest("The upload was interrupted.", code="upload_interrupted") from None
    except BaseException:
        await _discard(store, receiver.files)
        raise
    received = []
    for part in receiver.files:
        assert part.info is not None  # noqa: S101 - every part ended and was committed
        # The type comes from the bytes; the client's claim is kept only as a hint.
        mime = magic.from_buffer(bytes(part.sniff), mime=True) if part.sniff else ""
        received.append(ReceivedFile(blob=part.info, filename=part.filename,
                                     mime=mime or "application/octet-stream",
                                     client_mime=part.client_mime))
    return received


async def delete_blobs(store: BlobStore, received: list[ReceivedFile]) -> None:
    for item in received:
        await run_in_threadpool(store.delete, item.blob.blob_id)


def upload_message(language: str, exc: HTTPError, max_bytes: int) -> FormError:
    """The refusal in the reader's language (the services' English messages carry numbers
    in bytes; people get sizes)."""
    if isinstance(exc, PayloadTooLarge) and exc.code == "quota_exceeded":
        return FormError(gettext(language, QUOTA_MESSAGE), "file", exc.status)
    if isinstance(exc, PayloadTooLarge) and exc.field in (None, "file"):
        message = gettext(language, TOO_LARGE_MESSAGE) % {"size": format_size(language,
                                                                              max_bytes)}
        return FormError(message, "file", exc.status)
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
    services = request.app.state.services

    def run(ctx: Ctx) -> Response:
        authenticate(ctx)
        language = choose_language(request, services.settings.default_language,
                                   ctx.user.language if ctx.user else None)
        error = upload_message(language, exc, services.settings.max_upload_bytes)
        pctx = PageCtx(ctx=ctx, form={}, form_lists={}, language=language)
        result = build(pctx, error)
        return render_html(language, result.template,
                           {"user": ctx.user, "csrf_token": ctx.csrf_token(), "path": path,
                            **result.context}, status=result.status)

    response, ctx = await in_transaction(request, write=False, fn=run)
    apply_cookies(response, ctx)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


async def _upload(request: Request, *, path: str, precheck: Callable[[Ctx], None],
                  store_rows: Callable[[Ctx, list[ReceivedFile]], str], build: Build,
                  single: bool = False) -> Response:
    services = request.app.state.services
    store = services.blob_store

    def check(ctx: Ctx) -> None:
        authenticate(ctx)
        if ctx.user is None:
            raise NotSignedIn()
        check_csrf(ctx, request.query_params.get("csrf_token"), always=True)
        precheck(ctx)

    try:
        await in_transaction(request, write=False, fn=check)
    except NotSignedIn:
        return RedirectResponse(f"/login?next={quote(path)}", status_code=303)
    except HTTPError as exc:
        return await _refusal(request, exc, path, build)
    try:
        received = await receive_files(request, store, services.settings.max_upload_bytes)
    except HTTPError as exc:
        return await _refusal(request, exc, path, build)
    if single and len(received) > 1:
        await delete_blobs(store, received)
        return await _refusal(request, BadRequest(ONE_FILE_MESSAGE, field="file"), path, build)

    def run(ctx: Ctx) -> str:
        authenticate(ctx)
        if ctx.user is None:
            raise NotSignedIn()
        return store_rows(ctx, received)

    try:
        target, ctx = await in_transaction(request, write=True, fn=run)
    except BaseException as exc:
        # Not made visible: no row refers to the blobs, so remove them now (the orphan
        # collector would get them later anyway).
        await delete_blobs(store, received)
        if isinstance(exc, HTTPError):
            return await _refusal(request, exc, path, build)
        raise
    response = RedirectResponse(target, status_code=303)
    apply_cookies(response, ctx)
    return response


async def folder_upload(request: Request) -> Response:
    fid = str(request.path_params["fid"])

    def precheck(ctx: Ctx) -> None:
        folder = folders.get_folder(ctx.db, ctx.access, fid, Action.FOLDER_WRITE)
        documents.check_quota(ctx.db, ctx.settings, folder.group_id, 0)

    def store_rows(ctx: Ctx, received: list[ReceivedFile]) -> str:
        folder = folders.get_folder(ctx.db, ctx.access, fid, Action.FOLDER_WRITE)
        for item in received:
            documents.create_file(ctx.db, ctx.access, ctx.settings, folder, item)
        return f"/folders/{folder.id}#documents"

    def build(p: PageCtx, error: FormError) -> Page:
        return folder_page_result(p, folders.get_folder(p.db, p.access, fid), error=error,
                                  form="upload")

    return await _upload(request, path=f"/folders/{fid}", precheck=precheck,
                         store_rows=store_rows, build=build)


async def version_upload(request: Request) -> Response:
    doc_id = str(request.path_params["doc_id"])
    unchanged: list[ReceivedFile] = []

    def precheck(ctx: Ctx) -> None:
        doc = documents.get_document(ctx.db, ctx.access, doc_id, Action.DOCUMENT_WRITE)
        if doc.kind != "file":
            raise NotFound()
        documents.check_quota(ctx.db, ctx.settings, doc.group_id, 0)

    def store_rows(ctx: Ctx, received: list[ReceivedFile]) -> str:
        doc = documents.get_document(ctx.db, ctx.access, doc_id)
        version = documents.add_version(ctx.db, ctx.access, ctx.settings, doc, received[0])
        if version is None:
            unchanged.append(received[0])
            return f"/documents/{doc.id}?unchanged=1#versions"
        return f"/documents/{doc.id}#versions"

    def build(p: PageCtx, error: FormError) -> Page:
        return file_page_result(p, documents.get_document(p.db, p.access, doc_id),
                                error=error, form="upload")

    response = await _upload(request, path=f"/documents/{doc_id}", precheck=precheck,
                             store_rows=store_rows, build=build, single=True)
    # The same bytes as the current version: nothing new was made, so the blob is not used.
    await delete_blobs(request.app.state.services.blob_store, unchanged)
    return response


def routes() -> list[BaseRoute]:
    return [
        Route("/folders/{fid}/upload", folder_upload, methods=["POST"]),
        Route("/documents/{doc_id}/upload", version_upload, methods=["POST"]),
    ]
