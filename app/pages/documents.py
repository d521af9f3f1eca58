"""Document pages: the file page (preview, versions, rename, trash), the dispatch to the note
page, and the document actions shared by files and notes (label, restore and delete a version,
rename, trash, restore from and purge in the trash). Uploads live in :mod:`app.pages.uploads`."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from starlette.routing import BaseRoute

from app.access import Action
from app.models import Document, DocumentVersion, Folder, Group, User
from app.pages.discussions import discussion_context
from app.pages.forms import N_, FormError, attempt, validate
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page
from app.schemas.documents import DocumentUpdate, VersionLabel
from app.services import documents, folders

API = "/api/v1"

# Images the browser shows inline (an <img> is allowed by the CSP's img-src 'self'); anything
# else is offered as a download only.
PREVIEW_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"})

_TYPES: tuple[tuple[str, str, str], ...] = (
    # (prefix or exact mime, icon key, label)
    ("application/pdf", "pdf", N_("PDF document")),
    ("image/", "image", N_("Image")),
    ("application/msword", "text", N_("Text document")),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml", "text", N_("Text document")),
    ("application/vnd.oasis.opendocument.text", "text", N_("Text document")),
    ("application/rtf", "text", N_("Text document")),
    ("application/vnd.ms-excel", "sheet", N_("Spreadsheet")),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml", "sheet", N_("Spreadsheet")),
    ("application/vnd.oasis.opendocument.spreadsheet", "sheet", N_("Spreadsheet")),
    ("text/csv", "sheet", N_("Spreadsheet")),
    ("application/vnd.ms-powerpoint", "slides", N_("Presentation")),
    ("application/vnd.openxmlformats-officedocument.presentationml", "slides", N_("Presentation")),
    ("application/vnd.oasis.opendocument.presentation", "slides", N_("Presentation")),
    ("text/", "text", N_("Text")),
    ("application/zip", "archive", N_("Archive")),
    ("application/x-7z", "archive", N_("Archive")),
    ("application/gzip", "archive", N_("Archive")),
    ("application/x-tar", "archive", N_("Archive")),
)


def kind_of(doc: Document) -> tuple[str, str]:
    """(icon key, label msgid) for a document: notes, then files by their sniffed type."""
    if doc.kind == "note":
        return "note", N_("Note")
    for prefix, icon, label in _TYPES:
        if doc.mime.startswith(prefix):
            return icon, label
    return "file", N_("File")


def color_index(user_id: str) -> int:
    """A person's caret colour: stable across pages and devices (palette of 8)."""
    return int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:4], "big") % 8


