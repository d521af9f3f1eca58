"""Note pages: the live editor (with a server-rendered copy for when JavaScript is off), the
version panel (named snapshots, read-only views of a version, restore, text differences), and
creating a note from the folder page.

The room manager lives on the event loop; the services reach it through ``anyio.from_thread``,
which works from the page's worker thread as it does from the API's."""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.errors import HTTPError
from app.models import Document, DocumentVersion
from app.pages.context import (
    document_context,
    document_page_result,
    folder_page_result,
    note_html,
    version_kind,
    version_rows,
)
from app.pages.forms import FormError, attempt, refused, validate
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page
from app.schemas.documents import NoteCreate, NoteSnapshotIn
from app.services import documents, folders, notes


def create_note(p: PageCtx, fid: str) -> PageResult:
    folder = folders.get_folder(p.db, p.access, fid)
    values = {"title": p.form.get("title", "")}

    def create() -> Document:
        body = validate(NoteCreate, values)
        return notes.create_note(p.db, p.access, p.runtime.live.manager, folder,
                                 title=body.title, text=None, text_format="markdown")

    result = attempt(p, create)
    if isinstance(result, FormError):
        return folder_page_result(p, folder, error=result, form="note", values=values)
    return Redirect(f"/documents/{result.id}")


def save_version(p: PageCtx, doc_id: str) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    values = {"label": p.form.get("label", "")}
    runtime = p.runtime

    def save() -> DocumentVersion:
        body = validate(NoteSnapshotIn, {"label": values["label"] or None})
        return notes.named_snapshot(p.db, p.access, runtime.live.manager, runtime.blob_store,
                                    doc, body.label)

    result = attempt(p, save)
    if isinstance(result, FormError):
        return document_page_result(p, doc, error=result, form="snapshot", values=values)
    return Redirect(f"/documents/{doc.id}#versions")


def version_page(p: PageCtx, doc_id: str, n: int) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    version = documents.get_version(p.db, doc, n)
    if doc.kind != "note":
        return Redirect(f"/api/v1/documents/{doc.id}/versions/{n}/content")
    state = notes.version_state(p.db, p.runtime.blob_store, version)
    context = document_context(p, doc)
    names = version_rows(p, doc)
    context.update({
        "version": version,
        "author": next((name for v, name in names if v.number == n), None),
        "kind": version_kind(version),
        "content_html": note_html(p, state),
        "latest": max((v.number for v, _name in names), default=n),
    })
    return Page("note_version.html", context)


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and len(value) < 10 else None


def diff_page(p: PageCtx, doc_id: str) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id)
    numbers = [v.number for v, _name in version_rows(p, doc)]
    query = p.query
    # Without a choice: the latest version against the one before it.
    a = _int(query["from"]) if "from" in query else (numbers[1] if len(numbers) > 1 else None)
    b = _int(query["to"]) if "to" in query else (numbers[0] if numbers else None)
    lines: list[tuple[str, str]] = []
    error: str | None = None
    status = 200
    if doc.kind != "note" or a is None or b is None:
        error = refused(p.language, HTTPError("Pick two different versions.")).message
        status = 400
    else:
        try:
            for line in notes.diff(p.db, p.runtime.blob_store, doc, a, b,
                                   max_depth=p.settings.note_max_depth):
                lines.append((_line_class(line), line))
        except HTTPError as exc:
            error = refused(p.language, exc).message
            status = exc.status
    context = document_context(p, doc)
    context.update({"lines": lines, "diff_from": a, "diff_to": b, "numbers": numbers,
                    "error": error, "changed": any(c in ("add", "del") for c, _ in lines)})
    return Page("note_diff.html", context, status=status)


def _line_class(line: str) -> str:
    if line.startswith(("+++", "---")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    if line.startswith("+"):
        return "add"
    if line.startswith("-"):
        return "del"
    return "same"


def routes() -> list[BaseRoute]:
    post = ("POST",)
    return [
        page("/folders/{fid}/notes", create_note, methods=post),
        page("/documents/{doc_id}/snapshot", save_version, methods=post),
        page("/documents/{doc_id}/versions/{n:int}", version_page),
        page("/documents/{doc_id}/diff", diff_page),
    ]

