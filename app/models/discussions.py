"""Discussions beside a document: comments in threads (a root and its replies, one level deep).

A comment's ``body`` is Markdown exactly as written; the HTML is rendered and sanitized when it
is read (:mod:`app.services.markdown`), so a stricter sanitizer applies to old comments at once.
A deleted comment keeps its row with the body wiped (``deleted_at``): a root with replies shows
as a "deleted" placeholder, anything else disappears from listings; the row still counts for
the posting rate limit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, new_id, utcnow
from app.models.sealed import SealedJSON, SealedText


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_document_id_created_at", "document_id", "created_at"),
                      Index("ix_comments_author_id_created_at", "author_id", "created_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    document_id: Mapped[str] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    # The thread root; replies to a reply attach to the root, so threads are one level deep.
    parent_id: Mapped[str | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), nullable=True, index=True
    )
    author_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    body: Mapped[str] = mapped_column(SealedText("comments.body"), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Thread roots only.
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    # Inline comments on notes: {"start", "end"} are Yjs relative positions (base64) and
    # "quote" the text they enclosed when the comment was made. Stored as given; the editor
    # resolves them and reports ``detached`` when the text they pointed at is gone.
    anchor: Mapped[dict[str, Any] | None] = mapped_column(SealedJSON("comments.anchor"),
                                                          nullable=True)
    detached: Mapped[bool] = mapped_column(Boolean, default=False)
