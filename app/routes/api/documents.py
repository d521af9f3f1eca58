"""Documents: upload, download, versions, rename, move, trash and restore."""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response

from app.access import Action
from app.errors import NotFound
from app.http.context import Ctx
from app.http.download import blob_response, content_disposition
from app.http.upload_flow import Stored
from app.i18n import N_
from app.models import Blob, Document, Folder
from app.routes.api.registry import router
from app.schemas.documents import (
    DocumentOut,
    DocumentUpdate,
    NewVersionOut,
    NoteSnapshotIn,
    VersionLabel,
    VersionOut,
)
from app.services import audit, documents, folders, notes
from app.services.blobs import open_blob
from app.services.documents import ReceivedFile
from app.services.note_docx import DOCX_MIME, note_to_docx
from app.services.odt import ODT_MIME, note_to_odt

TAG = "documents"


def _precheck_upload(ctx: Ctx, fid: str) -> None:
    folder = folders.get_folder(ctx.db, ctx.access, fid, Action.FOLDER_WRITE)
    documents.check_quota(ctx.db, ctx.settings, folder.group_id, 0)


@router.upload("POST", "/folders/{fid}/files", summary="Upload a file (multipart part 'file')",
               tag=TAG, response=DocumentOut, precheck=_precheck_upload)
def upload_file(ctx: Ctx, fid: str, received: ReceivedFile) -> Stored[DocumentOut]:
    folder = folders.get_folder(ctx.db, ctx.access, fid, Action.FOLDER_WRITE)
    return Stored(DocumentOut.of(documents.create_file(ctx.db, ctx.access, ctx.settings, folder,
                                                       received)))


@router.route("GET", "/documents/{doc_id}", summary="A document", tag=TAG, response=DocumentOut)
def get_document(ctx: Ctx, doc_id: str) -> DocumentOut:
    return DocumentOut.of(documents.get_document(ctx.db, ctx.access, doc_id))


@router.route("PATCH", "/documents/{doc_id}", summary="Rename or move a document", tag=TAG,
              body=DocumentUpdate, response=DocumentOut)
def update_document(ctx: Ctx, doc_id: str, body: DocumentUpdate) -> DocumentOut:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    if body.folder_id is not None and body.folder_id != doc.folder_id:
        target = ctx.db.get(Folder, body.folder_id)
        if target is None or not ctx.access.can_folder(Action.FOLDER_READ, target):
            raise NotFound(N_("No such target folder."), field="folder_id")
        documents.move_document(ctx.db, ctx.access, doc, target)
    if body.title is not None:
        documents.rename_document(ctx.access, doc, body.title)
    return DocumentOut.of(doc)


@router.route("DELETE", "/documents/{doc_id}", summary="Move a document to the trash", tag=TAG,
              status=204)
def trash_document(ctx: Ctx, doc_id: str) -> None:
    documents.trash_document(ctx.access, documents.get_document(ctx.db, ctx.access, doc_id))


@router.route("POST", "/documents/{doc_id}/restore", summary="Bring a document back from the trash",
              tag=TAG, response=DocumentOut)
def restore_document(ctx: Ctx, doc_id: str) -> DocumentOut:
    doc = documents.get_document(ctx.db, ctx.access, doc_id, Action.TRASH_RESTORE)
    documents.restore_document(ctx.access, doc)
    return DocumentOut.of(doc)


@router.route("DELETE", "/documents/{doc_id}/purge",
              summary="Remove a trashed document and all its versions for good", tag=TAG,
              status=204)
def purge_document(ctx: Ctx, doc_id: str) -> None:
    doc = documents.get_document(ctx.db, ctx.access, doc_id, Action.TRASH_PURGE)
    documents.purge_document(ctx.db, ctx.access, doc)


def _audit_download(ctx: Ctx, doc: Document, version: int | None, fmt: str | None) -> None:
    """Access was granted: the read is entered in the audit log after this read transaction,
    before the body is sent (app.http.context._record_use), at most once per person, version
    and PLEIN_AUDIT_DOWNLOAD_MINUTES."""
    user = ctx.require_user()
    download = audit.Download(actor_id=user.id, document_id=doc.id, group_id=doc.group_id,
                              version=version, format=fmt, ip=ctx.client_ip)
    if audit.download_due(ctx.db, ctx.settings.audit_download_minutes, download):
        ctx.downloads.append(download)


def _download(ctx: Ctx, doc: Document, number: int) -> Response:
    version = documents.get_version(ctx.db, doc, number)
    _audit_download(ctx, doc, version.number, None)
    blob = ctx.db.get_one(Blob, version.blob_id)
    reader = open_blob(ctx.runtime.blob_store, blob)
    return blob_response(reader, filename=version.filename, mime=version.mime,
                         sha256=version.sha256, range_header=ctx.conn.headers.get("range"),
                         if_none_match=ctx.conn.headers.get("if-none-match"))


@router.route("GET", "/documents/{doc_id}/content",
              summary="The current bytes (Range supported); a note as "
              "?format=markdown|html|text|odt|docx", tag=TAG, response=None)
def get_content(ctx: Ctx, doc_id: str) -> Response:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    if doc.kind == "note":
        _audit_download(ctx, doc, None, ctx.conn.query_params.get("format", "markdown"))
        return _note_response(ctx, notes.current_state(ctx.runtime.live.manager, doc), doc.title)
    return _download(ctx, doc, doc.current_version)


