"""Activity feeds, notifications and notification settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from app.schemas.accounts import PersonOut
from app.schemas.common import Id, Input, Page

EmailMode = Literal["off", "immediate", "daily"]


class ActivityQuery(Page):
    document_id: Id | None = None


class NotificationsQuery(Page):
    unread: bool = False


class GroupRef(BaseModel):
    id: str
    name: str


class FolderRef(BaseModel):
    id: str
    name: str


class DocumentRef(BaseModel):
    id: str
    title: str
    kind: str


class CommentRef(BaseModel):
    id: str
    thread_id: str
    excerpt: str = Field(description="Plain text (escape it when showing)")


class ActivityOut(BaseModel):
    id: str
    verb: str
    created_at: datetime
    actor: PersonOut | None
    group: GroupRef
    folder: FolderRef | None
    document: DocumentRef | None
    subject: PersonOut | None = Field(None, description="The member a member.* entry is about")
    comment: CommentRef | None = None
    data: dict[str, Any]


class ActivityPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ActivityOut]


class NotificationOut(BaseModel):
    id: str
    kind: Literal["mention", "reply", "followed_activity", "group_added", "folder_trashed"]
    created_at: datetime
    read: bool
    read_at: datetime | None
    actor: PersonOut | None
    group: GroupRef
    document: DocumentRef | None
    folder: FolderRef | None = Field(None, description="The folder a folder_trashed is about")
    comment: CommentRef | None
    verb: str | None = Field(None, description="The activity a followed_activity is about")


class NotificationsPage(BaseModel):
    total: int
    unread: int
    limit: int
    offset: int
    items: list[NotificationOut]


class NotificationsRead(Input):
    """``ids`` to mark some read; leave it out to mark all."""

    ids: Annotated[list[Id], Field(max_length=500)] | None = None


class ReadOut(BaseModel):
    marked: int
    unread: int


class UnreadOut(BaseModel):
    unread: int


class NotificationSettingsIn(Input):
    """Only the fields given change."""

    mentions: bool | None = None
    replies: bool | None = None
    followed: bool | None = None
    email: EmailMode | None = None


class NotificationSettingsOut(BaseModel):
    mentions: bool
    replies: bool
    followed: bool
    email: EmailMode
    email_available: bool = Field(description="Whether this server sends e-mail at all")
