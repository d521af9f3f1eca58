"""Reading a group archive (docs/export-format.md) without trusting it: the manifest's schema,
the zip's names and sizes, and a plain folder tree read as if it had a manifest. Nothing here
writes anything; :mod:`app.services.group_import` does, once this said yes."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from typing import IO, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from app.errors import Unprocessable
from app.i18n import N_
from app.models import AccessLevel
from app.services.archive_format import FORMAT, FORMAT_VERSION, MANIFEST, is_safe_member_name
from app.settings import Settings

_BOMB_MIN_BYTES = 1 << 20
_READ_BYTES = 1 << 20


class _Lenient(BaseModel):
    # Newer exports of the same format version may add fields: ignored, not refused.
    model_config = ConfigDict(extra="ignore")


class ArchivedPerson(_Lenient):
    email: str
    role: str


class ArchivedFolder(_Lenient):
    id: str
    parent_id: str | None = None
    name: str
    access: AccessLevel = AccessLevel.OPEN
    members: list[ArchivedPerson] = []
    created_at: AwareDatetime | None = None


class ArchivedVersion(_Lenient):
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


class ArchivedFile(_Lenient):
    path: str
    size: int
    sha256: str


class ArchivedNote(_Lenient):
    state: ArchivedFile


class ArchivedComment(_Lenient):
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


class ArchivedDocument(_Lenient):
    id: str
    folder_id: str
    kind: str
    title: str
    current_version: int = 0
    created_at: AwareDatetime | None = None
    created_by: str | None = None
    updated_at: AwareDatetime | None = None
    versions: list[ArchivedVersion] = []
    comments: list[ArchivedComment] = []
    note: ArchivedNote | None = None


class ArchivedGroup(_Lenient):
    name: str
    description: str = ""
    access: AccessLevel = AccessLevel.CLOSED


class Manifest(_Lenient):
    format: str
    format_version: int
    group: ArchivedGroup
    members: list[ArchivedPerson] = []
    invitations: list[ArchivedPerson] = []
    folders: list[ArchivedFolder]
    documents: list[ArchivedDocument] = []


def refuse(message: str, code: str) -> Unprocessable:
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
        raise refuse(N_("This is not a zip archive."), "not_a_zip") from None
    entries = archive.infolist()
    if len(entries) > settings.import_max_entries:
        raise refuse(f"The archive holds more than {settings.import_max_entries} files.",
                      "archive_too_large")
    total = 0
    for info in entries:
        if not is_safe_member_name(info.filename):
            raise refuse(f"The archive holds an unsafe file name: {info.filename!r}.",
                          "unsafe_path")
        total += info.file_size
        if info.file_size > _BOMB_MIN_BYTES and \
                info.file_size > settings.import_max_ratio * max(info.compress_size, 1):
            raise refuse(f"{info.filename} unpacks to far more than it holds (a zip bomb?).",
                          "zip_bomb")
    if total > settings.import_max_bytes:
        raise refuse(f"The archive unpacks to more than {settings.import_max_bytes} bytes.",
                      "archive_too_large")
    return archive


def _manifest(archive: zipfile.ZipFile, settings: Settings) -> Manifest:
    try:
        info = archive.getinfo(MANIFEST)
    except KeyError:
        raise refuse(N_("The archive has no manifest.json: it is not a Plein group export."),
                      "missing_manifest") from None
    if info.file_size > settings.import_max_manifest_bytes:
        raise refuse(N_("The archive's manifest.json is too large."), "archive_too_large")
    try:
        raw = json.loads(read_all(archive, MANIFEST, info.file_size))
    except (ValueError, zipfile.BadZipFile) as exc:
        raise refuse(f"manifest.json is not valid JSON: {exc}", "invalid_manifest") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise refuse(N_("The archive is not a Plein group export (manifest format)."),
                      "unsupported_format")
    if raw.get("format_version") != FORMAT_VERSION:
        raise refuse(f"Export format version {raw.get('format_version')!r} is not supported "
                      f"(this Plein reads version {FORMAT_VERSION}).", "unsupported_version")
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise refuse(f"manifest.json: {where}: {first.get('msg')}", "invalid_manifest") from None
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
    folders: dict[str, ArchivedFolder] = {"": ArchivedFolder(id="/", parent_id=None, name=name)}
    documents: list[ArchivedDocument] = []

    def folder_of(path: str) -> str:
        if path not in folders:
            parent, _, leaf = path.rpartition("/")
            folders[path] = ArchivedFolder(id="/" + path, parent_id=folder_of(parent), name=leaf)
        return folders[path].id

    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        parts = info.filename.rstrip("/").split("/")
        if parts[0] == "__MACOSX" or parts[-1].lower() in _JUNK:
            continue
        if info.is_dir():
            folder_of("/".join(parts))
            continue
        folder_id = folder_of("/".join(parts[:-1]))
        documents.append(ArchivedDocument(
            id=info.filename, folder_id=folder_id, kind="file", title=parts[-1],
            current_version=1, versions=[ArchivedVersion(number=1, path=info.filename,
                                                  filename=parts[-1], size=info.file_size,
                                                  sha256="")]))
    manifest = Manifest(format=FORMAT, format_version=FORMAT_VERSION,
                        group=ArchivedGroup(name=name), folders=list(folders.values()),
                        documents=documents)
    return archive, manifest


def _check_references(manifest: Manifest, names: set[str]) -> None:
    folder_ids = {f.id for f in manifest.folders}
    if len(folder_ids) != len(manifest.folders):
        raise refuse(N_("manifest.json lists a folder twice."), "invalid_manifest")
    if not any(f.parent_id is None for f in manifest.folders):
        raise refuse(N_("manifest.json has no top folder."), "invalid_manifest")
    for folder in manifest.folders:
        if folder.parent_id is not None and folder.parent_id not in folder_ids:
            raise refuse(f"Folder {folder.id} names a parent that is not in the archive.",
                          "invalid_manifest")
    for doc in manifest.documents:
        if doc.folder_id not in folder_ids:
            raise refuse(f"Document {doc.id} is in a folder that is not in the archive.",
                          "invalid_manifest")
        if doc.kind not in ("file", "note"):
            raise refuse(f"Document {doc.id} is of unknown kind {doc.kind!r}.",
                          "invalid_manifest")
        if doc.kind == "file" and not doc.versions:
            raise refuse(f"File {doc.id} has no versions.", "invalid_manifest")
        if doc.kind == "note" and doc.note is None:
            raise refuse(f"Note {doc.id} has no state.", "invalid_manifest")
        numbers = [v.number for v in doc.versions]
        if len(set(numbers)) != len(numbers) or any(n < 1 for n in numbers):
            raise refuse(f"Document {doc.id} has duplicate or invalid version numbers.",
                          "invalid_manifest")
        paths = [v.path for v in doc.versions] + ([doc.note.state.path] if doc.note else [])
        for path in paths:
            if path not in names:
                raise refuse(f"{path} is listed in manifest.json but missing from the "
                              "archive.", "missing_file")
        comment_ids = {c.id for c in doc.comments}
        for comment in doc.comments:
            if comment.parent_id is not None and comment.parent_id not in comment_ids:
                raise refuse(f"A comment on {doc.id} replies to one that is not there.",
                              "invalid_manifest")


def read_all(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """An entry's bytes, never more than it declared (a lying header cannot make us read on)."""
    out = bytearray()
    for chunk in read_chunks(archive, name, limit):
        out += chunk
    return bytes(out)


def read_chunks(archive: zipfile.ZipFile, name: str, limit: int) -> Iterator[bytes]:
    size = 0
    with archive.open(name) as member:
        while chunk := member.read(_READ_BYTES):
            size += len(chunk)
            if size > limit:
                raise refuse(f"{name} unpacks to more than it declared.", "zip_bomb")
            yield chunk
