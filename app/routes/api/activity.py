"""Activity feeds, notifications and notification settings. Every list is filtered by
app.access at read time (see app.services.activity and app.services.notifications)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Forbidden
from app.http.context import Ctx
from app.i18n import N_
from app.models import Activity, Comment, Folder, Group, User
from app.routes.api.registry import router
from app.schemas.accounts import PersonOut
from app.schemas.activity import (
    ActivityOut,
    ActivityPage,
    ActivityQuery,
    CommentRef,
    DocumentRef,
    FolderRef,
    GroupRef,
    NotificationOut,
    NotificationSettingsIn,
    NotificationSettingsOut,
    NotificationsPage,
    NotificationsQuery,
    NotificationsRead,
    ReadOut,
    UnreadOut,
)
from app.services import activity, discussions, groups, mail, markdown, notifications

TAG = "activity"


def _by_id(db: Session, model: Any, ids: Iterable[str | None]) -> dict[str, Any]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    return {row.id: row for row in db.scalars(select(model).where(model.id.in_(wanted)))}


def _person(users: dict[str, User], user_id: str | None) -> PersonOut | None:
    user = users.get(user_id or "")
    return PersonOut.of(user) if user is not None else None


def _comment_ref(comments: dict[str, Comment], comment_id: str | None) -> CommentRef | None:
    comment = comments.get(comment_id or "")
    if comment is None or comment.deleted_at is not None:
        return None
    return CommentRef(id=comment.id, thread_id=comment.parent_id or comment.id,
                      excerpt=markdown.plain_text(comment.body))


def _present_feed(ctx: Ctx, feed: activity.Feed) -> list[ActivityOut]:
    rows = feed.items
    users = discussions.people(ctx.db, [i for a, _ in rows
                                        for i in (a.actor_id, (a.data or {}).get("user_id"))])
    group_rows = _by_id(ctx.db, Group, [a.group_id for a, _ in rows])
    folder_ids = [d.folder_id if d is not None and a.verb != "document.trashed" else a.folder_id
                  for a, d in rows]
    folders = _by_id(ctx.db, Folder, folder_ids)
    comments = _by_id(ctx.db, Comment, [(a.data or {}).get("comment_id") for a, _ in rows])
    out: list[ActivityOut] = []
    for (item, doc), folder_id in zip(rows, folder_ids, strict=True):
        data = dict(item.data or {})
        group = group_rows[item.group_id]
        folder = folders.get(folder_id or "")
        document = None
        if item.verb == "document.trashed":
            # The title it had then: the document may since be restored somewhere closed.
            document = DocumentRef(id=item.document_id or "", title=str(data.get("title", "")),
                                   kind=doc.kind if doc is not None else "")
        elif doc is not None:
            document = DocumentRef(id=doc.id, title=doc.title, kind=doc.kind)
        out.append(ActivityOut(
            id=item.id, verb=item.verb, created_at=item.created_at,
            actor=_person(users, item.actor_id), group=GroupRef(id=group.id, name=group.name),
            folder=FolderRef(id=folder.id, name=folder.name) if folder is not None else None,
            document=document,
            subject=_person(users, data.get("user_id")) if item.verb.startswith("member.")
            else None,
            comment=_comment_ref(comments, data.get("comment_id")), data=data))
    return out


@router.route("GET", "/activity",
              summary="Activity in my groups, newest first (only what I may read now)",
              tag=TAG, response=ActivityPage, query=ActivityQuery)
def my_activity(ctx: Ctx, query: ActivityQuery) -> ActivityPage:
    feed = activity.feed(ctx.db, ctx.access, document_id=query.document_id, limit=query.limit,
                         offset=query.offset)
    return ActivityPage(total=feed.total, limit=query.limit, offset=query.offset,
                        items=_present_feed(ctx, feed))


@router.route("GET", "/groups/{gid}/activity",
              summary="Activity in one group (members only), newest first", tag=TAG,
              response=ActivityPage, query=ActivityQuery)
def group_activity(ctx: Ctx, gid: str, query: ActivityQuery) -> ActivityPage:
    group = groups.get_group(ctx.db, ctx.access, gid)
    if ctx.access.group_role(group.id) is None:
        raise Forbidden(N_("Only members see a group's activity."))
    feed = activity.feed(ctx.db, ctx.access, group_ids=[group.id],
                         document_id=query.document_id, limit=query.limit, offset=query.offset)
    return ActivityPage(total=feed.total, limit=query.limit, offset=query.offset,
                        items=_present_feed(ctx, feed))


def _present_inbox(ctx: Ctx, inbox: notifications.Inbox) -> list[NotificationOut]:
    rows = inbox.items
    users = discussions.people(ctx.db, [n.actor_id for n, _ in rows])
    group_rows = _by_id(ctx.db, Group, [n.group_id for n, _ in rows])
    comments = _by_id(ctx.db, Comment, [n.comment_id for n, _ in rows])
    activities = _by_id(ctx.db, Activity, [n.activity_id for n, _ in rows])
    folders = _by_id(ctx.db, Folder, [n.folder_id for n, _ in rows])
    out: list[NotificationOut] = []
    for note, doc in rows:
        group = group_rows[note.group_id]
        event = activities.get(note.activity_id or "")
        out.append(NotificationOut(
            id=note.id, kind=note.kind,
            created_at=note.created_at, read=note.read_at is not None, read_at=note.read_at,
            actor=_person(users, note.actor_id), group=GroupRef(id=group.id, name=group.name),
            document=DocumentRef(id=doc.id, title=doc.title, kind=doc.kind)
            if doc is not None else None,
            comment=_comment_ref(comments, note.comment_id),
            folder=FolderRef(id=folder.id, name=folder.name)
            if (folder := folders.get(note.folder_id or "")) is not None else None,
            verb=event.verb if event is not None else None))
    return out


@router.route("GET", "/notifications", summary="My notifications, newest first, with the "
              "unread count", tag=TAG, response=NotificationsPage, query=NotificationsQuery)
def list_notifications(ctx: Ctx, query: NotificationsQuery) -> NotificationsPage:
    inbox = notifications.inbox(ctx.db, ctx.access, limit=query.limit, offset=query.offset,
                                unread_only=query.unread)
    return NotificationsPage(total=inbox.total, unread=inbox.unread, limit=query.limit,
                             offset=query.offset, items=_present_inbox(ctx, inbox))


@router.route("GET", "/notifications/unread", summary="How many unread notifications I have",
              tag=TAG, response=UnreadOut)
def unread_notifications(ctx: Ctx) -> UnreadOut:
    return UnreadOut(unread=notifications.unread_count(ctx.db, ctx.access))


@router.route("POST", "/notifications/read",
              summary="Mark notifications read: the ids given, or all", tag=TAG,
              body=NotificationsRead, response=ReadOut)
def read_notifications(ctx: Ctx, body: NotificationsRead) -> ReadOut:
    marked = notifications.mark_read(ctx.db, ctx.access, body.ids)
    return ReadOut(marked=marked, unread=notifications.unread_count(ctx.db, ctx.access))


def _settings_out(ctx: Ctx) -> NotificationSettingsOut:
    found = notifications.get_settings(ctx.db, ctx.require_user().id)
    return NotificationSettingsOut(mentions=found.mentions, replies=found.replies,
                                   followed=found.followed,
                                   email=found.email,
                                   email_available=mail.enabled(ctx.settings))


@router.route("GET", "/users/me/notification-settings", summary="My notification settings",
              tag=TAG, response=NotificationSettingsOut)
def get_notification_settings(ctx: Ctx) -> NotificationSettingsOut:
    return _settings_out(ctx)


@router.route("PUT", "/users/me/notification-settings",
              summary="Change my notification settings (fields left out stay)", tag=TAG,
              body=NotificationSettingsIn, response=NotificationSettingsOut)
def put_notification_settings(ctx: Ctx, body: NotificationSettingsIn) -> NotificationSettingsOut:
    notifications.update_settings(ctx.db, ctx.require_user().id,
                                  body.model_dump(exclude_none=True))
    return _settings_out(ctx)

