"""Notifications for people: the header badge (unread count, added to every page by
:func:`header_context`) and the /notifications page (list, open = mark read and go to the
comment, mark all read). Everything goes through :mod:`app.services.notifications`, which
filters by access at read time. The settings form is on the profile page
(:mod:`app.pages.profile`), "what happened in my groups" is :mod:`app.pages.activity`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from starlette.routing import BaseRoute

from app.errors import NotFound
from app.http.context import Ctx
from app.models import Activity, Comment, Folder, Group, Notification, User
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page
from app.services import markdown, notifications

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


def header_context(ctx: Ctx) -> dict[str, Any]:
    """The badge on every page's header (a context processor, see app.pages.page_context)."""
    return {"unread_notifications": unread_badge(ctx)}


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
    folder_ids = sorted({n.folder_id for n, _ in items if n.folder_id})
    folders = {f.id: f for f in p.db.scalars(select(Folder).where(Folder.id.in_(folder_ids)))} \
        if folder_ids else {}
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
            "folder": folders.get(note.folder_id or ""),
        })
    return rows


def notifications_page(p: PageCtx) -> PageResult:
    query = p.query
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
    if note.kind == "group_added":
        return Redirect(f"/groups/{note.group_id}")
    if note.kind == "folder_trashed":
        return Redirect(f"/groups/{note.group_id}/trash")
    if note.document_id is None:
        return Redirect("/notifications")
    target = f"/documents/{note.document_id}"
    return Redirect(target + (f"#comment-{note.comment_id}" if note.comment_id else ""))


def read_all(p: PageCtx) -> PageResult:
    ids = p.form_lists.get("id") or None
    notifications.mark_read(p.db, p.access, ids[:500] if ids else None)
    return Redirect("/notifications?done=read")


def routes() -> list[BaseRoute]:
    post = ("POST",)
    return [
        page("/notifications", notifications_page),
        page("/notifications/read", read_all, methods=post),
        page("/notifications/{nid}/open", open_notification, methods=post),
    ]
