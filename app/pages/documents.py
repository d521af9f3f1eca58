"""Document pages: the document's own page (file or note, built in :mod:`app.pages.context`)
and the document actions shared by files and notes (label, restore and delete a version,
rename, trash). Uploads live in :mod:`app.pages.uploads`, restoring from and purging in the
trash in :mod:`app.pages.trash`."""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.errors import NotFound
from app.pages.context import document_page_result, in_trash_page
from app.pages.forms import FormError, attempt, validate
from app.pages.framework import PageCtx, PageResult, Redirect, page
from app.pages.notices import saved
from app.schemas.documents import DocumentUpdate, VersionLabel
from app.services import documents, notes


def document_page(p: PageCtx, doc_id: str) -> PageResult:
    try:
        doc = documents.get_document(p.db, p.access, doc_id)
    except NotFound as missing:
        return in_trash_page(p, "document", doc_id, missing)
    return document_page_result(p, doc)


def rename(p: PageCtx, doc_id: str) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    values = {"title": p.form.get("title", "")}

    def apply() -> None:
        body = validate(DocumentUpdate, values)
        if body.title is not None:
            documents.rename_document(p.access, doc, body.title)

    result = attempt(p, apply)
    if isinstance(result, FormError):
        return document_page_result(p, doc, error=result, form="rename", values=values)
    return Redirect(saved(f"/documents/{doc.id}", "name"))


def trash(p: PageCtx, doc_id: str) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    result = attempt(p, lambda: documents.trash_document(p.access, doc))
    if isinstance(result, FormError):
        return document_page_result(p, doc, error=result, form="trash")
    return Redirect(f"/folders/{doc.folder_id}#documents")


def label_version(p: PageCtx, doc_id: str, n: int) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    values = {"label": p.form.get("label", "")}

    def apply() -> None:
        body = validate(VersionLabel, values)
        documents.label_version(p.db, p.access, doc, n, body.label)

    result = attempt(p, apply)
    if isinstance(result, FormError):
        return document_page_result(p, doc, error=result, form="versions", values=values)
    return Redirect(f"/documents/{doc.id}#version-{n}")


def restore_version(p: PageCtx, doc_id: str, n: int) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    if doc.kind == "note":
        runtime = p.runtime
        result: object = attempt(p, lambda: notes.restore(
            p.db, p.access, runtime.live.manager, runtime.blob_store, doc, n,
            max_depth=p.settings.note_max_depth))
    else:
        result = attempt(p, lambda: documents.restore_version(p.db, p.access, doc, n))
    if isinstance(result, FormError):
        return document_page_result(p, doc, error=result, form="versions")
    return Redirect(f"/documents/{doc.id}#versions")


def delete_version(p: PageCtx, doc_id: str, n: int) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    result = attempt(p, lambda: documents.delete_version(p.db, p.access, doc, n))
    if isinstance(result, FormError):
        return document_page_result(p, doc, error=result, form="versions")
    return Redirect(f"/documents/{doc.id}#versions")


def routes() -> list[BaseRoute]:
    post = ("POST",)
    return [
        page("/documents/{doc_id}", document_page),
        page("/documents/{doc_id}/rename", rename, methods=post),
        page("/documents/{doc_id}/trash", trash, methods=post),
        page("/documents/{doc_id}/versions/{n:int}/label", label_version, methods=post),
        page("/documents/{doc_id}/versions/{n:int}/restore", restore_version, methods=post),
        page("/documents/{doc_id}/versions/{n:int}/delete", delete_version, methods=post),
    ]
