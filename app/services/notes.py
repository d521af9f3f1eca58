"""Notes: co-edited documents whose content is a Yjs document kept by :mod:`sync`.

Creating a note applies its initial text once, as CRDT operations, before the row commits
(SYNC.md: never rebuild a CRDT from plain text when state exists). Versions of a note are
snapshots of the full encoded state, stored as encrypted blobs like file versions; restoring
one applies the difference as new edits on top, so history is never rewritten.

Route handlers run in worker threads; the room manager lives on the event loop, so calls into
it go through ``anyio.from_thread``.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable
from typing import Literal

import anyio.from_thread
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import Access, Action
from app.errors import BadRequest, Conflict, NotFound
from app.i18n import N_
from app.models import Blob, Document, DocumentVersion, Folder, new_id, utcnow
from app.search_outbox import enqueue
from app.services import activity
from app.services.blobs import open_blob, record_blob
from app.services.markdown import sanitize_note
from storage import BlobInfo, LocalBlobStore
from sync import (
    MAX_DEPTH,
    RoomManager,
    markdown_to_update,
    render_html,
    render_markdown,
    render_text,
    restore_update,
    text_to_update,
)

NOTE_MIME = "application/vnd.plein.note+yjs"
Format = Literal["html", "markdown", "text"]
RENDERERS: dict[str, Callable[..., str]] = {
    "html": render_html, "markdown": render_markdown, "text": render_text}
MEDIA_TYPES = {"html": "text/html", "markdown": "text/markdown", "text": "text/plain"}


def create_note(db: Session, access: Access, manager: RoomManager, folder: Folder, *,
                title: str, text: str | None, text_format: str,
                max_depth: int = MAX_DEPTH) -> Document:
    user = access.require_user()
    access.require_folder(Action.FOLDER_WRITE, folder)
    doc = Document(id=new_id(), group_id=folder.group_id, folder_id=folder.id, kind="note",
                   title=title, current_version=0, mime=NOTE_MIME, created_by=user.id)
    if text:
        update = (markdown_to_update(text, max_depth=max_depth) if text_format == "markdown"
                  else text_to_update(text))
        # Durable before the row that makes the note visible commits; if the commit fails the
        # note's store is an orphan, never a visible note with missing content.
        anyio.from_thread.run(manager.initialize, doc.id, [update])
    db.add(doc)
    db.flush()
    activity.record(db, "document.created", actor_id=user.id, document=doc)
    return doc


def current_state(manager: RoomManager, doc: Document) -> bytes:
    return anyio.from_thread.run(manager.snapshot_state, doc.id)


def render(state: bytes, fmt: str, *, max_depth: int = MAX_DEPTH) -> str:
    renderer = RENDERERS.get(fmt)
    if renderer is None:
        raise BadRequest(N_("format must be html, markdown, text, odt or docx"), field="format")
    if fmt == "html":
        # Pages put this in as trusted markup: sanitized like comments, one mistake is not enough.
        return sanitize_note(renderer(state, max_depth=max_depth))
    return renderer(state, max_depth=max_depth)


def _write_state(store: LocalBlobStore, state: bytes) -> BlobInfo:
    with store.open_writer() as writer:
        writer.write(state)
        return writer.commit()


def snapshot(db: Session, store: LocalBlobStore, doc: Document, state: bytes, *,
             user_id: str | None, label: str | None, restored_from: int | None = None
             ) -> DocumentVersion:
    """Store the full state as version ``current + 1``."""
    info = _write_state(store, state)
    record_blob(db, info, doc.group_id)
    version = DocumentVersion(document_id=doc.id, number=doc.current_version + 1,
                              blob_id=info.blob_id, filename=f"{doc.title}.yjs", mime=NOTE_MIME,
                              size=info.size, sha256=info.sha256, label=label,
                              created_by=user_id, restored_from=restored_from)
    db.add(version)
    doc.current_version = version.number
    doc.size, doc.sha256 = info.size, info.sha256
    doc.updated_at = utcnow()
    db.flush()
    return version


def named_snapshot(db: Session, access: Access, manager: RoomManager, store: LocalBlobStore,
                   doc: Document, label: str | None) -> DocumentVersion:
    user = access.require_user()
    access.require_document(Action.DOCUMENT_WRITE, doc)
    if doc.kind != "note":
        raise BadRequest(N_("Upload a file as multipart/form-data to make a new file version."),
                         code="not_a_note")
    version = snapshot(db, store, doc, current_state(manager, doc), user_id=user.id,
                       label=label)
    activity.record(db, "document.version", actor_id=user.id, document=doc,
                    data={"version": version.number, "label": label})
    return version


def version_state(db: Session, store: LocalBlobStore, version: DocumentVersion) -> bytes:
    blob = db.get_one(Blob, version.blob_id)
    with open_blob(store, blob) as reader:
        return b"".join(reader.iter_chunks())


def restore(db: Session, access: Access, manager: RoomManager, store: LocalBlobStore,
            doc: Document, number: int, *, max_depth: int = MAX_DEPTH) -> DocumentVersion:
    """Make the note equal to version ``number`` by new edits on top (everyone connected sees
    them arrive), then record the result as a new version."""
    user = access.require_user()
    access.require_document(Action.DOCUMENT_WRITE, doc)
    source = _version(db, doc, number)
    old = version_state(db, store, source)
    update = restore_update(current_state(manager, doc), old, max_depth=max_depth)
    anyio.from_thread.run(manager.apply_update, doc.id, update)
    version = snapshot(db, store, doc, current_state(manager, doc), user_id=user.id,
                       label=None, restored_from=number)
    activity.record(db, "document.version", actor_id=user.id, document=doc,
                    data={"version": version.number, "restored_from": number})
    return version


def record_edit(db: Session, doc_id: str, user_id: str) -> None:
    """A person edited a note live (coalesced to one activity per person per hour)."""
    doc = db.get(Document, doc_id)
    if doc is not None and doc.trashed_at is None:
        activity.record(db, "document.edited", actor_id=user_id, document=doc)
        # Live edits change no row, so the search index learns of them here (and at the
        # next automatic version, which does change the document row).
        enqueue(db, {doc.id})


def _version(db: Session, doc: Document, number: int) -> DocumentVersion:
    version = db.scalar(select(DocumentVersion).where(DocumentVersion.document_id == doc.id,
                                                      DocumentVersion.number == number))
    if version is None:
        raise NotFound(N_("No such version."))
    return version


def diff(db: Session, store: LocalBlobStore, doc: Document, a: int, b: int, *,
         max_depth: int = MAX_DEPTH) -> list[str]:
    """A text-level unified diff from version ``a`` to version ``b`` (0 = the live note is not
    a version; ask for numbers from the version list). Files have no text-level diff: their
    versions are arbitrary bytes, not note states, so asking for one is refused up front."""
    if doc.kind != "note":
        raise BadRequest(N_("Only notes can be compared version by version."), code="not_a_note")
    if a == b:
        raise Conflict(N_("Pick two different versions."), code="same_version")
    old = render_text(version_state(db, store, _version(db, doc, a)),
                      max_depth=max_depth).splitlines()
    new = render_text(version_state(db, store, _version(db, doc, b)),
                      max_depth=max_depth).splitlines()
    return list(difflib.unified_diff(old, new, f"v{a}", f"v{b}", lineterm=""))


def state_hash(state: bytes) -> str:
    return hashlib.sha256(state).hexdigest()
