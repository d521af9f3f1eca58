"""Notifications: who is told about what, each person's settings, the read-time access
filter, and notification e-mail (immediate and daily digest).

A notification is only created for someone who may read its document at that moment, and it
is only *shown* (listed, counted, mailed) while they still may: losing access hides it at
once. Group-level notifications have no document: ``group_added`` (someone added you to a
group) is shown while you are a member; ``folder_trashed`` (told to the owners) while you
manage the group, i.e. may see and restore its trash.
E-mail carries who did what on which document and a link, never comment text: mail
leaves the encrypted store and is often forwarded or kept in other systems.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from app.access import Access, Action
from app.db import Database
from app.models import (
    GROUP_MANAGERS,
    Activity,
    Comment,
    Document,
    Folder,
    Follow,
    Group,
    GroupRole,
    Membership,
    MembershipState,
    Notification,
    NotificationSettings,
    User,
    utcnow,
)
from app.services import mail
from app.settings import Settings

log = logging.getLogger("plein.notifications")

# Which setting switches a kind on or off. Group-level kinds have no switch: they are rare and
# about one's own membership or the safety of the group's work (issue 17).
KIND_SETTING = {"mention": "mentions", "reply": "replies", "followed_activity": "followed"}
GROUP_KINDS = ("group_added", "folder_trashed")
DEFAULTS: dict[str, Any] = {"mentions": True, "replies": True, "followed": True,
                            "email": "daily"}
IMMEDIATE_WINDOW = timedelta(days=1)  # older unsent notifications are not mailed one by one
DIGEST_EVERY = timedelta(hours=24)
DIGEST_WINDOW = timedelta(days=7)


# -- settings -------------------------------------------------------------------------------

def get_settings(db: Session, user_id: str) -> NotificationSettings:
    found = db.get(NotificationSettings, user_id)
    return found if found is not None else NotificationSettings(user_id=user_id, **DEFAULTS)


def update_settings(db: Session, user_id: str, changes: dict[str, Any]) -> NotificationSettings:
    found = db.get(NotificationSettings, user_id)
    if found is None:
        found = NotificationSettings(user_id=user_id, **DEFAULTS)
        db.add(found)
    for key, value in changes.items():
        if key not in DEFAULTS:
            raise ValueError(f"unknown notification setting {key!r}")
        setattr(found, key, value)
    db.flush()
    return found


def _settings_of(db: Session, user_ids: Iterable[str]) -> dict[str, NotificationSettings]:
    ids = sorted(set(user_ids))
    rows = {s.user_id: s for s in db.scalars(
        select(NotificationSettings).where(NotificationSettings.user_id.in_(ids)))}
    return {uid: rows.get(uid) or NotificationSettings(user_id=uid, **DEFAULTS) for uid in ids}


# -- creating -------------------------------------------------------------------------------

def readers(db: Session, doc: Document) -> set[str]:
    """Everyone who may read ``doc`` now (app.access decides)."""
    return Access(db, None).document_reader_ids(doc)


def notify(db: Session, *, user_ids: Iterable[str], kind: str, actor_id: str | None,
           document: Document, activity: Activity | None = None,
           comment: Comment | None = None, readable_by: set[str] | None = None) -> list[str]:
    """Tell each person (not the actor) who may read the document and has this kind switched
    on. Returns the ids of the people notified."""
    allowed = readable_by if readable_by is not None else readers(db, document)
    wanted = [uid for uid in dict.fromkeys(user_ids) if uid != actor_id and uid in allowed]
    prefs = _settings_of(db, wanted)
    told: list[str] = []
    for uid in wanted:
        if not getattr(prefs[uid], KIND_SETTING[kind]):
            continue
        db.add(Notification(user_id=uid, kind=kind, actor_id=actor_id,
                            group_id=document.group_id, document_id=document.id,
                            activity_id=activity.id if activity is not None else None,
                            comment_id=comment.id if comment is not None else None))
        told.append(uid)
    db.flush()
    return told


def notify_group(db: Session, *, user_ids: Iterable[str], kind: str, actor_id: str | None,
                 group: Group, folder: Folder | None = None) -> list[str]:
    """A group-level notification (no document) to each person named, except the actor."""
    if kind not in GROUP_KINDS:
        raise ValueError(f"not a group-level notification kind: {kind!r}")
    told = [uid for uid in dict.fromkeys(user_ids) if uid != actor_id]
    for uid in told:
        db.add(Notification(user_id=uid, kind=kind, actor_id=actor_id, group_id=group.id,
                            folder_id=folder.id if folder is not None else None))
    db.flush()
    return told


def owners(db: Session, group_id: str) -> list[str]:
    return list(db.scalars(select(Membership.user_id).where(
        Membership.group_id == group_id, Membership.role == GroupRole.OWNER,
        Membership.state == MembershipState.MEMBER).order_by(Membership.user_id)))


def followers(db: Session, document_id: str) -> list[str]:
    return list(db.scalars(select(Follow.user_id).where(Follow.document_id == document_id)
                           .order_by(Follow.created_at)))


def notify_followers(db: Session, activity: Activity, document: Document,
                     *, skip: Iterable[str] = ()) -> list[str]:
    skipped = set(skip)
    return notify(db, user_ids=[u for u in followers(db, document.id) if u not in skipped],
                  kind="followed_activity", actor_id=activity.actor_id, document=document,
                  activity=activity)


def forget_comment(db: Session, comment_id: str) -> None:
    """A deleted comment takes its notifications with it."""
    for row in db.scalars(select(Notification).where(Notification.comment_id == comment_id)):
        db.delete(row)


# -- reading --------------------------------------------------------------------------------

def _visible(access: Access) -> ColumnElement[bool]:
    """This person's notifications about documents they may read now (``Document`` must be
    outer-joined on ``Notification.document_id``)."""
    user = access.require_user()
    folders = sorted(access.readable_folder_ids_all())
    groups = [gid for gid in access.memberships() if access.group_role(gid) is not None]
    managed = [gid for gid in groups if access.group_role(gid) in GROUP_MANAGERS]
    return and_(
        Notification.user_id == user.id,
        Notification.group_id.in_(groups),
        or_(Notification.kind != "folder_trashed", Notification.group_id.in_(managed)),
        or_(Notification.document_id.is_(None),
            and_(Document.trashed_at.is_(None), Document.folder_id.in_(folders))),
    )


@dataclass(frozen=True)
class Inbox:
    total: int
    unread: int
    items: list[tuple[Notification, Document | None]]


def inbox(db: Session, access: Access, *, limit: int = 50, offset: int = 0,
          unread_only: bool = False) -> Inbox:
    visible = _visible(access)
    base = (select(Notification, Document)
            .outerjoin(Document, Document.id == Notification.document_id).where(visible))
    unread = unread_count(db, access, visible)
    if unread_only:
        base = base.where(Notification.read_at.is_(None))
    total = db.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = db.execute(base.order_by(Notification.created_at.desc(), Notification.id.desc())
                      .limit(limit).offset(offset)).tuples()
    return Inbox(total=int(total), unread=unread, items=[(n, d) for n, d in rows])


def unread_count(db: Session, access: Access,
                 visible: ColumnElement[bool] | None = None) -> int:
    visible = visible if visible is not None else _visible(access)
    return int(db.scalar(
        select(func.count()).select_from(Notification)
        .outerjoin(Document, Document.id == Notification.document_id)
        .where(visible, Notification.read_at.is_(None))) or 0)


def mark_read(db: Session, access: Access, ids: Sequence[str] | None,
              now: datetime | None = None) -> int:
    """Mark some (or, with ``ids`` None, all) of the caller's notifications read. Ids of other
    people's notifications are ignored: nothing tells whether they exist. Only what the list
    would show counts and changes: a notification about a document the person can no longer
    read (closed folder, left group, trash) keeps its state, and the count says nothing of it."""
    user = access.require_user()
    shown = (select(Notification.id)
             .outerjoin(Document, Document.id == Notification.document_id)
             .where(_visible(access), Notification.read_at.is_(None)))
    if ids is not None:
        shown = shown.where(Notification.id.in_(list(ids)))
    query = update(Notification).where(Notification.user_id == user.id,
                                       Notification.id.in_(shown))
    result = db.execute(query.values(read_at=now or utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)


# -- e-mail ---------------------------------------------------------------------------------

_VERB_TEXT = {"document.version": "uploaded a new version of",
              "document.commented": "commented on"}


def _line(settings: Settings, note: Notification, actor: User | None, doc: Document,
          activity: Activity | None) -> str:
    who = actor.name if actor is not None else "Someone"
    if note.kind == "mention":
        what = f"{who} mentioned you in “{doc.title}”"
    elif note.kind == "reply":
        what = f"{who} replied in a discussion on “{doc.title}”"
    else:
        verb = _VERB_TEXT.get(activity.verb if activity is not None else "", "changed")
        what = f"{who} {verb} “{doc.title}”"
    return f"{what}\n  {document_url(settings, doc.id, note.comment_id)}"


def _group_line(session: Session, settings: Settings, access: Access,
                note: Notification) -> str | None:
    """The mail line of a group-level notification, if the person may still see its subject."""
    role = access.group_role(note.group_id)
    group = session.get(Group, note.group_id)
    if role is None or group is None:
        return None
    actor = session.get(User, note.actor_id) if note.actor_id else None
    who = actor.name if actor is not None else "Someone"
    base = settings.resolved_base_url
    if note.kind == "group_added":
        return f"{who} added you to the group “{group.name}”\n  {base}/groups/{group.id}"
    folder = session.get(Folder, note.folder_id) if note.folder_id else None
    if role not in GROUP_MANAGERS or folder is None:
        return None
    return (f"{who} moved the folder “{folder.name}” of “{group.name}” to the trash\n"
            f"  {base}/groups/{group.id}/trash")


def document_url(settings: Settings, document_id: str, comment_id: str | None = None) -> str:
    """Where a notification points (the document page; its discussion when about a comment)."""
    url = f"{settings.resolved_base_url}/documents/{document_id}"
    return url + (f"#comment-{comment_id}" if comment_id else "")


@dataclass
class _Batch:
    user: User
    ids: list[str]
    lines: list[str]


def _claim(session: Session, settings: Settings, rows: Sequence[Notification],
           now: datetime) -> list[_Batch]:
    """Mark ``rows`` as mailed (so no other sender takes them) and write one batch per person
    with what they may still read now."""
    by_user: dict[str, list[Notification]] = {}
    for row in rows:
        by_user.setdefault(row.user_id, []).append(row)
    batches: list[_Batch] = []
    for user_id, notes in by_user.items():
        user = session.get(User, user_id)
        for note in notes:
            note.emailed_at = now
        if user is None or not user.is_active:
            continue
        access = Access(session, user)
        lines: list[str] = []
        ids: list[str] = []
        for note in sorted(notes, key=lambda n: n.created_at):
            if note.kind in GROUP_KINDS:
                line = _group_line(session, settings, access, note)
                if line is not None:
                    lines.append(line)
                    ids.append(note.id)
                continue
            doc = session.get(Document, note.document_id) if note.document_id else None
            if doc is None or not access.can_document(Action.DOCUMENT_READ, doc):
                continue
            if note.comment_id is not None:
                comment = session.get(Comment, note.comment_id)
                if comment is None or comment.deleted_at is not None:
                    continue
            actor = session.get(User, note.actor_id) if note.actor_id else None
            activity = session.get(Activity, note.activity_id) if note.activity_id else None
            lines.append(_line(settings, note, actor, doc, activity))
            ids.append(note.id)
        if lines:
            batches.append(_Batch(user, ids, lines))
    session.flush()
    return batches


def _deliver(db: Database, settings: Settings, batches: list[_Batch], subject: str,
             intro: str) -> int:
    mails = []
    for batch in batches:
        single = len(batch.lines) == 1
        title = batch.lines[0].split("\n", 1)[0] if single else subject.format(
            n=len(batch.lines))
        text = (f"Hello {batch.user.name},\n\n{intro}\n\n" + "\n\n".join(batch.lines)
                + f"\n\nChoose what you receive: {settings.resolved_base_url}/account\n")
        mails.append(mail.Mail(to=batch.user.email, subject=title, text=text))
    try:
        sent = mail.send(settings, mails)
    except OSError as exc:
        log.warning("the mail server could not be reached (%s); retrying next round", exc)
        sent = [False] * len(mails)
    failed = [nid for batch, ok in zip(batches, sent, strict=True) if not ok
              for nid in batch.ids]
    if failed:
        with db.write() as session:  # give them back, so the next round tries again
            session.execute(update(Notification).where(Notification.id.in_(failed))
                            .values(emailed_at=None))
    return sum(1 for ok in sent if ok)


def _pending(mode: str, now: datetime) -> Any:
    window = IMMEDIATE_WINDOW if mode == "immediate" else DIGEST_WINDOW
    condition = NotificationSettings.email == mode
    if mode == "daily":  # the default: people without a settings row get the digest
        condition = or_(condition, NotificationSettings.user_id.is_(None))
    return (select(Notification)
            .outerjoin(NotificationSettings,
                       NotificationSettings.user_id == Notification.user_id)
            .where(condition, Notification.emailed_at.is_(None),
                   Notification.read_at.is_(None), Notification.created_at >= now - window))


def send_immediate(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """Mail unread, unmailed notifications of people who chose ``immediate`` (one message per
    person per round). Runs in the background mail task, after the commits that made them.
    Returns the number of messages the server accepted."""
    if not mail.enabled(settings):
        return 0
    now = now or utcnow()
    with db.write() as session:
        batches = _claim(session, settings, list(session.scalars(_pending("immediate", now))),
                         now)
    return _deliver(db, settings, batches, "Plein: {n} new notifications",
                    "There is something new for you on Plein:")


def send_digests(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """The daily digest: one message per person on ``daily`` (the default) who has unread,
    unmailed notifications and got no digest in the last 24 hours. Safe to call as often as
    one likes (the maintenance or mail loop does); returns the number of messages accepted."""
    if not mail.enabled(settings):
        return 0
    now = now or utcnow()
    with db.write() as session:
        rows = list(session.scalars(_pending("daily", now)))
        due_users = {r.user_id for r in rows}
        prefs = _settings_of(session, due_users)
        due = {uid for uid, pref in prefs.items()
               if pref.last_digest_at is None or now - pref.last_digest_at >= DIGEST_EVERY}
        rows = [r for r in rows if r.user_id in due]
        for uid in due:
            pref = prefs[uid]
            if pref not in session:
                session.add(pref)
            pref.last_digest_at = now
        batches = _claim(session, settings, rows, now)
    return _deliver(db, settings, batches, "Plein: your daily overview ({n} notifications)",
                    "Your daily overview of what happened on Plein:")


def mail_round(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """One round of the background mail task."""
    return send_immediate(db, settings, now) + send_digests(db, settings, now)
