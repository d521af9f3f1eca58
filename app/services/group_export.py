"""A group exported whole, as a zip of open formats (docs/export-format.md).

Two steps, so the database transaction is short and the download any size:

1. :func:`plan_export` (in a transaction) asks :mod:`app.access` which folders the caller may
   read -- everything for owners and admins, exactly their share for a member -- and gathers
   the manifest and the list of blobs and notes to write. Only ids and wrapped keys are kept,
   never content.
2. :func:`stream_archive` (no transaction) writes the zip as it goes: each file version is
   decrypted chunk by chunk straight into the zip stream (no plaintext temp file, memory of a
   chunk), each note is rendered once (Markdown, HTML, .odt and its Yjs state), and the
   manifest comes last, with the notes' state hashes as they were read.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from zipstream import ZIP_DEFLATED, ZIP_STORED, ZipStream

from app.access import Access
from app.errors import NotFound
from app.i18n import N_
from app.models import (
    GROUP_MANAGERS,
    Activity,
    Blob,
    Comment,
    Document,
    DocumentVersion,
    Folder,
    FolderMember,
    Group,
    Invitation,
    Membership,
    MembershipState,
    User,
    utcnow,
)
from app.services.archive_format import CONTENT, FORMAT, FORMAT_VERSION, MANIFEST, NameBook
from app.services.notes import render, state_hash
from app.services.odt import note_to_odt
from storage import BlobStore, WrappedKey

NoteState = Callable[[str], bytes]


@dataclass(frozen=True)
class BlobEntry:
    path: str
    blob_id: str
    wrapped_key: bytes


@dataclass(frozen=True)
class NoteEntry:
    document_id: str
    title: str
    directory: str  # where its renderings go, inside the archive
    manifest_entry: dict[str, Any]  # the document's manifest entry: "note" is filled in


@dataclass
class ExportPlan:
    group_id: str
    scope: str  # "group" (owners, admins, operators) or "member"
    manifest: dict[str, Any]
    blobs: list[BlobEntry] = field(default_factory=list)
    notes: list[NoteEntry] = field(default_factory=list)

    @property
    def document_count(self) -> int:
        return len(self.manifest["documents"])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def plan_export(db: Session, access: Access, group: Group, *, whole: bool = False,
                exported_by: str | None = None) -> ExportPlan:
    """What the caller may take out of ``group``. ``whole`` is for the operator's command
    line (``plein export``), which reads as the group's owners do; every other caller gets
    what :class:`Access` lets them read and an outsider nothing (:class:`NotFound`)."""
    if whole:
        scope = "group"
        folders = list(db.scalars(select(Folder).where(Folder.group_id == group.id,
                                                       Folder.trashed_at.is_(None))))
        readable = _live_folder_ids(folders)
        folders = [f for f in folders if f.id in readable]
    else:
        user = access.require_user()
        # Outsiders, people who only asked to join, and site admins who are not members read
        # nothing of the content: the same 404 as for a group that does not exist.
        if access.group_role(group.id) is None:
            raise NotFound(N_("No such group."))
        scope = "group" if access.group_role(group.id) in GROUP_MANAGERS else "member"
        readable = access.readable_folder_ids(group.id)
        folders = list(db.scalars(select(Folder).where(Folder.id.in_(readable))))
        exported_by = exported_by or user.email
    people = {u.id: u for u in db.scalars(select(User).join(
        Membership, Membership.user_id == User.id).where(Membership.group_id == group.id))}
    by_id = {f.id: f for f in folders}
    paths = _folder_paths(group, by_id)
    managers = scope == "group"

    def email(user_id: str | None) -> str | None:
        if user_id is None:
            return None
        user = people.get(user_id) or db.get(User, user_id)
        if user is not None:
            people[user.id] = user
        return user.email if user is not None else None

    listed: dict[str, list[dict[str, str | None]]] = {}
    if managers:
        for row in db.scalars(select(FolderMember).where(FolderMember.folder_id.in_(readable))):
            listed.setdefault(row.folder_id, []).append({"email": email(row.user_id),
                                                         "role": row.role})
    folder_entries = [{
        "id": f.id, "parent_id": f.parent_id if f.parent_id in by_id else None,
        "name": f.name, "path": paths[f.id], "access": f.access,
        **({"members": sorted(listed.get(f.id, []), key=lambda m: m["email"] or "")}
           if managers else {}),
        "created_at": _iso(f.created_at), "created_by": email(f.created_by),
    } for f in sorted(folders, key=lambda f: paths[f.id])]

    documents = list(db.scalars(select(Document).where(Document.folder_id.in_(readable),
                                                       Document.trashed_at.is_(None))))
    documents.sort(key=lambda d: (paths[d.folder_id], d.title.lower(), d.id))
    doc_ids = [d.id for d in documents]
    versions: dict[str, list[DocumentVersion]] = {}
    for version in db.scalars(select(DocumentVersion).where(
            DocumentVersion.document_id.in_(doc_ids)).order_by(DocumentVersion.number)):
        versions.setdefault(version.document_id, []).append(version)
    blobs = {b.id: b for b in db.scalars(select(Blob).where(Blob.id.in_(
        {v.blob_id for vs in versions.values() for v in vs})))}
    comments: dict[str, list[Comment]] = {}
    for comment in db.scalars(select(Comment).where(Comment.document_id.in_(doc_ids))
                              .order_by(Comment.created_at, Comment.id)):
        comments.setdefault(comment.document_id, []).append(comment)

    plan = ExportPlan(group_id=group.id, scope=scope, manifest={})
    books: dict[str, NameBook] = {}
    document_entries: list[dict[str, Any]] = []
    for doc in documents:
        folder_path = paths[doc.folder_id]
        directory = "/".join(part for part in (
            CONTENT, folder_path, books.setdefault(doc.folder_id, NameBook()).claim(doc.title))
            if part)
        version_entries = []
        for version in versions.get(doc.id, []):
            blob = blobs[version.blob_id]
            name = f"v{version.number}.yjs" if doc.kind == "note" else \
                f"v{version.number}-{NameBook().claim(version.filename)}"
            path = f"{directory}/{'versions/' if doc.kind == 'note' else ''}{name}"
            plan.blobs.append(BlobEntry(path, blob.id, blob.wrapped_key))
            version_entries.append({
                "number": version.number, "path": path, "filename": version.filename,
                "mime": version.mime, "size": version.size, "sha256": version.sha256,
                "label": version.label, "restored_from": version.restored_from,
                "created_at": _iso(version.created_at), "created_by": email(version.created_by),
            })
        entry: dict[str, Any] = {
            "id": doc.id, "folder_id": doc.folder_id, "kind": doc.kind, "title": doc.title,
            "directory": directory, "current_version": doc.current_version, "mime": doc.mime,
            "created_at": _iso(doc.created_at), "created_by": email(doc.created_by),
            "updated_at": _iso(doc.updated_at), "versions": version_entries,
            "comments": _comment_entries(comments.get(doc.id, []), email),
        }
        if doc.kind == "note":
            plan.notes.append(NoteEntry(doc.id, doc.title, directory, entry))
        document_entries.append(entry)

    members = [{"email": email(m.user_id), "name": people[m.user_id].name, "role": m.role}
               for m in db.scalars(select(Membership).where(
                   Membership.group_id == group.id, Membership.state == MembershipState.MEMBER))
               if m.user_id in people]
    members.sort(key=lambda m: (m["email"] or ""))
    invitations = [{"email": i.email, "role": i.role} for i in db.scalars(
        select(Invitation).where(Invitation.group_id == group.id))] if managers else []
    plan.manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "exported_at": _iso(utcnow()), "exported_by": exported_by, "scope": scope,
        "group": {"id": group.id, "name": group.name, "description": group.description,
                  "access": group.access, "created_at": _iso(group.created_at)},
        "members": members, "invitations": sorted(invitations, key=lambda i: i["email"]),
        "folders": folder_entries, "documents": document_entries,
        "activity": _activity_summary(db, group.id, readable, set(doc_ids)),
    }
    return plan


def _live_folder_ids(folders: Iterable[Folder]) -> set[str]:
    """Folders not in the trash and not below a trashed one (the trash is not exported)."""
    by_id = {f.id: f for f in folders}
    return {fid for fid in by_id if _reaches_root(fid, by_id)}


def _reaches_root(folder_id: str, by_id: dict[str, Folder]) -> bool:
    seen: set[str] = set()
    current: Folder | None = by_id.get(folder_id)
    while current is not None and current.id not in seen:
        seen.add(current.id)
        if current.parent_id is None:
            return True
        current = by_id.get(current.parent_id)
    return False


def _folder_paths(group: Group, by_id: dict[str, Folder]) -> dict[str, str]:
    """Each folder's path in the archive ("" for the root), unique among its siblings."""
    paths: dict[str, str] = {}
    books: dict[str | None, NameBook] = {}

    def path_of(folder: Folder) -> str:
        if folder.id in paths:
            return paths[folder.id]
        if folder.id == group.root_folder_id or folder.parent_id not in by_id:
            # The root, or the top of what a member may read (a closed folder under a parent
            # they cannot see does not happen: access narrows downwards).
            paths[folder.id] = "" if folder.id == group.root_folder_id else \
                books.setdefault(None, NameBook()).claim(folder.name)
            return paths[folder.id]
        parent = by_id[folder.parent_id]
        name = books.setdefault(parent.id, NameBook()).claim(folder.name)
        parent_path = path_of(parent)
        paths[folder.id] = f"{parent_path}/{name}" if parent_path else name
        return paths[folder.id]

    for folder in sorted(by_id.values(), key=lambda f: (f.created_at, f.id)):
        path_of(folder)
    return paths


