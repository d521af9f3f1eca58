"""Writing the audit log (:class:`app.models.AuditEvent`), in the caller's transaction, and
mirrored to the ``plein.audit`` logger for operators who ship logs elsewhere."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.models import AuditEvent, utcnow

log = logging.getLogger("plein.audit")


def record(db: Session, action: str, *, actor_id: str | None, object_type: str,
           object_id: str, group_id: str | None = None, ip: str | None = None,
           detail: dict[str, Any] | None = None) -> AuditEvent:
    event = AuditEvent(actor_id=actor_id, action=action, object_type=object_type,
                       object_id=object_id, group_id=group_id, ip=ip, detail=dict(detail or {}))
    db.add(event)
    db.flush()
    # Ids only in the log line: details (names, addresses) stay sealed in the database.
    log.info("%s by %s on %s %s", action, actor_id, object_type, object_id)
    return event


def events(db: Session, *, group_id: str | None, limit: int, before: datetime | None
           ) -> list[AuditEvent]:
    """Newest first; ``group_id`` None = the whole site; ``before``: the page after one
    that ended at that time."""
    query = select(AuditEvent)
    if group_id is not None:
        query = query.where(AuditEvent.group_id == group_id)
    if before is not None:
        query = query.where(AuditEvent.at < before)
    return list(db.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                           .limit(limit)))


def expire(db: Session, days: int, now: datetime | None = None) -> int:
    """Forget entries older than ``days`` (PLEIN_AUDIT_DAYS): the one deletion the log
    allows, run by ``plein maintenance``."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    result = db.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
