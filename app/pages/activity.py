"""Activity for people: "what happened in my groups", the dashboard's list and a group's
activity page (the rows are built in :mod:`app.pages.context`, the dashboard shares them).
Everything goes through :mod:`app.services.activity`, which filters by access
at read time.

Unread markers on activity: ``users.activity_seen_at`` (migration 0005) is the moment the
person last marked their groups' activity seen; entries by others after it are "new". It is
moved by an explicit form post ("Mark as seen"), not by viewing the dashboard: a GET stays
read-only (no write transaction, no SQLite write lock per page view), and nothing is marked
seen just because a page was opened in a background tab. Notification read state was not
reused: most activity (new documents, versions, members) never becomes a notification."""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.errors import Forbidden
from app.models import utcnow
from app.pages.context import activity_rows
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page, safe_next
from app.services import activity, groups

PER_PAGE = 50


def group_activity(p: PageCtx, gid: str) -> PageResult:
    group = groups.get_group(p.db, p.access, gid)
    if p.access.group_role(group.id) is None:
        raise Forbidden("Only members see a group's activity.")
    query = p.query
    offset_text = query.get("offset", "0")
    offset = int(offset_text) if offset_text.isdigit() and len(offset_text) < 7 else 0
    feed = activity.feed(p.db, p.access, group_ids=[group.id], limit=PER_PAGE, offset=offset)
    return Page("group_activity.html", {"group": group, "activity": activity_rows(p, feed),
                                        "total": feed.total, "offset": offset,
                                        "per_page": PER_PAGE})


def mark_activity_seen(p: PageCtx) -> PageResult:
    p.access.require_user().activity_seen_at = utcnow()
    return Redirect(safe_next(p.form.get("next"), "/"))


def routes() -> list[BaseRoute]:
    return [
        page("/activity/seen", mark_activity_seen, methods=("POST",)),
        page("/groups/{gid}/activity", group_activity),
    ]
