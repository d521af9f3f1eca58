"""Documents and their versions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, StringConstraints

from app.models import Document, DocumentVersion
from app.schemas.common import FolderName, Id, Input, _clean_line

Label = Annotated[str, StringConstraints(max_length=200), AfterValidator(_clean_line)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=300),
                  AfterValidator(_clean_line)]


class DocumentUpdate(Input):
    title: Title | None = None
    folder_id: Id | None = None


class VersionLabel(Input):
    label: Label | None


class NoteSnapshotIn(Input):
    label: Label | None = None


class NoteCreate(Input):
    title: Title
    text: Annotated[str, StringConstraints(max_length=1_000_000)] | None = None
    format: Literal["markdown", "text"] = "markdown"


class DiffOut(BaseModel):
    from_version: int
    to_version: int
    diff: list[str]


class DocumentOut(BaseModel):
    id: str
    kind: str
    title: str
    group_id: str
    folder_id: str
    version: int
    mime: str
    size: int
    sha256: str
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    trashed_at: datetime | None = None

    @classmethod
    def of(cls, doc: Document) -> DocumentOut:
        return cls(id=doc.id, kind=doc.kind, title=doc.title, group_id=doc.group_id,
                   folder_id=doc.folder_id, version=doc.current_version, mime=doc.mime,
                   size=doc.size, sha256=doc.sha256, created_by=doc.created_by,
                   created_at=doc.created_at, updated_at=doc.updated_at,
                   trashed_at=doc.trashed_at)


class VersionOut(BaseModel):
    number: int
    size: int
    sha256: str
    mime: str
    filename: str
    created_at: datetime
    created_by: str | None
    label: str | None
    restored_from: int | None
    current: bool

    @classmethod
    def of(cls, version: DocumentVersion, doc: Document) -> VersionOut:
        return cls(number=version.number, size=version.size, sha256=version.sha256,
                   mime=version.mime, filename=version.filename, created_at=version.created_at,
                   created_by=version.created_by, label=version.label,
                   restored_from=version.restored_from,
                   current=version.number == doc.current_version)


class NewVersionOut(VersionOut):
    """A new version, or (``unchanged``: true, status 200) the current one when the upload
    equals it byte for byte."""

    unchanged: bool = False


__all__ = ["DocumentOut", "DocumentUpdate", "FolderName", "NewVersionOut", "VersionLabel",
           "VersionOut"]
