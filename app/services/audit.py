"""Writing the audit log (:class:`app.models.AuditEvent`), in the caller's transaction, and
mirrored to the ``plein.audit`` logger for operators who ship logs elsewhere."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.access import Access
from app.errors import Forbidden, NotFound
from app.i18n import N_
from app.models import GROUP_MANAGERS, AuditEvent, Group, utcnow

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


def readable_group(db: Session, access: Access, group_id: str) -> Group:
    """The group whose log this person may read (its owners and admins). Anyone without a
    role there learns nothing, not even that the group keeps a log (404); members 403."""
    access.require_user()
    group = db.get(Group, group_id)
    role = access.group_role(group_id) if group is not None else None
    if group is None or role is None:
        raise NotFound(N_("No such group."))
    if role not in GROUP_MANAGERS:
        raise Forbidden(N_("Only owners and admins of the group read its audit log."))
    return group


def require_site_reader(access: Access) -> None:
    access.require_user()
    if not access.is_site_admin:
        raise Forbidden(N_("Only site administrators read the site's audit log."))


def events(db: Session, *, group_id: str | None, limit: int, before: datetime | None,
           action: str | None = None, actor_id: str | None = None,
           since: datetime | None = None, until: datetime | None = None) -> list[AuditEvent]:
    """Newest first; ``group_id`` None = the whole site; ``before``: the page after one
    that ended at that time; ``since``/``until``: ``since <= at < until`` (the page's filters)."""
    query = select(AuditEvent)
    if group_id is not None:
        query = query.where(AuditEvent.group_id == group_id)
    if before is not None:
        query = query.where(AuditEvent.at < before)
    if action:
        query = query.where(AuditEvent.action == action)
    if actor_id:
        query = query.where(AuditEvent.actor_id == actor_id)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    return list(db.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                           .limit(limit)))


def choices(db: Session, *, group_id: str | None) -> tuple[list[str], list[str]]:
    """The actions and the people (ids) that occur in a log, for its filters."""
    actions = select(AuditEvent.action).distinct()
    actors = select(AuditEvent.actor_id).where(AuditEvent.actor_id.is_not(None)).distinct()
    if group_id is not None:
        actions = actions.where(AuditEvent.group_id == group_id)
        actors = actors.where(AuditEvent.group_id == group_id)
    return (sorted(db.scalars(actions)), [a for a in db.scalars(actors) if a])


@dataclass(frozen=True)
class Download:
    """A person was let read a document's bytes (``version`` None: a note as it is now)."""

    actor_id: str
    document_id: str
    group_id: str
    version: int | None
    format: str | None
    ip: str


def _downloaded_since(db: Session, download: Download, since: datetime) -> bool:
    rows = db.scalars(select(AuditEvent).where(
        AuditEvent.group_id == download.group_id, AuditEvent.at >= since,
        AuditEvent.action == "document.downloaded", AuditEvent.actor_id == download.actor_id,
        AuditEvent.object_id == download.document_id))
    # The version is in the sealed detail: compared here, on the few rows of the window.
    return any((row.detail or {}).get("version") == download.version for row in rows)


def download_due(db: Session, minutes: int, download: Download) -> bool:
    """Whether this download must be recorded: not when the same person already downloaded
    the same version in the last ``minutes`` (PLEIN_AUDIT_DOWNLOAD_MINUTES; 0: always).
    Checked in the request's read transaction, so most repeated reads write nothing."""
    return minutes == 0 or not _downloaded_since(
        db, download, utcnow() - timedelta(minutes=minutes))


def record_download(db: Session, minutes: int, download: Download) -> None:
    """``document.downloaded``, in a short write transaction of its own after access was
    granted and before a byte is sent; checked again there, so two requests at once rarely
    both write."""
    if not download_due(db, minutes, download):
        return
    record(db, "document.downloaded", actor_id=download.actor_id, object_type="document",
           object_id=download.document_id, group_id=download.group_id, ip=download.ip,
           detail={"version": download.version, "format": download.format})


def expire(db: Session, days: int, now: datetime | None = None) -> int:
    """Forget entries older than ``days`` (PLEIN_AUDIT_DAYS): the one deletion the log
    allows, run by ``plein maintenance``."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    result = db.execute(delete(AuditEvent).where(AuditEvent.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
