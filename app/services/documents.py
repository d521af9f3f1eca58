"""Documents in folders: files with versions (notes: app.services.notes), rename, move,
trash, restore, purge, quota. History is never rewritten."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import Access, Action, FolderRole
from app.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, Unprocessable
from app.i18n import N_
from app.models import Blob, Document, DocumentVersion, Folder, Group, utcnow
from app.services import activity, audit
from app.services.blobs import record_blob
from app.settings import Settings
from storage import BlobInfo
from sync import stored_bytes


@dataclass
class ReceivedFile:
    """An uploaded file that is now a durable, encrypted blob (committed, not yet referenced
    by any row): what :func:`create_file` and :func:`add_version` make visible."""

    blob: BlobInfo
    filename: str
    mime: str  # sniffed from the bytes
    client_mime: str  # the client's claim, a hint only
    fields: dict[str, str] = field(default_factory=dict)  # the form's text fields


def get_document(db: Session, access: Access, document_id: str,
                 action: Action = Action.DOCUMENT_READ) -> Document:
    return access.require_document(action, db.get(Document, document_id))


def folder_documents(db: Session, access: Access, folder: Folder) -> list[Document]:
    """Documents directly in a readable folder: one query (access comes from the folder)."""
    if not access.can_folder(Action.FOLDER_READ, folder):
        return []
    rows = db.scalars(select(Document).where(Document.folder_id == folder.id,
                                             Document.trashed_at.is_(None)))
    return sorted(rows, key=lambda d: (d.title.lower(), d.id))


def group_usage(db: Session, settings: Settings, group_id: str) -> int:
    """Bytes the group stores: every file version and note version (blobs), and each note's
    live store (update log and snapshot, on disk under DATA_DIR/notes) -- trash included,
    until it is purged."""
    blobs = int(db.scalar(select(func.coalesce(func.sum(Blob.size), 0))
                          .where(Blob.group_id == group_id)) or 0)
    note_ids = db.scalars(select(Document.id).where(Document.group_id == group_id,
                                                    Document.kind == "note"))
    return blobs + sum(stored_bytes(notes_root(settings), note_id) for note_id in note_ids)


def notes_root(settings: Settings) -> Path:
    return settings.data_dir / "notes"


def check_quota(db: Session, settings: Settings, group_id: str, adding: int) -> None:
    quota = settings.group_quota_bytes
    if quota and group_usage(db, settings, group_id) + adding > quota:
        raise PayloadTooLarge(
            f"The group's storage quota of {quota} bytes would be exceeded; remove old versions "
            "or files from the trash, or ask an administrator for more space.",
            code="quota_exceeded")


TITLE_LIMIT = 300  # as app.schemas.documents.Title


def check_upload(received: ReceivedFile, title: str = "") -> None:
    """Refuse what would otherwise be kept quietly wrong: an empty file (almost always a failed
    export or a placeholder, and a version nobody can tell from a real one) and a title cut to
    fit. Both are said in words, never silently fixed (issue 17)."""
    if received.blob.size == 0:
        raise BadRequest(N_("The file is empty (0 bytes); nothing was stored."),
                         code="empty_file", field="file")
    if len(title) > TITLE_LIMIT:
        raise BadRequest(N_("The title is too long: at most 300 characters."),
                         code="name_too_long", field="title", extra={"limit": TITLE_LIMIT})


def _make_current(db: Session, doc: Document, version: DocumentVersion) -> DocumentVersion:
    db.add(version)
    doc.current_version = version.number
    doc.mime, doc.size, doc.sha256 = version.mime, version.size, version.sha256
    doc.updated_at = utcnow()
    return version


def _uploaded_version(doc: Document, received: ReceivedFile, user_id: str, number: int
                      ) -> DocumentVersion:
    info = received.blob
    return DocumentVersion(document_id=doc.id, number=number, blob_id=info.blob_id,
                           filename=received.filename, mime=received.mime, size=info.size,
                           sha256=info.sha256, created_by=user_id)


def create_file(db: Session, access: Access, settings: Settings, folder: Folder,
                received: ReceivedFile) -> Document:
    user = access.require_user()
    access.require_folder(Action.FOLDER_WRITE, folder)
    title = received.fields.get("title", "").strip()
    check_upload(received, title)
    check_quota(db, settings, folder.group_id, received.blob.size)
    record_blob(db, received.blob, folder.group_id)
    title = title or received.filename
    doc = Document(group_id=folder.group_id, folder_id=folder.id, kind="file", title=title,
                   created_by=user.id)
    db.add(doc)
    db.flush()
    _make_current(db, doc, _uploaded_version(doc, received, user.id, 1))
    db.flush()
    activity.record(db, "document.created", actor_id=user.id, document=doc)
    return doc


def add_version(db: Session, access: Access, settings: Settings, doc: Document,
                received: ReceivedFile) -> DocumentVersion | None:
    """A new current version, or ``None`` when the bytes equal the current version's (the
    caller says so and removes the unused blob)."""
    user = access.require_user()
    access.require_document(Action.DOCUMENT_WRITE, doc)
    if doc.kind != "file":
        raise Unprocessable(N_("Only files take uploaded versions."), code="not_a_file")
    check_upload(received)
    if received.blob.sha256 == doc.sha256 and received.blob.size == doc.size:
        return None
    check_quota(db, settings, doc.group_id, received.blob.size)
    record_blob(db, received.blob, doc.group_id)
    version = _make_current(db, doc, _uploaded_version(doc, received, user.id,
                                                       doc.current_version + 1))
    db.flush()
    activity.record(db, "document.version", actor_id=user.id, document=doc,
                    data={"version": version.number})
    return version


def versions(db: Session, doc: Document) -> list[DocumentVersion]:
    return list(db.scalars(select(DocumentVersion).where(DocumentVersion.document_id == doc.id)
                           .order_by(DocumentVersion.number.desc())))


def get_version(db: Session, doc: Document, number: int) -> DocumentVersion:
    version = db.scalar(select(DocumentVersion).where(DocumentVersion.document_id == doc.id,
                                                      DocumentVersion.number == number))
    if version is None:
        raise NotFound(N_("No such version."))
    return version


def label_version(db: Session, access: Access, doc: Document, number: int, label: str | None
                  ) -> DocumentVersion:
    access.require_document(Action.DOCUMENT_WRITE, doc)
    version = get_version(db, doc, number)
    version.label = label or None
    return version


def restore_version(db: Session, access: Access, doc: Document, number: int) -> DocumentVersion:
    """A new current version equal to version ``number``; it shares the immutable blob."""
    user = access.require_user()
    access.require_document(Action.DOCUMENT_WRITE, doc)
    source = get_version(db, doc, number)
    if number == doc.current_version:
        raise Conflict(N_("This is already the current version."), code="already_current")
    version = _make_current(db, doc, DocumentVersion(
        document_id=doc.id, number=doc.current_version + 1, blob_id=source.blob_id,
        filename=source.filename, mime=source.mime, size=source.size, sha256=source.sha256,
        created_by=user.id, restored_from=number))
    db.flush()
    activity.record(db, "document.version", actor_id=user.id, document=doc,
                    data={"version": version.number, "restored_from": number})
    audit.record(db, "document.version_restored", actor_id=user.id, object_type="document",
                 object_id=doc.id, group_id=doc.group_id,
                 detail={"version": version.number, "restored_from": number})
    return version


def delete_version(db: Session, access: Access, doc: Document, number: int) -> None:
    """Remove one old version (owners/admins). Its blob row goes when nothing else refers to
    it; the file itself is removed by the orphan collector, after the commit."""
    access.require_document(Action.DOCUMENT_MANAGE, doc)
    version = get_version(db, doc, number)
    if number == doc.current_version:
        raise Conflict(N_("The current version cannot be deleted; restore another one first."),
                       code="current_version")
    drop_version(db, version)


def drop_version(db: Session, version: DocumentVersion) -> None:
    blob_id = version.blob_id
    db.delete(version)
    db.flush()
    still_used = db.scalar(select(DocumentVersion.id).where(DocumentVersion.blob_id == blob_id)
                           .limit(1))
    if still_used is None:
        blob = db.get(Blob, blob_id)
        if blob is not None:
            db.delete(blob)


def rename_document(access: Access, doc: Document, title: str) -> None:
    access.require_document(Action.DOCUMENT_WRITE, doc)
    doc.title = title
    doc.updated_at = utcnow()


def move_document(db: Session, access: Access, doc: Document, target: Folder) -> None:
    """Editors may move between folders of the group as long as the move does not widen who
    can read the document; a move to a wider place is a manager's decision."""
    access.require_document(Action.DOCUMENT_WRITE, doc)
    access.require_folder(Action.FOLDER_WRITE, target)
    if target.group_id != doc.group_id:
        raise Unprocessable(N_("Documents move within their group only."), code="other_group",
                            field="folder_id")
    source = db.get(Folder, doc.folder_id)
    if source is not None:
        narrowing = set(access.closed_ancestor_ids(source)) <= set(
            access.closed_ancestor_ids(target))
        if not narrowing and access.folder_role(target) is not FolderRole.MANAGE:
            raise Unprocessable(N_("Moving here would let more people read the document; ask a "
                                "group owner or admin."), code="wider_access",
                                field="folder_id")
    doc.folder_id = target.id
    doc.updated_at = utcnow()
    activity.record(db, "document.moved", actor_id=access.require_user().id, document=doc)


