"""Discussions beside a document: threads of comments, mentions, resolving, inline anchors.

Who may do what (app.access decides "may read the document"):

- read and post: everyone who may read the document, viewers included. A discussion is how a
  reader asks a question or gives feedback without being given the right to change the text;
  write access would push them to edit in the document instead.
- edit a comment's text: its author only (it is their words).
- delete: its author, or a group owner/admin (moderation).
- resolve/reopen a thread, mark an anchor detached: the thread's author or whoever may edit
  the document (the people who act on the feedback).

Every stored change to a comment (create, edit, resolve, delete) is published after the commit
to the document's live listeners by :mod:`app.db_hooks` (a session hook, so no path can forget).

A trashed document's discussion is not readable at all (404), like the document itself. A reply
to a resolved thread reopens it. Posting is rate limited per person (``comments_per_minute``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from app.access import Access, Action
from app.errors import BadRequest, Forbidden, NotFound, RateLimited, Unprocessable
from app.i18n import N_
from app.models import Comment, Document, Membership, MembershipState, User, utcnow
from app.services import activity, markdown, notifications
from app.settings import Settings

RATE_WINDOW = timedelta(minutes=1)


@dataclass
class Thread:
    root: Comment
    replies: list[Comment] = field(default_factory=list)


@dataclass(frozen=True)
class Posted:
    comment: Comment
    unnotified_mentions: list[str]


# -- lookups --------------------------------------------------------------------------------

def get_comment(db: Session, access: Access, comment_id: str) -> tuple[Comment, Document]:
    """A live comment on a document the caller may read now; anything else is the same 404."""
    access.require_user()
    comment = db.get(Comment, comment_id)
    doc = db.get(Document, comment.document_id) if comment is not None else None
    if comment is None or comment.deleted_at is not None or doc is None \
            or not access.can_document(Action.DOCUMENT_READ, doc):
        raise NotFound(N_("No such comment."))
    return comment, doc


def threads(db: Session, access: Access, doc: Document, *, limit: int, offset: int
            ) -> tuple[int, list[Thread]]:
    """Threads oldest first (a conversation reads top-down), paged by thread, each with all its
    live replies. Deleted roots stay as placeholders while they have live replies. Three
    queries whatever the number of comments."""
    access.require_document(Action.DOCUMENT_READ, doc)
    reply = aliased(Comment)
    live_reply = exists().where(reply.parent_id == Comment.id, reply.deleted_at.is_(None))
    roots_query = select(Comment).where(Comment.document_id == doc.id,
                                        Comment.parent_id.is_(None),
                                        or_(Comment.deleted_at.is_(None), live_reply))
    total = db.scalar(select(func.count()).select_from(roots_query.subquery())) or 0
    roots = list(db.scalars(roots_query.order_by(Comment.created_at, Comment.id)
                            .limit(limit).offset(offset)))
    found = {root.id: Thread(root) for root in roots}
    if found:
        for row in db.scalars(select(Comment).where(Comment.parent_id.in_(list(found)),
                                                    Comment.deleted_at.is_(None))
                              .order_by(Comment.created_at, Comment.id)):
            found[row.parent_id or ""].replies.append(row)
    return int(total), list(found.values())


def thread_of(db: Session, comment: Comment) -> Thread:
    """A comment as it is listed: a root with its live replies, a reply on its own."""
    thread = Thread(comment)
    if comment.parent_id is None:
        thread.replies = list(db.scalars(select(Comment).where(
            Comment.parent_id == comment.id, Comment.deleted_at.is_(None))
            .order_by(Comment.created_at, Comment.id)))
    return thread


def people(db: Session, ids: Iterable[str | None]) -> dict[str, User]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    return {u.id: u for u in db.scalars(select(User).where(User.id.in_(wanted)))}


def mention_people(db: Session, group_id: str, bodies: Iterable[str]
                   ) -> dict[str, tuple[str, str]]:
    """Mention key → (user id, current name) for mentions that name a member of the group
    (the renderer's ``people``): one query for any number of bodies."""
    ids: set[str] = set()
    emails: set[str] = set()
    for body in bodies:
        for mention in markdown.mentions(body):
            if mention.user_id:
                ids.add(mention.user_id)
            elif mention.email:
                emails.add(mention.email)
    if not ids and not emails:
        return {}
    rows = db.execute(
        select(User.id, User.email, User.name)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.group_id == group_id, Membership.state == MembershipState.MEMBER,
               or_(User.id.in_(sorted(ids)), User.email.in_(sorted(emails)))))
    found: dict[str, tuple[str, str]] = {}
    for user_id, email, name in rows:
        if user_id in ids:
            found[user_id] = (user_id, name)
        if email in emails:
            found["email:" + email] = (user_id, name)
    return found