def user_names(p: PageCtx, ids: set[str | None]) -> dict[str, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {u.id: u.name for u in p.db.scalars(select(User).where(User.id.in_(wanted)))}


def version_rows(p: PageCtx, doc: Document) -> list[tuple[DocumentVersion, str | None]]:
    rows = documents.versions(p.db, doc)
    names = user_names(p, {v.created_by for v in rows})
    return [(v, names.get(v.created_by or "")) for v in rows]


def document_context(p: PageCtx, doc: Document) -> dict[str, Any]:
    """What every document page shows: where it is and what the reader may do."""
    folder = p.db.get_one(Folder, doc.folder_id)
    icon, type_label = kind_of(doc)
    return {
        "doc": doc,
        "folder": folder,
        "group": p.db.get_one(Group, doc.group_id),
        "trail": folders.breadcrumbs(p.db, p.access, folder),
        "icon": icon,
        "type_label": type_label,
        "can_write": p.access.can_document(Action.DOCUMENT_WRITE, doc),
        "can_manage": p.access.can_document(Action.DOCUMENT_MANAGE, doc),
        "api": f"{API}/documents/{doc.id}",
    }


def file_page_result(p: PageCtx, doc: Document, *, error: FormError | None = None,
                     form: str | None = None, values: dict[str, str] | None = None) -> Page:
    context = document_context(p, doc)
    context.update(discussion_context(p, doc))
    context.update({
        "versions": version_rows(p, doc),
        "preview": doc.mime in PREVIEW_MIMES,
        "unchanged": p.query.get("unchanged") == "1",
        "max_upload": p.settings.max_upload_bytes,
        "values": values or {},
        "error": error.message if error else None,
        "error_form": form if error else None,
    })
    return Page("document_file.html", context, status=error.status if error else 200)


def result_for(p: PageCtx, doc: Document, *, error: FormError | None = None,
               form: str | None = None, values: dict[str, str] | None = None) -> Page:
    """The document's own page (file or note), also as the answer of a refused form."""
    if doc.kind == "note":
        from app.pages.notes import note_page_result

        return note_page_result(p, doc, error=error, form=form, values=values)
    return file_page_result(p, doc, error=error, form=form, values=values)


def document_page(p: PageCtx, doc_id: str) -> PageResult:
    return result_for(p, documents.get_document(p.db, p.access, doc_id))


def rename(p: PageCtx, doc_id: str) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    values = {"title": p.form.get("title", "")}

    def apply() -> None:
        body = validate(DocumentUpdate, values)
        if body.title is not None:
            documents.rename_document(p.access, doc, body.title)

    result = attempt(p, apply)
    if isinstance(result, FormError):
        return result_for(p, doc, error=result, form="rename", values=values)
    return Redirect(f"/documents/{doc.id}")


def trash(p: PageCtx, doc_id: str) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    result = attempt(p, lambda: documents.trash_document(p.access, doc))
    if isinstance(result, FormError):
        return result_for(p, doc, error=result, form="trash")
    return Redirect(f"/folders/{doc.folder_id}#documents")


def label_version(p: PageCtx, doc_id: str, n: int) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    values = {"label": p.form.get("label", "")}

    def apply() -> None:
        body = validate(VersionLabel, values)
        documents.label_version(p.db, p.access, doc, n, body.label)

    result = attempt(p, apply)
    if isinstance(result, FormError):
        return result_for(p, doc, error=result, form="versions", values=values)
    return Redirect(f"/documents/{doc.id}#version-{n}")


def restore_version(p: PageCtx, doc_id: str, n: int) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    if doc.kind == "note":
        from app.services import notes

        runtime = p.ctx.runtime
        result: object = attempt(p, lambda: notes.restore(
            p.db, p.access, runtime.live.manager, runtime.blob_store, doc, n,
            max_depth=p.settings.note_max_depth))
    else:
        result = attempt(p, lambda: documents.restore_version(p.db, p.access, doc, n))
    if isinstance(result, FormError):
        return result_for(p, doc, error=result, form="versions")
    return Redirect(f"/documents/{doc.id}#versions")


def delete_version(p: PageCtx, doc_id: str, n: int) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    result = attempt(p, lambda: documents.delete_version(p.db, p.access, doc, n))
    if isinstance(result, FormError):
        return result_for(p, doc, error=result, form="versions")
    return Redirect(f"/documents/{doc.id}#versions")


def restore_from_trash(p: PageCtx, doc_id: str) -> PageResult:
    from app.pages.folders import trash_action

    doc = documents.get_document(p.db, p.access, doc_id, Action.TRASH_RESTORE)
    return trash_action(p, doc.group_id, lambda: documents.restore_document(p.access, doc),
                        f"/documents/{doc.id}")


def purge(p: PageCtx, doc_id: str) -> PageResult:
    from app.pages.folders import trash_action

    doc = documents.get_document(p.db, p.access, doc_id, Action.TRASH_PURGE)
    return trash_action(p, doc.group_id,
                        lambda: documents.purge_document(p.db, p.access, doc),
                        f"/groups/{doc.group_id}/trash")


def routes() -> list[BaseRoute]:
    post = ("POST",)
    return [
        page("/documents/{doc_id}", document_page),
        page("/documents/{doc_id}/rename", rename, methods=post),
        page("/documents/{doc_id}/trash", trash, methods=post),
        page("/documents/{doc_id}/restore", restore_from_trash, methods=post),
        page("/documents/{doc_id}/purge", purge, methods=post),
        page("/documents/{doc_id}/versions/{n:int}/label", label_version, methods=post),
        page("/documents/{doc_id}/versions/{n:int}/restore", restore_version, methods=post),
        page("/documents/{doc_id}/versions/{n:int}/delete", delete_version, methods=post),
    ]