def _comment_entries(rows: list[Comment], email: Callable[[str | None], str | None]
                     ) -> list[dict[str, Any]]:
    """Threads as written: roots and their replies; a deleted comment stays only as the empty
    root of a thread that has replies (as the discussion pages show it)."""
    has_replies = {c.parent_id for c in rows if c.parent_id and c.deleted_at is None}
    entries = []
    for c in rows:
        if c.deleted_at is not None and c.id not in has_replies:
            continue
        entries.append({
            "id": c.id, "parent_id": c.parent_id, "author": email(c.author_id),
            "body": "" if c.deleted_at is not None else c.body,
            "deleted": c.deleted_at is not None,
            "created_at": _iso(c.created_at), "edited_at": _iso(c.edited_at),
            "resolved_at": _iso(c.resolved_at), "resolved_by": email(c.resolved_by),
            "anchor": c.anchor, "detached": c.detached,
        })
    return entries


def _activity_summary(db: Session, group_id: str, folders: set[str], documents: set[str]
                      ) -> dict[str, Any]:
    """Counts by kind over what is exported (group-wide entries and the exported folders and
    documents), with the first and last date: a summary, not the feed."""
    counts: Counter[str] = Counter()
    first: datetime | None = None
    last: datetime | None = None
    for verb, folder_id, document_id, at in db.execute(
            select(Activity.verb, Activity.folder_id, Activity.document_id, Activity.created_at)
            .where(Activity.group_id == group_id)).tuples():
        if document_id is not None and document_id not in documents:
            continue
        if document_id is None and folder_id is not None and folder_id not in folders:
            continue
        counts[verb] += 1
        first = at if first is None or at < first else first
        last = at if last is None or at > last else last
    return {"total": sum(counts.values()), "by_kind": dict(sorted(counts.items())),
            "first_at": _iso(first), "last_at": _iso(last)}