# -- writing --------------------------------------------------------------------------------

def _check_body(settings: Settings, body: str) -> str:
    if not body.strip():
        raise BadRequest(N_("body: must not be empty"), code="invalid_field", field="body")
    if len(body) > settings.comment_max_chars:
        raise BadRequest(f"body: at most {settings.comment_max_chars} characters",
                         code="comment_too_long", field="body")
    return body


def check_rate(db: Session, settings: Settings, user_id: str, now: datetime) -> None:
    limit = settings.comments_per_minute
    if not limit:
        return
    recent = list(db.scalars(select(Comment.created_at)
                             .where(Comment.author_id == user_id,
                                    Comment.created_at > now - RATE_WINDOW)
                             .order_by(Comment.created_at.desc()).limit(limit)))
    if len(recent) >= limit:
        wait = (recent[-1] + RATE_WINDOW - now).total_seconds()
        raise RateLimited(f"At most {limit} comments a minute; try again shortly.",
                          retry_after=max(1, math.ceil(wait)))


def create_comment(db: Session, access: Access, settings: Settings, doc: Document, *,
                   body: str, parent_id: str | None = None,
                   anchor: dict[str, Any] | None = None, now: datetime | None = None) -> Posted:
    user = access.require_user()
    access.require_document(Action.DOCUMENT_READ, doc)
    now = now or utcnow()
    _check_body(settings, body)
    root: Comment | None = None
    if parent_id is not None:
        parent = db.get(Comment, parent_id)
        if parent is None or parent.document_id != doc.id or parent.deleted_at is not None:
            raise NotFound(N_("No such comment to reply to."), field="parent_id")
        # One level deep: a reply to a reply joins the thread of its root.
        root = db.get(Comment, parent.parent_id) if parent.parent_id else parent
        if root is None:
            raise NotFound(N_("No such comment to reply to."), field="parent_id")
        if anchor is not None:
            raise BadRequest(N_("anchor: only a thread's first comment has an anchor"),
                             code="invalid_field", field="anchor")
    if anchor is not None and doc.kind != "note":
        raise Unprocessable(N_("Inline anchors are for notes only."), code="anchor_not_supported",
                            field="anchor")
    check_rate(db, settings, user.id, now)
    comment = Comment(document_id=doc.id, group_id=doc.group_id, author_id=user.id, body=body,
                      parent_id=root.id if root is not None else None, anchor=anchor,
                      created_at=now)
    db.add(comment)
    if root is not None and root.resolved_at is not None:
        root.resolved_at, root.resolved_by = None, None  # a new reply reopens the thread
    db.flush()
    event = activity.record(db, "document.commented", actor_id=user.id, document=doc,
                            data={"comment_id": comment.id,
                                  "thread_id": root.id if root is not None else comment.id},
                            now=now)
    readable_by = notifications.readers(db, doc)
    mentioned, unnotified = _mentions(db, doc, user.id, markdown.mentions(body), readable_by)
    notifications.notify(db, user_ids=mentioned, kind="mention", actor_id=user.id,
                         document=doc, activity=event, comment=comment, readable_by=readable_by)
    told = set(mentioned) | {user.id}
    if root is not None:
        participants = [p for p in _participants(db, root) if p not in told]
        notifications.notify(db, user_ids=participants, kind="reply", actor_id=user.id,
                             document=doc, activity=event, comment=comment,
                             readable_by=readable_by)
        told |= set(participants)
    notifications.notify(db, user_ids=[f for f in notifications.followers(db, doc.id)
                                       if f not in told],
                         kind="followed_activity", actor_id=user.id, document=doc,
                         activity=event, comment=comment, readable_by=readable_by)
    return Posted(comment, unnotified)


def _participants(db: Session, root: Comment) -> list[str]:
    """The thread's root author and everyone who replied, in order of first appearance."""
    replies = db.scalars(select(Comment.author_id).where(Comment.parent_id == root.id,
                                                         Comment.deleted_at.is_(None))
                         .order_by(Comment.created_at))
    return [uid for uid in dict.fromkeys([root.author_id, *replies]) if uid]


