"""Notifications and activity for people: the header badge (unread count), the /notifications
page (list, open = mark read and go to the comment, mark all read), notification settings on
the profile page, and "what happened in my groups" (the dashboard's list and a group's
activity page). Everything goes through :mod:`app.services.notifications` and
:mod:`app.services.activity`, which filter by access at read time.

Unread markers on activity: ``users.activity_seen_at`` (migration 0005) is the moment the
person last marked their groups' activity seen; entries by others after it are "new". It is
moved by an explicit form post ("Mark as seen"), not by viewing the dashboard: a GET stays
read-only (no write transaction, no SQLite write lock per page view), and nothing is marked
seen just because a page was opened in a background tab. Notification read state was not
reused: most activity (new documents, versions, members) never becomes a notification."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from starlette.routing import BaseRoute

from app.errors import Forbidden, NotFound
from app.http.context import Ctx
from app.models import Activity, Comment, Document, Group, Notification, User, utcnow
from app.pages.forms import FormError, invalid, validate
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page
from app.schemas.activity import NotificationSettingsIn
from app.services import activity, groups, markdown, notifications

PER_PAGE = 50


def unread_badge(ctx: Ctx) -> int:
    """The header's unread count. One indexed count on the person's own unread rows; only when
    that finds something is the access-filtered count run (it hides notifications about
    documents the person may no longer read), so most page views pay one cheap query."""
    user = ctx.user
    if user is None:
        return 0
    raw = ctx.db.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user.id, Notification.read_at.is_(None))) or 0
    if not raw:
        return 0
    return notifications.unread_count(ctx.db, ctx.access)


def _rows(p: PageCtx, inbox: notifications.Inbox) -> list[dict[str, Any]]:
    items = inbox.items
    wanted_users = sorted({n.actor_id for n, _ in items if n.actor_id})
    users = {u.id: u for u in p.db.scalars(select(User).where(User.id.in_(wanted_users)))} \
        if wanted_users else {}
    group_ids = sorted({n.group_id for n, _ in items})
    groups = {g.id: g for g in p.db.scalars(select(Group).where(Group.id.in_(group_ids)))} \
        if group_ids else {}
    comment_ids = sorted({n.comment_id for n, _ in items if n.comment_id})
    comments = {c.id: c for c in p.db.scalars(select(Comment).where(Comment.id.in_(comment_ids)))} \
        if comment_ids else {}
    activity_ids = sorted({n.activity_id for n, _ in items if n.activity_id})
    verbs = dict(p.db.execute(select(Activity.id, Activity.verb)
                              .where(Activity.id.in_(activity_ids))).tuples().all()) \
        if activity_ids else {}
    rows = []
    for note, doc in items:
        actor = users.get(note.actor_id or "")
        comment = comments.get(note.comment_id or "")
        live = comment is not None and comment.deleted_at is None
        rows.append({
            "note": note, "doc": doc, "actor": actor.name if actor is not None else None,
            "group": groups.get(note.group_id),
            "excerpt": markdown.plain_text(comment.body, 160) if live and comment else "",
            "verb": verbs.get(note.activity_id or ""),
        })
    return rows


def notifications_page(p: PageCtx) -> PageResult:
    query = p.ctx.conn.query_params
    offset_text = query.get("offset", "0")
    offset = int(offset_text) if offset_text.isdigit() and len(offset_text) < 7 else 0
    unread_only = query.get("unread") == "1"
    inbox = notifications.inbox(p.db, p.access, limit=PER_PAGE, offset=offset,
                                unread_only=unread_only)
    return Page("notifications.html", {
        "rows": _rows(p, inbox), "total": inbox.total, "unread": inbox.unread,
        "offset": offset, "per_page": PER_PAGE, "unread_only": unread_only,
        "done": query.get("done") == "read"})


def open_notification(p: PageCtx, nid: str) -> PageResult:
    """Mark one read and go to what it is about (a form post: no state change on GET)."""
    user = p.access.require_user()
    note = p.db.get(Notification, nid)
    if note is None or note.user_id != user.id:
        raise NotFound("Not found.")
    notifications.mark_read(p.db, p.access, [note.id])
    if note.document_id is None:
        return Redirect("/notifications")
    target = f"/documents/{note.document_id}"
    return Redirect(target + (f"#comment-{note.comment_id}" if note.comment_id else ""))


def read_all(p: PageCtx) -> PageResult:
    ids = p.form_lists.get("id") or None
    notifications.mark_read(p.db, p.access, ids[:500] if ids else None)
    return Redirect("/notifications?done=read")


def save_settings(p: PageCtx) -> PageResult:
    from app.pages.profile import profile_result

    user = p.access.require_user()
    values: dict[str, Any] = {key: p.form.get(key) == "1"
                              for key in ("mentions", "replies", "followed")}
    values["email"] = p.form.get("email", "")
    try:
        body = validate(NotificationSettingsIn, values)
    except ValidationError as exc:
        error: FormError = invalid(p.language, exc)
        return profile_result(p, error=error, form="notifications")
    notifications.update_settings(p.db, user.id, body.model_dump(exclude_none=True))
    return Redirect("/profile?done=notifications#notification-settings")


# -- activity -------------------------------------------------------------------------------

def activity_rows(p: PageCtx, feed: activity.Feed) -> list[dict[str, Any]]:
    """Feed entries for the page, each with ``new`` (after the person's seen mark, by someone
    else); a fixed number of queries per page."""
    me = p.access.require_user()
    seen = me.activity_seen_at
    rows = feed.items
    ids = {a.actor_id for a, _ in rows} | {(a.data or {}).get("user_id") for a, _ in rows}
    wanted = sorted(i for i in ids if i)
    users = {u.id: u.name for u in p.db.scalars(select(User).where(User.id.in_(wanted)))} \
        if wanted else {}
    group_ids = sorted({a.group_id for a, _ in rows})
    names = dict(p.db.execute(select(Group.id, Group.name).where(Group.id.in_(group_ids)))
                 .tuples().all()) if group_ids else {}
    out: list[dict[str, Any]] = []
    for item, doc in rows:
        data = dict(item.data or {})
        title: str | None = None
        link: str | None = None
        if item.verb == "document.trashed":
            title = str(data.get("title", ""))  # the title it had then; no link
        elif isinstance(doc, Document):
            title = doc.title
            comment = data.get("comment_id")
            link = f"/documents/{doc.id}" + (f"#comment-{comment}" if comment else "")
        out.append({
            "item": item, "verb": item.verb, "actor": users.get(item.actor_id or ""),
            "subject": users.get(str(data.get("user_id") or "")),
            "group_id": item.group_id, "group": names.get(item.group_id, ""),
            "title": title, "link": link,
            "new": item.actor_id != me.id and (seen is None or item.created_at > seen),
        })
    return out


def dashboard_activity(p: PageCtx, limit: int = 15) -> dict[str, Any]:
    feed = activity.feed(p.db, p.access, limit=limit)
    rows = activity_rows(p, feed)
    return {"activity": rows, "activity_new": sum(1 for r in rows if r["new"])}


def group_activity(p: PageCtx, gid: str) -> PageResult:
    group = groups.get_group(p.db, p.access, gid)
    if p.access.group_role(group.id) is None:
        raise Forbidden("Only members see a group's activity.")
    query = p.ctx.conn.query_params
    offset_text = query.get("offset", "0")
    offset = int(offset_text) if offset_text.isdigit() and len(offset_text) < 7 else 0
    feed = activity.feed(p.db, p.access, group_ids=[group.id], limit=PER_PAGE, offset=offset)
    return Page("group_activity.html", {"group": group, "activity": activity_rows(p, feed),
                                        "total": feed.total, "offset": offset,
                                        "per_page": PER_PAGE})


def mark_activity_seen(p: PageCtx) -> PageResult:
    from app.pages.home import safe_next

    p.access.require_user().activity_seen_at = utcnow()
    return Redirect(safe_next(p.form.get("next"), "/"))


def routes() -> list[BaseRoute]:
    post = ("POST",)
    return [
        page("/notifications", notifications_page),
        page("/notifications/read", read_all, methods=post),
        page("/notifications/{nid}/open", open_notification, methods=post),
        page("/profile/notifications", save_settings, methods=post),
        page("/activity/seen", mark_activity_seen, methods=post),
        page("/groups/{gid}/activity", group_activity),
    ]
