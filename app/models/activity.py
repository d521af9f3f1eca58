"""Activity (what happened in a group), notifications (what a person should look at), follows
and per-person notification settings.

Rows here carry ids, never copies of content: titles and comment text are read from their own
rows when shown, and every read is filtered by :mod:`app.access` at that moment, so a person
who loses access to a document stops seeing its activity and notifications at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, new_id, utcnow
from app.models.sealed import SealedJSON

NOTIFICATION_KINDS = ("mention", "reply", "followed_activity")
EMAIL_MODES = ("off", "immediate", "daily")


class Activity(Base):
    __tablename__ = "activities"
    __table_args__ = (
        Index("ix_activities_group_id_created_at", "group_id", "created_at"),
        Index("ix_activities_document_id_actor_id", "document_id", "actor_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"))
    # Where it happened (for a document: its folder at that moment).
    folder_id: Mapped[str | None] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE"), nullable=True, index=True
    )
    document_id: Mapped[str | None] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), nullable=True
    )
    actor_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    # document.created|edited|version|commented|moved|trashed, member.joined|left|role,
    # folder.access (see app.services.activity.VERBS)
    verb: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(SealedJSON("activities.data"), default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_created_at", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # mention | reply | followed_activity (about a document); group_added | folder_trashed
    # (group-level: no document)
    kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    # The document it is about, kept here so the read-time access filter needs one join.
    document_id: Mapped[str | None] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), nullable=True, index=True
    )
    activity_id: Mapped[str | None] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), nullable=True, index=True
    )
    # The folder a folder_trashed notification is about (a purge takes the notification along).
    folder_id: Mapped[str | None] = mapped_column(
        ForeignKey("folders.id", ondelete="CASCADE"), nullable=True, index=True
    )
    comment_id: Mapped[str | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Set when an e-mail (immediate or digest) took it; also claims it, so two senders never
    # mail the same notification twice.
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)


class Follow(Base):
    """Someone who wants followed-activity notifications for a document. Authors (creator,
    uploaders of versions) and commenters follow automatically."""

    __tablename__ = "follows"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotificationSettings(Base):
    """A person's choices; no row means the defaults below."""

    __tablename__ = "notification_settings"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    mentions: Mapped[bool] = mapped_column(Boolean, default=True)
    replies: Mapped[bool] = mapped_column(Boolean, default=True)
    followed: Mapped[bool] = mapped_column(Boolean, default=True)
    email: Mapped[str] = mapped_column(String(10), default="daily")  # off | immediate | daily
    last_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