def trash_document(access: Access, doc: Document) -> None:
    user = access.require_user()
    access.require_document(Action.DOCUMENT_WRITE, doc)
    doc.trashed_at = utcnow()
    doc.trashed_by = user.id
    activity.record(access.db, "document.trashed", actor_id=user.id, document=doc)
    audit.record(access.db, "document.trashed", actor_id=user.id, object_type="document",
                 object_id=doc.id, group_id=doc.group_id)


def restore_document(access: Access, doc: Document) -> None:
    access.require_document(Action.TRASH_RESTORE, doc)
    if doc.trashed_at is None:
        raise Conflict(N_("This document is not in the trash."), code="not_in_trash")
    if access._tree(doc.group_id).in_trash(doc.folder_id):
        raise Conflict(N_("Restore the folder it was in first."), code="parent_in_trash")
    doc.trashed_at = None
    doc.trashed_by = None
    audit.record(access.db, "document.restored", actor_id=access.require_user().id,
                 object_type="document", object_id=doc.id, group_id=doc.group_id)


def purge_document(db: Session, access: Access, doc: Document) -> None:
    access.require_document(Action.TRASH_PURGE, doc)
    if doc.trashed_at is None:
        raise Conflict(N_("Only items in the trash can be removed for good."), code="not_in_trash")
    audit.record(db, "document.purged", actor_id=access.require_user().id,
                 object_type="document", object_id=doc.id, group_id=doc.group_id)
    purge(db, doc)


def purge(db: Session, doc: Document) -> None:
    for version in versions(db, doc):
        drop_version(db, version)
    db.delete(doc)


def trashed_documents(db: Session, access: Access, group: Group) -> list[Document]:
    rows = db.scalars(select(Document).where(Document.group_id == group.id,
                                             Document.trashed_at.is_not(None))
                      .order_by(Document.trashed_at.desc()))
    return [d for d in rows if access.can_document(Action.TRASH_VIEW, d)]

