"""The index outbox: a row per document whose search entry must be refreshed, written in the
same transaction as the change (so a crash can never lose an index update, only delay it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class IndexTask(Base):
    """One pending refresh per document (upserted): the worker reads the document's current
    state when it runs, so several changes collapse into one task. No foreign key: a purged
    document's task must survive to delete its index entry."""

    __tablename__ = "index_tasks"

    document_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
