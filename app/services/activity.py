"""Activity: what happened in a group, recorded by the services that make it happen and read
back through :mod:`app.access` at read time.

Recording is one call from the service that did the work, in the same transaction
(``activity.record(db, "document.version", actor_id=..., document=doc)``). Reading filters in
the query itself, before paging: a person sees

- group-wide entries (``member.*``) of groups they are a member of now;
- folder entries (``folder.access``) of folders they may read now;
- document entries only while the document is readable now (live, in a readable folder), so a
  trashed document's activity and anything in a folder they lost access to disappear at once;
  ``document.trashed`` is the exception: it is shown to whoever may read the folder the document
  was trashed from, with the title it had then (kept in ``data``), not the live one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from app.access import Access
from app.models import Activity, Document, Follow, utcnow

VERBS = frozenset({
    "document.created", "document.edited", "document.version", "document.commented",
    "document.moved", "document.trashed", "member.joined", "member.left", "member.role",
    "folder.access",
})
# Doing these makes you an author or a participant: you follow the document from then on.
FOLLOWING_VERBS = frozenset({"document.created", "document.version", "document.edited",
                             "document.commented"})
# Followers are told about these (comments notify through app.services.discussions, which
# also tells mentioned people and thread participants, each person once).
FOLLOWED_VERBS = frozenset({"document.version"})
EDIT_COALESCE = timedelta(hours=1)


def record(db: Session, verb: str, *, actor_id: str | None, document: Document | None = None,
           group_id: str | None = None, folder_id: str | None = None,
           data: dict[str, Any] | None = None, now: datetime | None = None) -> Activity:
    """Add an activity row (for a document, group and folder come from it).

    ``document.edited`` is coalesced: one row per person per document per hour; a later edit
    moves that row's time forward and counts it instead of adding a row."""
    if verb not in VERBS:
        raise ValueError(f"unknown activity verb {verb!r}")
    now = now or utcnow()
    if document is not None:
        group_id, folder_id = document.group_id, folder_id or document.folder_id
    if group_id is None:
        raise ValueError("an activity needs a group or a document")
    if verb == "document.edited" and document is not None and actor_id is not None:
        existing = db.scalar(select(Activity).where(
            Activity.document_id == document.id, Activity.actor_id == actor_id,
            Activity.verb == verb, Activity.created_at >= now - EDIT_COALESCE))
        if existing is not None:
            existing.created_at = now
            existing.data = {**(existing.data or {}),
                             "count": int((existing.data or {}).get("count", 1)) + 1}
            return existing
    activity = Activity(group_id=group_id, folder_id=folder_id,
                        document_id=document.id if document is not None else None,
                        actor_id=actor_id, verb=verb, data=dict(data or {}), created_at=now)
    if verb == "document.trashed" and document is not None:
        activity.data.setdefault("title", document.title)
    db.add(activity)
    db.flush()
    if document is not None and actor_id is not None and verb in FOLLOWING_VERBS:
        follow(db, actor_id, document.id)
    if document is not None and verb in FOLLOWED_VERBS:
        from app.services.notifications import notify_followers

        notify_followers(db, activity, document)
    return activity


def follow(db: Session, user_id: str, document_id: str) -> None:
    if db.get(Follow, (user_id, document_id)) is None:
        db.add(Follow(user_id=user_id, document_id=document_id))
        db.flush()


def unfollow(db: Session, user_id: str, document_id: str) -> None:
    found = db.get(Follow, (user_id, document_id))
    if found is not None:
        db.delete(found)
        db.flush()


def is_following(db: Session, user_id: str, document_id: str) -> bool:
    return db.get(Follow, (user_id, document_id)) is not None


# -- reading --------------------------------------------------------------------------------

def visible_clause(access: Access, group_ids: Sequence[str] | None = None
                   ) -> ColumnElement[bool]:
    """SQL condition: activity rows this principal may see now (needs ``Document`` outer-joined
    on ``Activity.document_id``). ``group_ids`` narrows to some of the caller's groups."""
    mine = [gid for gid in access.memberships() if access.group_role(gid) is not None]
    if group_ids is not None:
        mine = [gid for gid in mine if gid in group_ids]
    readable: set[str] = set()
    for gid in mine:
        readable |= access.readable_folder_ids(gid)
    folders = sorted(readable)
    return and_(
        Activity.group_id.in_(mine),
        or_(
            and_(Activity.document_id.is_(None), Activity.folder_id.is_(None)),
            and_(or_(Activity.document_id.is_(None), Activity.verb == "document.trashed"),
                 Activity.folder_id.in_(folders)),
            and_(Activity.verb != "document.trashed", Document.trashed_at.is_(None),
                 Document.folder_id.in_(folders)),
        ),
    )


@dataclass(frozen=True)
class Feed:
    total: int
    items: list[tuple[Activity, Document | None]]


def feed(db: Session, access: Access, *, group_ids: Sequence[str] | None = None,
         document_id: str | None = None, limit: int = 50, offset: int = 0) -> Feed:
    """Newest first, filtered and paged in the query (a fixed number of queries per page)."""
    access.require_user()
    base = (select(Activity, Document)
            .outerjoin(Document, Document.id == Activity.document_id)
            .where(visible_clause(access, group_ids)))
    if document_id is not None:
        base = base.where(Activity.document_id == document_id)
    total = db.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = db.execute(base.order_by(Activity.created_at.desc(), Activity.id.desc())
                      .limit(limit).offset(offset)).tuples()
    return Feed(total=int(total), items=[(a, d) for a, d in rows])
