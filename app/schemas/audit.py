"""The audit log as the API shows it (API.md, "Identity and audit")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.models import AuditEvent
from app.schemas.common import Page


class AuditQuery(Page):
    """``limit`` as other lists; ``before``: an entry's ``at``, for the page after it."""

    before: datetime | None = None


class AuditEventOut(BaseModel):
    id: str
    at: datetime
    actor_id: str | None
    action: str
    object_type: str
    object_id: str
    ip: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, event: AuditEvent) -> AuditEventOut:
        return cls(id=event.id, at=event.at, actor_id=event.actor_id, action=event.action,
                   object_type=event.object_type, object_id=event.object_id, ip=event.ip,
                   detail=event.detail or {})


class AuditEventsOut(BaseModel):
    events: list[AuditEventOut]
