"""A group archive (docs/export-format.md) imported as a new group, or refused whole.

The archive is untrusted input. Before anything is written it is checked as a whole
(:mod:`app.services.archive_reader`): a real
zip, no entry name that could climb out (``..``, absolute, drive letters, backslashes), no
more entries or unpacked bytes than the settings allow, no entry that unpacks far beyond its
packed size (a zip bomb), a manifest of a known format version whose every reference is
present. Then each version is copied into a new encrypted blob while its SHA-256 is checked
against the manifest, the rows are added in the caller's one transaction, and notes get their
Yjs state (so they open in the editor and keep co-editing). On any error every blob and note
store written so far is removed, and the transaction is rolled back by the caller: nothing
half-imported is left behind.

People are matched by e-mail. A member without an account here becomes an invitation; a
closed folder's access list keeps the people who exist (the others are reported).
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Unprocessable
from app.i18n import N_
from app.models import (
    AccessLevel,
    Comment,
    Document,
    DocumentVersion,
    Folder,
    FolderMember,
    FolderMemberRole,
    Group,
    GroupRole,
    Invitation,
    Membership,
    MembershipState,
    User,
    new_id,
    utcnow,
)
from app.search_outbox import enqueue
from app.services.accounts import normalize_email
from app.services.archive_reader import (
    ArchivedDocument,
    Manifest,
    open_archive,
    plain_tree,
    read_all,
    read_chunks,
    refuse,
)
from app.services.blobs import record_blob
from app.services.notes import NOTE_MIME, state_hash
from app.settings import Settings
from indexer import sniff_mime
from indexer.extract import SNIFF_BYTES
from storage import BlobInfo, BlobStore

NoteWriter = Callable[[str, bytes], None]
NoteRemover = Callable[[str], None]
_BOMB_MIN_BYTES = 1 << 20
_READ_BYTES = 1 << 20


@dataclass
class ImportResult:
    group_id: str
    folders: int = 0
    documents: int = 0
    versions: int = 0
    comments: int = 0
    members: int = 0
    invitations: list[str] = field(default_factory=list)
    unmatched_folder_grants: list[str] = field(default_factory=list)
    blob_ids: list[str] = field(default_factory=list)
    note_ids: list[str] = field(default_factory=list)

    def discard(self, store: BlobStore, remove_note: NoteRemover) -> None:
        """Remove what was written outside the transaction (after a failed commit)."""
        for blob_id in self.blob_ids:
            store.delete(blob_id)
        for note_id in self.note_ids:
            remove_note(note_id)


class _Copier:
    """Versions into new encrypted blobs, checked against the manifest's hash and size; the
    same bytes (a restored version) become one blob, as they were."""

    def __init__(self, archive: zipfile.ZipFile, store: BlobStore, result: ImportResult
                 ) -> None:
        self.archive = archive
        self.store = store
        self.result = result
        self.by_hash: dict[tuple[str, int], tuple[BlobInfo, bytes]] = {}

    def copy(self, path: str, size: int, sha256: str) -> tuple[BlobInfo, bytes, bool]:
        """(blob, first bytes, whether it is new). An empty ``sha256`` (a plain folder tree
        has no manifest) checks only the size."""
        key = (sha256.lower(), size)
        if sha256 and key in self.by_hash:
            info, head = self.by_hash[key]
            return info, head, False
        head = b""
        with self.store.open_writer() as writer:
            for chunk in read_chunks(self.archive, path, size):
                if len(head) < SNIFF_BYTES:
                    head += chunk[:SNIFF_BYTES - len(head)]
                writer.write(chunk)
            info = writer.commit()
        self.result.blob_ids.append(info.blob_id)
        if (sha256 and info.sha256 != key[0]) or info.size != size:
            raise refuse(f"{path} does not match its SHA-256 or size in manifest.json: the "
                          "archive is damaged or was changed.", "hash_mismatch")
        self.by_hash[key] = (info, head)
        return info, head, True


def _people(db: Session, emails: set[str]) -> dict[str, User]:
    wanted = {normalize_email(e) for e in emails if e}
    if not wanted:
        return {}
    return {u.email: u for u in db.scalars(select(User).where(User.email.in_(wanted)))}


def import_archive(db: Session, store: BlobStore, settings: Settings, source: IO[bytes], *,
                   owner: User | None, write_note: NoteWriter, remove_note: NoteRemover,
                   plain_name: str | None = None) -> ImportResult:
    """A new group equal to the archive's, in ``db``'s transaction (the caller commits; if
    that fails it calls :meth:`ImportResult.discard`). ``owner`` becomes its owner; without
    one, the archive's owners who have an account here stay owners (at least one must).
    ``plain_name``: the archive is a plain folder tree, imported as a group of that name."""
    archive, manifest = plain_tree(source, settings, plain_name) if plain_name \
        else open_archive(source, settings)
    result = ImportResult(group_id=new_id())
    try:
        _import(db, store, archive, manifest, result, owner=owner, write_note=write_note)
    except BaseException:
        # The caller's transaction rolls back with the exception; what lives outside it goes.
        result.discard(store, remove_note)
        raise
    finally:
        archive.close()
    return result


def _email_of(people: dict[str, User], email: str | None) -> str | None:
    user = people.get(normalize_email(email)) if email else None
    return user.id if user is not None else None


def _import(db: Session, store: BlobStore, archive: zipfile.ZipFile, manifest: Manifest,
            result: ImportResult, *, owner: User | None, write_note: NoteWriter) -> None:
    emails = {m.email for m in manifest.members} | {i.email for i in manifest.invitations}
    for f in manifest.folders:
        emails |= {m.email for m in f.members}
    for d in manifest.documents:
        emails |= {v.created_by for v in d.versions if v.created_by}
        emails |= {c.author for c in d.comments if c.author}
        emails |= {c.resolved_by for c in d.comments if c.resolved_by}
        if d.created_by:
            emails.add(d.created_by)
    people = _people(db, emails)

    def uid(email: str | None) -> str | None:
        return _email_of(people, email)

    roles: dict[str, str] = {}
    for member in manifest.members:
        user_id = uid(member.email)
        role = member.role if member.role in set(GroupRole) else GroupRole.MEMBER
        if user_id is None:
            result.invitations.append(normalize_email(member.email))
        else:
            roles[user_id] = role
    if owner is not None:
        roles[owner.id] = GroupRole.OWNER
    if GroupRole.OWNER not in roles.values():
        raise refuse(N_("None of the archive's owners has an account here: name the new "
                         "owner (plein import --owner EMAIL)."), "no_owner")
    creator = owner.id if owner is not None else next(
        u for u, r in roles.items() if r == GroupRole.OWNER)

    group = Group(id=result.group_id, name=manifest.group.name,
                  description=manifest.group.description, access=manifest.group.access,
                  created_by=creator)
    db.add(group)
    db.flush()
    for user_id, role in roles.items():
        db.add(Membership(group_id=group.id, user_id=user_id, role=role,
                          state=MembershipState.MEMBER))
    invited = {normalize_email(i.email): i.role for i in manifest.invitations}
    for email in result.invitations:
        invited.setdefault(email, next(m.role for m in manifest.members
                                       if normalize_email(m.email) == email))
    result.invitations = sorted(invited)
    for email, role in sorted(invited.items()):
        if email in people and people[email].id in roles:
            continue
        db.add(Invitation(group_id=group.id, email=email,
                          role=role if role in set(GroupRole) else GroupRole.MEMBER,
                          invited_by=creator))
    result.members = len(roles)

    folder_ids = _import_folders(db, manifest, group, result, uid)
    copier = _Copier(archive, store, result)
    new_doc_ids: set[str] = set()
    for entry in manifest.documents:
        doc = _import_document(db, copier, archive, entry, group, folder_ids[entry.folder_id],
                               result, uid, write_note)
        new_doc_ids.add(doc.id)
    enqueue(db, new_doc_ids)
    db.flush()


def _import_folders(db: Session, manifest: Manifest, group: Group, result: ImportResult,
                    uid: Callable[[str | None], str | None]) -> dict[str, str]:
    by_id = {f.id: f for f in manifest.folders}
    tops = [f for f in manifest.folders if f.parent_id is None]
    # The archive's root becomes the new group's root; a member's export may have several
    # tops (never, as access narrows downwards, but an archive is input): they hang below it.
    root_entry = tops[0] if len(tops) == 1 else None
    root = Folder(group_id=group.id, parent_id=None, name=group.name,
                  access=root_entry.access if root_entry else AccessLevel.OPEN,
                  created_by=group.created_by)
    db.add(root)
    db.flush()
    group.root_folder_id = root.id
    mapped: dict[str, str] = {root_entry.id: root.id} if root_entry else {}
    pending = [f for f in manifest.folders if f.id not in mapped]
    while pending:
        ready = [f for f in pending if f.parent_id is None or f.parent_id in mapped]
        if not ready:
            raise refuse(N_("manifest.json: the folders form a cycle."), "invalid_manifest")
        for entry in ready:
            folder = Folder(group_id=group.id,
                            parent_id=mapped[entry.parent_id] if entry.parent_id else root.id,
                            name=entry.name, access=entry.access, created_by=group.created_by)
            db.add(folder)
            db.flush()
            mapped[entry.id] = folder.id
        pending = [f for f in pending if f.id not in mapped]
    for entry in manifest.folders:
        for person in entry.members:
            user_id = uid(person.email)
            if user_id is None:
                result.unmatched_folder_grants.append(
                    f"{by_id[entry.id].name}: {normalize_email(person.email)}")
                continue
            role = person.role if person.role in set(FolderMemberRole) \
                else FolderMemberRole.VIEWER
            db.add(FolderMember(folder_id=mapped[entry.id], user_id=user_id, role=role))
    result.folders = len(mapped)
    return mapped


def _import_document(db: Session, copier: _Copier, archive: zipfile.ZipFile,
                     entry: ArchivedDocument, group: Group, folder_id: str, result: ImportResult,
                     uid: Callable[[str | None], str | None], write_note: NoteWriter
                     ) -> Document:
    doc = Document(id=new_id(), group_id=group.id, folder_id=folder_id, kind=entry.kind,
                   title=entry.title, current_version=0,
                   mime=NOTE_MIME if entry.kind == "note" else "application/octet-stream",
                   created_by=uid(entry.created_by))
    if entry.created_at:
        doc.created_at = entry.created_at
    if entry.updated_at:
        doc.updated_at = entry.updated_at
    versions = sorted(entry.versions, key=lambda v: v.number)
    added: list[DocumentVersion] = []
    for v in versions:
        info, head, new = copier.copy(v.path, v.size, v.sha256)
        if new:
            record_blob(db, info, group.id)
        if entry.kind == "note":
            mime = NOTE_MIME
        else:
            # The type comes from the bytes, as for an upload: an archive cannot make a
            # file show inline in the browser by claiming to be an image.
            mime = sniff_mime(head) or "application/octet-stream" if head else \
                "application/octet-stream"
        version = DocumentVersion(document_id=doc.id, number=v.number, blob_id=info.blob_id,
                                  filename=v.filename, mime=mime, size=info.size,
                                  sha256=info.sha256, label=v.label,
                                  restored_from=v.restored_from, created_by=uid(v.created_by))
        if v.created_at:
            version.created_at = v.created_at
        added.append(version)
    if added:
        current = next((x for x in added if x.number == entry.current_version), added[-1])
        doc.current_version = current.number
        doc.size, doc.sha256 = current.size, current.sha256
        if entry.kind == "file":
            doc.mime = current.mime
    if entry.kind == "note":
        assert entry.note is not None  # noqa: S101 - checked by _check_references
        state = read_all(archive, entry.note.state.path, entry.note.state.size)
        if state_hash(state) != entry.note.state.sha256.lower() or \
                len(state) != entry.note.state.size:
            raise refuse(f"{entry.note.state.path} does not match its SHA-256 or size in "
                          "manifest.json.", "hash_mismatch")
        # Durable before the row commits, as for a new note: a failed commit leaves an
        # orphan store (removed by discard), never a visible note without content.
        result.note_ids.append(doc.id)
        try:
            write_note(doc.id, state)
        except Unprocessable:
            raise
        except Exception as exc:
            raise refuse(f"{entry.note.state.path} is not a valid note state: {exc}",
                          "invalid_note") from None
    db.add(doc)
    db.flush()
    for version in added:
        db.add(version)
    result.documents += 1
    result.versions += len(added)
    _import_comments(db, entry, doc, result, uid)
    return doc


def _import_comments(db: Session, entry: ArchivedDocument, doc: Document, result: ImportResult,
                     uid: Callable[[str | None], str | None]) -> None:
    ids: dict[str, str] = {}
    # Roots before replies, whatever order the archive lists them in.
    for comment in sorted(entry.comments, key=lambda c: c.parent_id is not None):
        row = Comment(id=new_id(), document_id=doc.id, group_id=doc.group_id,
                      parent_id=ids.get(comment.parent_id) if comment.parent_id else None,
                      author_id=uid(comment.author), body="" if comment.deleted else comment.body,
                      edited_at=comment.edited_at, resolved_at=comment.resolved_at,
                      resolved_by=uid(comment.resolved_by), anchor=comment.anchor,
                      detached=comment.detached)
        if comment.created_at:
            row.created_at = comment.created_at
        if comment.deleted:
            row.deleted_at = comment.edited_at or comment.created_at or utcnow()
        ids[comment.id] = row.id
        db.add(row)
        result.comments += 1
    db.flush()