DOCUMENT_FORMATS: dict[str, tuple[Callable[[str, str], bytes], str]] = {
    "odt": (note_to_odt, ODT_MIME), "docx": (note_to_docx, DOCX_MIME)}


def _note_response(ctx: Ctx, state: bytes, title: str) -> Response:
    """A note rendered as ``?format=markdown`` (default), ``html``, ``text``, ``odt`` or
    ``docx``; the HTML is our renderer's (escaped text, safe links) and is still served
    sandboxed."""
    fmt = ctx.conn.query_params.get("format", "markdown")
    if fmt in DOCUMENT_FORMATS:
        # OpenDocument text (the open standard Dutch government bodies must accept) or Word:
        # a download, written from the note's own HTML.
        html = notes.render(state, "html", max_depth=ctx.settings.note_max_depth)
        write, mime = DOCUMENT_FORMATS[fmt]
        return Response(write(title, html), media_type=mime, headers={
            "Content-Disposition": content_disposition(f"{title}.{fmt}", inline=False),
            "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})
    body = notes.render(state, fmt, max_depth=ctx.settings.note_max_depth)
    ext = {"html": "html", "markdown": "md", "text": "txt"}[fmt]
    return Response(body, media_type=f"{notes.MEDIA_TYPES[fmt]}; charset=utf-8", headers={
        "Content-Disposition": content_disposition(f"{title}.{ext}", inline=True),
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


def _precheck_version(ctx: Ctx, doc_id: str) -> None:
    doc = documents.get_document(ctx.db, ctx.access, doc_id, Action.DOCUMENT_WRITE)
    documents.check_quota(ctx.db, ctx.settings, doc.group_id, 0)


# A JSON body on the upload's path: the OpenAPI document shows both as one operation.
@router.route("POST", "/documents/{doc_id}/versions", summary="A named snapshot of a note",
              tag=TAG, body=NoteSnapshotIn, response=VersionOut, status=201)
def note_snapshot(ctx: Ctx, doc_id: str, body: NoteSnapshotIn) -> VersionOut:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    version = notes.named_snapshot(ctx.db, ctx.access, ctx.runtime.live.manager,
                                   ctx.runtime.blob_store, doc, body.label)
    return VersionOut.of(version, doc)


@router.upload("POST", "/documents/{doc_id}/versions",
               summary="A new version: a file upload (multipart part 'file'), or for a note a "
               "named snapshot (JSON {label})", tag=TAG,
               response=NewVersionOut, precheck=_precheck_version)
def add_version(ctx: Ctx, doc_id: str, received: ReceivedFile) -> Stored[NewVersionOut]:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    version = documents.add_version(ctx.db, ctx.access, ctx.settings, doc, received)
    if version is None:
        # The same bytes as the current version: answered with it (200), the blob unused.
        current = documents.get_version(ctx.db, doc, doc.current_version)
        return Stored(NewVersionOut(**VersionOut.of(current, doc).model_dump(), unchanged=True),
                      created=False, unused=(received,))
    return Stored(NewVersionOut(**VersionOut.of(version, doc).model_dump()))


@router.route("GET", "/documents/{doc_id}/versions", summary="All versions, newest first",
              tag=TAG, response=list[VersionOut])
def list_versions(ctx: Ctx, doc_id: str) -> list[VersionOut]:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    return [VersionOut.of(v, doc) for v in documents.versions(ctx.db, doc)]


@router.route("GET", "/documents/{doc_id}/versions/{n:int}/content",
              summary="The bytes of one version (Range supported)", tag=TAG, response=None)
def get_version_content(ctx: Ctx, doc_id: str, n: int) -> Response:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    if doc.kind == "note":
        version = documents.get_version(ctx.db, doc, n)
        _audit_download(ctx, doc, n, ctx.conn.query_params.get("format", "markdown"))
        state = notes.version_state(ctx.db, ctx.runtime.blob_store, version)
        return _note_response(ctx, state, f"{doc.title} v{n}")
    return _download(ctx, doc, n)


@router.route("PATCH", "/documents/{doc_id}/versions/{n:int}", summary="Label a version",
              tag=TAG, body=VersionLabel, response=VersionOut)
def label_version(ctx: Ctx, doc_id: str, n: int, body: VersionLabel) -> VersionOut:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    return VersionOut.of(documents.label_version(ctx.db, ctx.access, doc, n, body.label), doc)


@router.route("POST", "/documents/{doc_id}/versions/{n:int}/restore",
              summary="Make a new current version equal to version n", tag=TAG,
              response=VersionOut, status=201)
def restore_version(ctx: Ctx, doc_id: str, n: int) -> VersionOut:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    if doc.kind == "note":
        version = notes.restore(ctx.db, ctx.access, ctx.runtime.live.manager,
                                ctx.runtime.blob_store, doc, n,
                                max_depth=ctx.settings.note_max_depth)
        return VersionOut.of(version, doc)
    return VersionOut.of(documents.restore_version(ctx.db, ctx.access, doc, n), doc)


@router.route("DELETE", "/documents/{doc_id}/versions/{n:int}",
              summary="Delete one old version (owners and admins)", tag=TAG, status=204)
def delete_version(ctx: Ctx, doc_id: str, n: int) -> None:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    documents.delete_version(ctx.db, ctx.access, doc, n)
