"""Folders, their children and access lists."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from app.access import Access, FolderRole
from app.models import Document, Folder, FolderMember, FolderMemberRole, User
from app.schemas.accounts import PersonOut
from app.schemas.common import AccessName, FolderName, FolderRoleName, Id, Input


class FolderCreate(Input):
    name: FolderName
    access: AccessName | None = None


class FolderUpdate(Input):
    name: FolderName | None = None
    parent_id: Id | None = None


class FolderGrantIn(Input):
    user_id: Id
    role: FolderRoleName


class FolderAccessIn(Input):
    access: AccessName
    members: list[FolderGrantIn] | None = None


# ``my_role`` of a folder: the member-list words, and "manager" for group owners and admins.
_ROLE_NAME = {FolderRole.VIEW: str(FolderMemberRole.VIEWER),
              FolderRole.EDIT: str(FolderMemberRole.EDITOR), FolderRole.MANAGE: "manager"}


class FolderSummary(BaseModel):
    id: str
    kind: Literal["folder"] = "folder"
    name: str
    group_id: str
    parent_id: str | None
    access: str  # effective: closed when this folder or one above it is closed
    own_access: str  # this folder's own setting
    created_at: datetime

    @classmethod
    def of(cls, folder: Folder, access: Access) -> FolderSummary:
        return cls(id=folder.id, name=folder.name, group_id=folder.group_id,
                   parent_id=folder.parent_id, access=access.effective_access(folder),
                   own_access=folder.access, created_at=folder.created_at)


class FolderMemberOut(BaseModel):
    user: PersonOut
    user_id: str
    role: str

    @classmethod
    def of(cls, member: FolderMember, user: User) -> FolderMemberOut:
        return cls(user=PersonOut.of(user), user_id=user.id, role=member.role)


class DocumentSummary(BaseModel):
    """A document as a folder listing shows it (the current version's facts, no join)."""

    id: str
    kind: str
    title: str
    version: int
    mime: str
    size: int
    updated_at: datetime

    @classmethod
    def of(cls, doc: Document) -> DocumentSummary:
        return cls(id=doc.id, kind=doc.kind, title=doc.title, version=doc.current_version,
                   mime=doc.mime, size=doc.size, updated_at=doc.updated_at)


class FolderOut(FolderSummary):
    my_role: str | None
    breadcrumbs: list[FolderSummary]
    children: list[FolderSummary]
    documents: list[DocumentSummary] = []
    members: list[FolderMemberOut] | None = None

    @classmethod
    def build(cls, folder: Folder, access: Access, *, trail: list[Folder],
              children: list[Folder], members: list[FolderMemberOut] | None,
              documents: list[Document] | None = None) -> FolderOut:
        role = access.folder_role(folder)
        base = FolderSummary.of(folder, access)
        return cls(**base.model_dump(), my_role=_ROLE_NAME[role] if role else None,
                   breadcrumbs=[FolderSummary.of(f, access) for f in trail],
                   children=[FolderSummary.of(f, access) for f in children], members=members,
                   documents=[DocumentSummary.of(d) for d in documents or []])


class TrashItemOut(BaseModel):
    """A folder or document in the trash; restore with POST .../restore on its own path."""

    id: str
    kind: Literal["folder", "file", "note"] = "folder"
    name: str
    folder_id: str | None = None
    trashed_at: datetime | None
    trashed_by: str | None

    @classmethod
    def of(cls, folder: Folder) -> TrashItemOut:
        return cls(id=folder.id, name=folder.name, folder_id=folder.parent_id,
                   trashed_at=folder.trashed_at, trashed_by=folder.trashed_by)

    @classmethod
    def of_document(cls, doc: Document) -> TrashItemOut:
        return cls(id=doc.id, kind=doc.kind, name=doc.title,
                   folder_id=doc.folder_id, trashed_at=doc.trashed_at, trashed_by=doc.trashed_by)
