"""Writing the audit log (:class:`app.models.AuditEvent`), in the caller's transaction, and
mirrored to the ``plein.audit`` logger for operators who ship logs elsewhere."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from app.models import AuditEvent

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
