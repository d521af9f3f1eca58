"""Notes: create (optionally from Markdown or plain text) and compare versions."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.access import Action
from app.http.context import Ctx
from app.routes.api.registry import router
from app.schemas.documents import DiffOut, DocumentOut, NoteCreate
from app.services import documents, folders, notes

TAG = "notes"


class DiffQuery(BaseModel):
    to: int = Field(ge=1)


@router.route("POST", "/folders/{fid}/notes",
              summary="Create a note (initial text as Markdown or plain text)", tag=TAG,
              body=NoteCreate, response=DocumentOut, status=201)
def create_note(ctx: Ctx, fid: str, body: NoteCreate) -> DocumentOut:
    folder = folders.get_folder(ctx.db, ctx.access, fid, Action.FOLDER_WRITE)
    doc = notes.create_note(ctx.db, ctx.access, ctx.runtime.live.manager, folder,
                            title=body.title, text=body.text, text_format=body.format,
                            max_depth=ctx.settings.note_max_depth)
    return DocumentOut.of(doc)


@router.route("GET", "/documents/{doc_id}/versions/{n:int}/diff",
              summary="Text-level differences between two versions of a note", tag=TAG,
              response=DiffOut, query=DiffQuery)
def diff_versions(ctx: Ctx, doc_id: str, n: int, query: DiffQuery) -> DiffOut:
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    lines = notes.diff(ctx.db, ctx.runtime.blob_store, doc, n, query.to,
                       max_depth=ctx.settings.note_max_depth)
    return DiffOut(from_version=n, to_version=query.to, diff=lines)