def _mentions(db: Session, doc: Document, author_id: str,
              found: Sequence[markdown.Mention], readable_by: set[str]
              ) -> tuple[list[str], list[str]]:
    """(ids of mentioned people who may read the document, mentions as written that notify
    nobody). Whether an unknown address has an account is not revealed: both read the same."""
    resolved = mention_people(db, doc.group_id, [m.text for m in found])
    notify: list[str] = []
    unnotified: list[str] = []
    for mention in found:
        key = mention.user_id or f"email:{mention.email}"
        person = resolved.get(key)
        if person is not None and person[0] == author_id:
            continue
        if person is not None and person[0] in readable_by:
            if person[0] not in notify:
                notify.append(person[0])
        else:
            unnotified.append(mention.text)
    return notify, unnotified


def edit_comment(db: Session, access: Access, settings: Settings, comment: Comment,
                 doc: Document, body: str, now: datetime | None = None) -> list[str]:
    """Change the text (author only); newly mentioned people are notified. Returns the
    mentions that notify nobody."""
    user = access.require_user()
    if comment.author_id != user.id:
        raise Forbidden(N_("Only the author can edit a comment."))
    _check_body(settings, body)
    before = {m.user_id or f"email:{m.email}" for m in markdown.mentions(comment.body)}
    comment.body = body
    comment.edited_at = now or utcnow()
    fresh = [m for m in markdown.mentions(body) if (m.user_id or f"email:{m.email}") not in before]
    readable_by = notifications.readers(db, doc)
    mentioned, unnotified = _mentions(db, doc, user.id, fresh, readable_by)
    notifications.notify(db, user_ids=mentioned, kind="mention", actor_id=user.id,
                         document=doc, comment=comment, readable_by=readable_by)
    return unnotified


def _may_steer(access: Access, comment: Comment, doc: Document) -> bool:
    user = access.require_user()
    return comment.author_id == user.id or access.can_document(Action.DOCUMENT_WRITE, doc)


def may_delete(access: Access, comment: Comment, doc: Document) -> bool:
    user = access.require_user()
    return comment.author_id == user.id or access.can_document(Action.DOCUMENT_MANAGE, doc)


def set_resolved(access: Access, comment: Comment, doc: Document, resolved: bool,
                 now: datetime | None = None) -> None:
    if comment.parent_id is not None:
        raise Unprocessable(N_("Only a thread (its first comment) can be resolved."),
                            code="not_a_thread", field="resolved")
    if not _may_steer(access, comment, doc):
        raise Forbidden(N_("Only the thread's author or an editor can resolve it."))
    if resolved and comment.resolved_at is None:
        comment.resolved_at, comment.resolved_by = now or utcnow(), access.require_user().id
    elif not resolved:
        comment.resolved_at, comment.resolved_by = None, None


def set_detached(access: Access, comment: Comment, doc: Document, detached: bool) -> None:
    if comment.anchor is None:
        raise Unprocessable(N_("This comment has no anchor."), code="no_anchor", field="detached")
    if not _may_steer(access, comment, doc):
        raise Forbidden()
    comment.detached = detached


def delete_comment(db: Session, access: Access, comment: Comment, doc: Document,
                   now: datetime | None = None) -> None:
    """Wipe the text at once; the row stays as a "deleted" placeholder (shown only while the
    thread has live replies) and keeps counting for the rate limit."""
    if not may_delete(access, comment, doc):
        raise Forbidden(N_("Only the author or a group owner/admin can delete a comment."))
    comment.deleted_at = now or utcnow()
    comment.body = ""
    comment.anchor = None
    notifications.forget_comment(db, comment.id)
    db.flush()


def mention_candidates(db: Session, access: Access, doc: Document, q: str, limit: int
                       ) -> list[User]:
    """Members who may read the document (so a mention would reach them), by name."""
    user = access.require_user()
    access.require_document(Action.DOCUMENT_READ, doc)
    ids = sorted(access.document_reader_ids(doc) - {user.id})
    query = select(User).where(User.id.in_(ids), User.is_active.is_(True))
    if q.strip():
        query = query.where(func.lower(User.name).contains(q.strip().lower(), autoescape=True))
    return list(db.scalars(query.order_by(func.lower(User.name), User.id).limit(limit)))
