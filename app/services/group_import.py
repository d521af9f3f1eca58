"""A group archive (docs/export-format.md) imported as a new group, or refused whole.

The archive is untrusted input. Before anything is written it is checked as a whole: a real
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

import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
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
from app.services.archive_format import FORMAT, FORMAT_VERSION, MANIFEST, is_safe_member_name
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


class _Lenient(BaseModel):
    # Newer exports of the same format version may add fields: ignored, not refused.
    model_config = ConfigDict(extra="ignore")


class _Person(_Lenient):
    email: str
    role: str


class _Folder(_Lenient):
    id: str
    parent_id: str | None = None
    name: str
    access: AccessLevel = AccessLevel.OPEN
    members: list[_Person] = []
    created_at: AwareDatetime | None = None


class _Version(_Lenient):
    number: int
    path: str
    filename: str
    mime: str = "application/octet-stream"
    size: int
    sha256: str
    label: str | None = None
    restored_from: int | None = None
    created_at: AwareDatetime | None = None
    created_by: str | None = None


class _File(_Lenient):
    path: str
    size: int
    sha256: str


class _Note(_Lenient):
    state: _File


class _Comment(_Lenient):
    id: str
    parent_id: str | None = None
    author: str | None = None
    body: str = ""
    deleted: bool = False
    created_at: AwareDatetime | None = None
    edited_at: AwareDatetime | None = None
    resolved_at: AwareDatetime | None = None
    resolved_by: str | None = None
    anchor: dict[str, Any] | None = None
    detached: bool = False


class _Document(_Lenient):
    id: str
    folder_id: str
    kind: str
    title: str
    current_version: int = 0
    created_at: AwareDatetime | None = None
    created_by: str | None = None
    updated_at: AwareDatetime | None = None
    versions: list[_Version] = []
    comments: list[_Comment] = []
    note: _Note | None = None


class _Group(_Lenient):
    name: str
    description: str = ""
    access: AccessLevel = AccessLevel.CLOSED


class Manifest(_Lenient):
    format: str
    format_version: int
    group: _Group
    members: list[_Person] = []
    invitations: list[_Person] = []
    folders: list[_Folder]
    documents: list[_Document] = []


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


def _refuse(message: str, code: str) -> Unprocessable:
    return Unprocessable(message, code=code, field="archive")


def open_archive(source: IO[bytes], settings: Settings) -> tuple[zipfile.ZipFile, Manifest]:
    """The archive checked as a whole (names, sizes, manifest, references); nothing written."""
    archive = _checked_zip(source, settings)
    return archive, _manifest(archive, settings)


def _checked_zip(source: IO[bytes], settings: Settings) -> zipfile.ZipFile:
    """A zip whose every name is safe and whose sizes are within the settings."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _refuse(N_("This is not a zip archive."), "not_a_zip") from None
    entries = archive.infolist()
    if len(entries) > settings.import_max_entries:
        raise _refuse(f"The archive holds more than {settings.import_max_entries} files.",
                      "archive_too_large")
    total = 0
    for info in entries:
        if not is_safe_member_name(info.filename):
            raise _refuse(f"The archive holds an unsafe file name: {info.filename!r}.",
                          "unsafe_path")
        total += info.file_size
        if info.file_size > _BOMB_MIN_BYTES and \
                info.file_size > settings.import_max_ratio * max(info.compress_size, 1):
            raise _refuse(f"{info.filename} unpacks to far more than it holds (a zip bomb?).",
                          "zip_bomb")
    if total > settings.import_max_bytes:
        raise _refuse(f"The archive unpacks to more than {settings.import_max_bytes} bytes.",
                      "archive_too_large")
    return archive


def _manifest(archive: zipfile.ZipFile, settings: Settings) -> Manifest:
    try:
        info = archive.getinfo(MANIFEST)
    except KeyError:
        raise _refuse(N_("The archive has no manifest.json: it is not a Plein group export."),
                      "missing_manifest") from None
    if info.file_size > settings.import_max_manifest_bytes:
        raise _refuse(N_("The archive's manifest.json is too large."), "archive_too_large")
    try:
        raw = json.loads(_read_all(archive, MANIFEST, info.file_size))
    except (ValueError, zipfile.BadZipFile) as exc:
        raise _refuse(f"manifest.json is not valid JSON: {exc}", "invalid_manifest") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise _refuse(N_("The archive is not a Plein group export (manifest format)."),
                      "unsupported_format")
    if raw.get("format_version") != FORMAT_VERSION:
        raise _refuse(f"Export format version {raw.get('format_version')!r} is not supported "
                      f"(this Plein reads version {FORMAT_VERSION}).", "unsupported_version")
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise _refuse(f"manifest.json: {where}: {first.get('msg')}", "invalid_manifest") from None
    _check_references(manifest, {i.filename for i in archive.infolist()})
    return manifest


# What operating systems leave in folders; never anyone's document.
_JUNK = frozenset({".ds_store", "thumbs.db", "desktop.ini"})


