"""Folders: a tree per group, each with its own access setting and, when closed, a member list."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, new_id, utcnow
from app.models.roles import AccessLevel, FolderMemberRole
from app.models.sealed import SealedText


class Folder(Base):
    __tablename__ = "folders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE"), nullable=True, index=True
    )
    name: Mapped[str] = mapped_column(SealedText("folders.name"))
    # The folder's own setting. "open" adds no restriction of its own (it inherits the parent's);
    # "closed" narrows to the folder's member list. Effective access is the intersection along
    # the path from the root, so a folder can never be wider than its parent.
    access: Mapped[str] = mapped_column(String(10), default=AccessLevel.OPEN)
    created_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    trashed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    trashed_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )


class FolderMember(Base):
    __tablename__ = "folder_members"
    __table_args__ = (UniqueConstraint("folder_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    folder_id: Mapped[str] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10), default=FolderMemberRole.VIEWER)