class _NoteFiles:
    """One note read once and rendered to every format, handed out entry by entry (the zip
    asks for them in turn); the state is dropped after the last one."""

    def __init__(self, entry: NoteEntry, note_state: NoteState, max_depth: int) -> None:
        self.entry = entry
        self.note_state = note_state
        self.max_depth = max_depth
        self._outputs: dict[str, bytes] | None = None

    def _load(self) -> dict[str, bytes]:
        if self._outputs is None:
            state = self.note_state(self.entry.document_id)
            html = render(state, "html", max_depth=self.max_depth)
            title = self.entry.title
            page = (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>"
                    f"{_escape(title)}</title></head><body>\n<h1>{_escape(title)}</h1>\n"
                    f"{html}\n</body></html>\n")
            self._outputs = {
                "state.yjs": state,
                "md": render(state, "markdown", max_depth=self.max_depth).encode("utf-8"),
                "html": page.encode("utf-8"),
                "odt": note_to_odt(title, html, metadata={"plein-document-id":
                                                          self.entry.document_id}),
            }
            self.entry.manifest_entry["note"] = {
                "state": {"path": f"{self.entry.directory}/state.yjs", "size": len(state),
                          "sha256": state_hash(state)},
                "markdown": self.path("md"), "html": self.path("html"),
                "odt": self.path("odt"),
            }
        return self._outputs

    def path(self, kind: str) -> str:
        if kind == "state.yjs":
            return f"{self.entry.directory}/state.yjs"
        name = NameBook().claim(self.entry.title)
        return f"{self.entry.directory}/{name}.{kind}"

    def part(self, kind: str, last: bool = False) -> Iterator[bytes]:
        data = self._load()[kind]
        if last:
            self._outputs = None
        yield data


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def _blob_chunks(store: BlobStore, entry: BlobEntry) -> Iterator[bytes]:
    with store.open_reader(entry.blob_id, WrappedKey.from_bytes(entry.wrapped_key)) as reader:
        yield from reader.iter_chunks()


def _manifest_bytes(plan: ExportPlan) -> Iterator[bytes]:
    # Reached last: every note's entry has its state hash by now.
    yield json.dumps(plan.manifest, ensure_ascii=False, indent=2).encode("utf-8")


def stream_archive(plan: ExportPlan, store: BlobStore, note_state: NoteState, *,
                   max_depth: int, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
    """The zip, in pieces of about ``chunk_bytes`` (ZIP64 when it grows past 4 GiB)."""
    archive = ZipStream(compress_type=ZIP_DEFLATED, sized=False)
    for blob in plan.blobs:
        # Uploaded files are mostly compressed already (PDF, office files, images): stored
        # as they are, they cost no CPU; the text we write ourselves is deflated.
        archive.add(_blob_chunks(store, blob), blob.path,
                    compress_type=ZIP_DEFLATED if blob.path.endswith(".yjs") else ZIP_STORED)
    for note in plan.notes:
        files = _NoteFiles(note, note_state, max_depth)
        archive.add(files.part("md"), files.path("md"))
        archive.add(files.part("html"), files.path("html"))
        archive.add(files.part("odt"), files.path("odt"), compress_type=ZIP_STORED)
        archive.add(files.part("state.yjs", last=True), files.path("state.yjs"))
    archive.add(_manifest_bytes(plan), MANIFEST)
    batch: list[bytes] = []
    size = 0
    for piece in archive:
        batch.append(piece)
        size += len(piece)
        if size >= chunk_bytes:
            yield b"".join(batch)
            batch, size = [], 0
    if batch:
        yield b"".join(batch)
