"""A person's own data, as the GDPR (AVG) right of access expects: profile, memberships,
comments they wrote, documents they created, notifications, sessions, tokens and the audit
entries of what they did (API.md, ``GET /api/v1/users/me/export``).

What they wrote is theirs and is included even where they can no longer read the document it
was written on; the content of documents is not (it belongs to the group: the group export
is the way to take it). Titles are shown only for documents they may still read, so leaving a
group, or losing access to a folder, is not undone by this export.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import Access, Action
from app.models import (
    ApiToken,
    AuditEvent,
    Comment,
    Document,
    Group,
    Membership,
    Notification,
    User,
    WebSession,
    utcnow,
)

FORMAT = "plein-personal-export"
FORMAT_VERSION = 1


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def personal_data(db: Session, access: Access) -> dict[str, Any]:
    user: User = access.require_user()
    memberships = list(db.scalars(select(Membership).where(Membership.user_id == user.id)))
    groups = {g.id: g for g in db.scalars(select(Group).where(
        Group.id.in_([m.group_id for m in memberships])))}
    comments = list(db.scalars(select(Comment).where(Comment.author_id == user.id)
                               .order_by(Comment.created_at)))
    created = list(db.scalars(select(Document).where(Document.created_by == user.id)
                              .order_by(Document.created_at)))
    documents = {d.id: d for d in created}
    for doc in db.scalars(select(Document).where(Document.id.in_(
            {c.document_id for c in comments} - set(documents)))):
        documents[doc.id] = doc

    def title(document_id: str | None) -> str | None:
        doc = documents.get(document_id) if document_id else None
        return doc.title if doc is not None and access.can_document(Action.DOCUMENT_READ, doc) \
            else None

    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "exported_at": _iso(utcnow()),
        "profile": {"id": user.id, "email": user.email, "name": user.name, "bio": user.bio,
                    "organisation": user.organisation, "language": user.language,
                    "is_site_admin": user.is_site_admin, "created_at": _iso(user.created_at),
                    "email_verified_at": _iso(user.email_verified_at)},
        "memberships": [{"group_id": m.group_id, "group": groups[m.group_id].name
                         if m.group_id in groups else None, "role": m.role, "state": m.state,
                         "since": _iso(m.created_at)} for m in memberships],
        "comments": [{"id": c.id, "document_id": c.document_id, "document": title(
            c.document_id), "group_id": c.group_id, "parent_id": c.parent_id,
            "body": c.body, "created_at": _iso(c.created_at), "edited_at": _iso(c.edited_at),
            "deleted_at": _iso(c.deleted_at)} for c in comments],
        "documents_created": [{"id": d.id, "kind": d.kind, "title": title(d.id),
                               "group_id": d.group_id, "created_at": _iso(d.created_at),
                               "in_trash": d.trashed_at is not None} for d in created],
        "notifications": [{"id": n.id, "kind": n.kind, "group_id": n.group_id,
                           "document_id": n.document_id, "document": title(n.document_id),
                           "folder_id": n.folder_id,
                           "created_at": _iso(n.created_at), "read_at": _iso(n.read_at),
                           "emailed_at": _iso(n.emailed_at)}
                          for n in db.scalars(select(Notification).where(
                              Notification.user_id == user.id)
                              .order_by(Notification.created_at))],
        # Only what the rows say about the session; never the secret (stored as a hash only).
        "sessions": [{"created_at": _iso(s.created_at), "last_seen_at": _iso(s.last_seen_at),
                      "expires_at": _iso(s.expires_at), "user_agent": s.user_agent}
                     for s in db.scalars(select(WebSession).where(
                         WebSession.user_id == user.id).order_by(WebSession.created_at))],
        "tokens": [{"id": t.id, "name": t.name, "document_id": t.document_id,
                    "created_at": _iso(t.created_at), "last_used_at": _iso(t.last_used_at)}
                   for t in db.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                       .order_by(ApiToken.created_at))],
        "audit": [{"at": _iso(e.at), "action": e.action, "object_type": e.object_type,
                   "object_id": e.object_id, "ip": e.ip}
                  for e in db.scalars(select(AuditEvent).where(AuditEvent.actor_id == user.id)
                                      .order_by(AuditEvent.at))],
    }


def personal_archive(data: dict[str, Any]) -> bytes:
    """``me.json`` plus ``comments.md`` (what the person wrote, readable as it is)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("me.json", json.dumps(data, ensure_ascii=False, indent=2))
        lines = [f"# Comments by {data['profile']['name']}", ""]
        for comment in data["comments"]:
            where = comment["document"] or comment["document_id"]
            lines += [f"## {comment['created_at']} on {where}", "", comment["body"], ""]
        archive.writestr("comments.md", "\n".join(lines))
    return out.getvalue()
