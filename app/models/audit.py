"""The audit log: who did what security-relevant thing, when and from where (API.md,
"Identity and audit"). Append-only: rows are written by :mod:`app.services.audit` and never
changed. No foreign keys: an audit entry must outlive the person, group or object it names."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, new_id, utcnow
from app.models.sealed import SealedJSON


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_group_id_at", "group_id", "at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    action: Mapped[str] = mapped_column(String(60))  # e.g. group.exported, group.imported
    object_type: Mapped[str] = mapped_column(String(30))
    object_id: Mapped[str] = mapped_column(String(64))
    # The group it concerns, for the group owners' view of the log.
    group_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # What a person typed or who was named can be in here: sealed like other content.
    detail: Mapped[dict[str, Any]] = mapped_column(SealedJSON("audit_events.detail"),
                                                   default=dict)
