"""Comments, threads and mention candidates."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.models import Comment, User
from app.schemas.accounts import PersonOut
from app.schemas.common import Id, Input, _clean_text

# Yjs relative positions, encoded with base64 (standard or URL-safe alphabet) by the editor.
Base64 = Annotated[str, StringConstraints(min_length=1, max_length=2048,
                                          pattern=r"^[A-Za-z0-9+/_-]+={0,2}$")]
# Hard cap against huge bodies before the configurable limit (comment_max_chars) is checked.
Body = Annotated[str, StringConstraints(max_length=200_000), AfterValidator(_clean_text)]
Quote = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_clean_text)]


class Anchor(Input):
    """Where an inline comment on a note points: Yjs relative positions of the start and end
    of the selection, and the text selected when the comment was made."""

    start: Base64
    end: Base64
    quote: Quote = ""


class CommentCreate(Input):
    body: Body
    parent_id: Id | None = None
    anchor: Anchor | None = None


class CommentUpdate(Input):
    """Any of: new text (author), resolved (thread root), detached (anchored thread)."""

    body: Body | None = None
    resolved: bool | None = None
    detached: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> CommentUpdate:
        if self.body is None and self.resolved is None and self.detached is None:
            raise ValueError("give body, resolved or detached")
        return self


class MentionQuery(BaseModel):
    """A few suggestions, not a page of a list: its own sizes, not PLEIN_PAGE_SIZE."""

    model_config = ConfigDict(extra="ignore")

    q: Annotated[str, StringConstraints(max_length=100)] = ""
    limit: int = Field(default=10, ge=1, le=50)
    offset: int = Field(default=0, ge=0)


class CommentOut(BaseModel):
    id: str
    document_id: str
    thread_id: str
    parent_id: str | None
    author: PersonOut | None
    body: str | None = Field(description="Markdown as written; null once deleted")
    body_html: str = Field(description="Rendered and sanitized; safe to insert as HTML")
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    resolved: bool
    resolved_at: datetime | None
    resolved_by: PersonOut | None
    anchor: dict[str, Any] | None
    detached: bool
    can_edit: bool
    can_delete: bool
    replies: list[CommentOut] = []


class CommentPosted(CommentOut):
    unnotified_mentions: list[str] = Field(
        default_factory=list,
        description="Mentions as written that notify nobody: not a member who may read the "
                    "document")


class CommentsPage(BaseModel):
    total: int = Field(description="Number of threads")
    limit: int
    offset: int
    comments: list[CommentOut]


class MentionCandidate(BaseModel):
    id: str
    name: str
    organisation: str
    mention: str = Field(description="What to insert into the body: @[Name](user:ID)")

    @classmethod
    def of(cls, user: User) -> MentionCandidate:
        name = " ".join(user.name.replace("[", "(").replace("]", ")").split())
        return cls(id=user.id, name=user.name, organisation=user.organisation,
                   mention=f"@[{name}](user:{user.id})")


class FollowOut(BaseModel):
    following: bool


def comment_out(comment: Comment, *, html: str, users: dict[str, User], can_edit: bool,
                can_delete: bool, replies: list[CommentOut] | None = None) -> CommentOut:
    author = users.get(comment.author_id or "")
    resolver = users.get(comment.resolved_by or "")
    deleted = comment.deleted_at is not None
    return CommentOut(
        id=comment.id, document_id=comment.document_id,
        thread_id=comment.parent_id or comment.id, parent_id=comment.parent_id,
        author=PersonOut.of(author) if author is not None else None,
        body=None if deleted else comment.body, body_html="" if deleted else html,
        created_at=comment.created_at, edited_at=comment.edited_at, deleted=deleted,
        resolved=comment.resolved_at is not None, resolved_at=comment.resolved_at,
        resolved_by=PersonOut.of(resolver) if resolver is not None else None,
        anchor=comment.anchor, detached=comment.detached,
        can_edit=can_edit and not deleted, can_delete=can_delete and not deleted,
        replies=replies or [])