def plain_tree(source: IO[bytes], settings: Settings, name: str
               ) -> tuple[zipfile.ZipFile, Manifest]:
    """A zip of ordinary folders and files (a share drive's contents) as a manifest: each
    directory a folder, each file a document with one version (its hash is computed, there is
    none to check)."""
    archive = _checked_zip(source, settings)
    folders: dict[str, _Folder] = {"": _Folder(id="/", parent_id=None, name=name)}
    documents: list[_Document] = []

    def folder_of(path: str) -> str:
        if path not in folders:
            parent, _, leaf = path.rpartition("/")
            folders[path] = _Folder(id="/" + path, parent_id=folder_of(parent), name=leaf)
        return folders[path].id

    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        parts = info.filename.rstrip("/").split("/")
        if parts[0] == "__MACOSX" or parts[-1].lower() in _JUNK:
            continue
        if info.is_dir():
            folder_of("/".join(parts))
            continue
        folder_id = folder_of("/".join(parts[:-1]))
        documents.append(_Document(
            id=info.filename, folder_id=folder_id, kind="file", title=parts[-1],
            current_version=1, versions=[_Version(number=1, path=info.filename,
                                                  filename=parts[-1], size=info.file_size,
                                                  sha256="")]))
    manifest = Manifest(format=FORMAT, format_version=FORMAT_VERSION,
                        group=_Group(name=name), folders=list(folders.values()),
                        documents=documents)
    return archive, manifest


def _check_references(manifest: Manifest, names: set[str]) -> None:
    folder_ids = {f.id for f in manifest.folders}
    if len(folder_ids) != len(manifest.folders):
        raise _refuse(N_("manifest.json lists a folder twice."), "invalid_manifest")
    if not any(f.parent_id is None for f in manifest.folders):
        raise _refuse(N_("manifest.json has no top folder."), "invalid_manifest")
    for folder in manifest.folders:
        if folder.parent_id is not None and folder.parent_id not in folder_ids:
            raise _refuse(f"Folder {folder.id} names a parent that is not in the archive.",
                          "invalid_manifest")
    for doc in manifest.documents:
        if doc.folder_id not in folder_ids:
            raise _refuse(f"Document {doc.id} is in a folder that is not in the archive.",
                          "invalid_manifest")
        if doc.kind not in ("file", "note"):
            raise _refuse(f"Document {doc.id} is of unknown kind {doc.kind!r}.",
                          "invalid_manifest")
        if doc.kind == "file" and not doc.versions:
            raise _refuse(f"File {doc.id} has no versions.", "invalid_manifest")
        if doc.kind == "note" and doc.note is None:
            raise _refuse(f"Note {doc.id} has no state.", "invalid_manifest")
        numbers = [v.number for v in doc.versions]
        if len(set(numbers)) != len(numbers) or any(n < 1 for n in numbers):
            raise _refuse(f"Document {doc.id} has duplicate or invalid version numbers.",
                          "invalid_manifest")
        paths = [v.path for v in doc.versions] + ([doc.note.state.path] if doc.note else [])
        for path in paths:
            if path not in names:
                raise _refuse(f"{path} is listed in manifest.json but missing from the "
                              "archive.", "missing_file")
        comment_ids = {c.id for c in doc.comments}
        for comment in doc.comments:
            if comment.parent_id is not None and comment.parent_id not in comment_ids:
                raise _refuse(f"A comment on {doc.id} replies to one that is not there.",
                              "invalid_manifest")


def _read_all(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """An entry's bytes, never more than it declared (a lying header cannot make us read on)."""
    out = bytearray()
    for chunk in _chunks(archive, name, limit):
        out += chunk
    return bytes(out)


def _chunks(archive: zipfile.ZipFile, name: str, limit: int) -> Iterator[bytes]:
    size = 0
    with archive.open(name) as member:
        while chunk := member.read(_READ_BYTES):
            size += len(chunk)
            if size > limit:
                raise _refuse(f"{name} unpacks to more than it declared.", "zip_bomb")
            yield chunk


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
            for chunk in _chunks(self.archive, path, size):
                if len(head) < SNIFF_BYTES:
                    head += chunk[:SNIFF_BYTES - len(head)]
                writer.write(chunk)
            info = writer.commit()
        self.result.blob_ids.append(info.blob_id)
        if (sha256 and info.sha256 != key[0]) or info.size != size:
            raise _refuse(f"{path} does not match its SHA-256 or size in manifest.json: the "
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
        raise _refuse(N_("None of the archive's owners has an account here: name the new "
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
            raise _refuse(N_("manifest.json: the folders form a cycle."), "invalid_manifest")
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


def _import_document(db: Session, copier: _Copier, archive: zipfile.ZipFile, entry: _Document,
                     group: Group, folder_id: str, result: ImportResult,
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
        state = _read_all(archive, entry.note.state.path, entry.note.state.size)
        if state_hash(state) != entry.note.state.sha256.lower() or \
                len(state) != entry.note.state.size:
            raise _refuse(f"{entry.note.state.path} does not match its SHA-256 or size in "
                          "manifest.json.", "hash_mismatch")
        # Durable before the row commits, as for a new note: a failed commit leaves an
        # orphan store (removed by discard), never a visible note without content.
        result.note_ids.append(doc.id)
        try:
            write_note(doc.id, state)
        except Unprocessable:
            raise
        except Exception as exc:
            raise _refuse(f"{entry.note.state.path} is not a valid note state: {exc}",
                          "invalid_note") from None
    db.add(doc)
    db.flush()
    for version in added:
        db.add(version)
    result.documents += 1
    result.versions += len(added)
    _import_comments(db, entry, doc, result, uid)
    return doc


def _import_comments(db: Session, entry: _Document, doc: Document, result: ImportResult,
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
