"""The context builders several page modules share: what a document page (file or note), its
discussion panel and a folder page show, and the page each becomes when a form on it is
refused (with the message next to that form); the activity rows of the dashboard and of a
group's activity page.

The page modules import from here and never from each other; this module imports no page
module but the plumbing (:mod:`app.pages.framework`, :mod:`app.pages.forms`)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup
from sqlalchemy import select

from app.access import Action, FolderRole
from app.errors import HTTPError, NotFound
from app.models import (
    Activity,
    Comment,
    Document,
    DocumentVersion,
    Folder,
    Group,
    GroupRole,
    MembershipState,
    User,
)
from app.pages.forms import N_, FormError
from app.pages.framework import Page, PageCtx
from app.services import activity, discussions, documents, folders, groups, markdown, notes

API = "/api/v1"
THREADS_SHOWN = 200
MAX_UNNOTIFIED_SHOWN = 10

# Images the browser shows inline (an <img> is allowed by the CSP's img-src 'self'); anything
# else is offered as a download only.
PREVIEW_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif"})

_TYPES: tuple[tuple[str, str, str], ...] = (
    # (prefix or exact mime, icon key, label)
    ("application/pdf", "pdf", N_("PDF document")),
    ("image/", "image", N_("Image")),
    ("application/msword", "text", N_("Text document")),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml", "text", N_("Text document")),
    ("application/vnd.oasis.opendocument.text", "text", N_("Text document")),
    ("application/rtf", "text", N_("Text document")),
    ("application/vnd.ms-excel", "sheet", N_("Spreadsheet")),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml", "sheet", N_("Spreadsheet")),
    ("application/vnd.oasis.opendocument.spreadsheet", "sheet", N_("Spreadsheet")),
    ("text/csv", "sheet", N_("Spreadsheet")),
    ("application/vnd.ms-powerpoint", "slides", N_("Presentation")),
    ("application/vnd.openxmlformats-officedocument.presentationml", "slides", N_("Presentation")),
    ("application/vnd.oasis.opendocument.presentation", "slides", N_("Presentation")),
    ("text/", "text", N_("Text")),
    ("application/zip", "archive", N_("Archive")),
    ("application/x-7z", "archive", N_("Archive")),
    ("application/gzip", "archive", N_("Archive")),
    ("application/x-tar", "archive", N_("Archive")),
)


def kind_of(doc: Document) -> tuple[str, str]:
    """(icon key, label msgid) for a document: notes, then files by their sniffed type."""
    if doc.kind == "note":
        return "note", N_("Note")
    for prefix, icon, label in _TYPES:
        if doc.mime.startswith(prefix):
            return icon, label
    return "file", N_("File")


def color_index(user_id: str) -> int:
    """A person's caret colour: stable across pages and devices (palette of 8)."""
    return int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:4], "big") % 8


def _form_state(error: FormError | None, form: str | None,
                values: Mapping[str, str] | None) -> dict[str, Any]:
    """A refused form's message, the form it belongs to (shown next to it) and what was typed."""
    return {"values": values or {}, "error": error.message if error else None,
            "error_form": form if error else None}


# -- documents --------------------------------------------------------------------------------

def user_names(p: PageCtx, ids: set[str | None]) -> dict[str, str]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {u.id: u.name for u in p.db.scalars(select(User).where(User.id.in_(wanted)))}


def version_rows(p: PageCtx, doc: Document) -> list[tuple[DocumentVersion, str | None]]:
    rows = documents.versions(p.db, doc)
    names = user_names(p, {v.created_by for v in rows})
    return [(v, names.get(v.created_by or "")) for v in rows]


def version_kind(version: DocumentVersion) -> str:
    """``restored``, ``named`` (someone saved it) or ``automatic`` (the periodic snapshot)."""
    if version.restored_from is not None:
        return "restored"
    return "automatic" if version.created_by is None and not version.label else "named"


def document_context(p: PageCtx, doc: Document) -> dict[str, Any]:
    """What every document page shows: where it is and what the reader may do."""
    folder = p.db.get_one(Folder, doc.folder_id)
    icon, type_label = kind_of(doc)
    return {
        "doc": doc,
        "folder": folder,
        "group": p.db.get_one(Group, doc.group_id),
        "trail": folders.breadcrumbs(p.db, p.access, folder),
        "icon": icon,
        "type_label": type_label,
        "can_write": p.access.can_document(Action.DOCUMENT_WRITE, doc),
        "can_manage": p.access.can_document(Action.DOCUMENT_MANAGE, doc),
        "api": f"{API}/documents/{doc.id}",
    }


def file_page_result(p: PageCtx, doc: Document, *, error: FormError | None = None,
                     form: str | None = None, values: dict[str, str] | None = None) -> Page:
    context = document_context(p, doc)
    context.update(discussion_context(p, doc))
    context.update({
        "versions": version_rows(p, doc),
        "preview": doc.mime in PREVIEW_MIMES,
        "unchanged": p.query.get("unchanged") == "1",
        "max_upload": p.settings.max_upload_bytes,
        **_form_state(error, form, values),
    })
    return Page("document_file.html", context, status=error.status if error else 200)


def note_page_result(p: PageCtx, doc: Document, *, error: FormError | None = None,
                     form: str | None = None, values: dict[str, str] | None = None) -> Page:
    user = p.access.require_user()
    state = notes.current_state(p.runtime.live.manager, doc)
    context = document_context(p, doc)
    rows = version_rows(p, doc)
    context.update(discussion_context(p, doc))
    context.update({
        "content_html": note_html(p, state),
        "versions": [(v, name, version_kind(v)) for v, name in rows],
        "user_color": color_index(user.id),
        "diff_from": rows[1][0].number if len(rows) > 1 else None,
        "diff_to": rows[0][0].number if rows else None,
        **_form_state(error, form, values),
    })
    return Page("document_note.html", context, status=error.status if error else 200)


def note_html(p: PageCtx, state: bytes) -> Markup:
    # The renderer escapes all text and keeps only safe links (sync.render).
    return Markup(  # noqa: S704
        notes.render(state, "html", max_depth=p.settings.note_max_depth))


def document_page_result(p: PageCtx, doc: Document, *, error: FormError | None = None,
                         form: str | None = None, values: dict[str, str] | None = None
                         ) -> Page:
    """The document's own page (file or note), also as the answer of a refused form."""
    build = note_page_result if doc.kind == "note" else file_page_result
    return build(p, doc, error=error, form=form, values=values)


# -- the discussion panel ---------------------------------------------------------------------

@dataclass
class CommentView:
    """One comment as the panel shows it."""

    comment: Comment
    author: str | None
    html: Markup
    can_edit: bool
    can_delete: bool
    can_resolve: bool = False
    replies: list[CommentView] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.comment.id

    @property
    def deleted(self) -> bool:
        return self.comment.deleted_at is not None

    @property
    def resolved(self) -> bool:
        return self.comment.resolved_at is not None


def thread_views(p: PageCtx, doc: Document) -> tuple[int, list[CommentView]]:
    """The document's threads (oldest first) with the reader's rights, in a fixed number of
    queries: threads, replies, people, mentioned members."""
    total, items = discussions.threads(p.db, p.access, doc, limit=THREADS_SHOWN, offset=0)
    everything = [c for t in items for c in (t.root, *t.replies)]
    users: dict[str, User] = discussions.people(p.db, [c.author_id for c in everything])
    named = discussions.mention_people(p.db, doc.group_id,
                                       [c.body for c in everything if c.deleted_at is None])
    me = p.access.require_user().id
    may_write = p.access.can_document(Action.DOCUMENT_WRITE, doc)

    def one(comment: Comment) -> CommentView:
        deleted = comment.deleted_at is not None
        author = users.get(comment.author_id or "")
        # markdown.render sanitizes with nh3 (no raw HTML, safe URL schemes only): the result
        # is safe to insert as HTML, which is what Markup says.
        html = Markup("") if deleted else Markup(markdown.render(comment.body, named))  # noqa: S704
        return CommentView(
            comment=comment, author=author.name if author is not None else None, html=html,
            can_edit=not deleted and comment.author_id == me,
            can_delete=not deleted and discussions.may_delete(p.access, comment, doc),
            can_resolve=not deleted and (comment.author_id == me or may_write))

    views = []
    for thread in items:
        root = one(thread.root)
        root.replies = [one(r) for r in thread.replies]
        views.append(root)
    return total, views


def discussion_context(p: PageCtx, doc: Document) -> dict[str, Any]:
    """What the discussion panel needs on a document page (error state comes from the page's
    own ``error``/``error_form``/``values``)."""
    total, threads = thread_views(p, doc)
    unnotified = [m[:200] for m in p.query.getlist("unnotified")][:MAX_UNNOTIFIED_SHOWN]
    return {"threads": threads, "threads_total": total, "unnotified": unnotified,
            "comment_max": p.settings.comment_max_chars}


# -- folders ----------------------------------------------------------------------------------

def folder_page_result(p: PageCtx, folder: Folder, *, error: FormError | None = None,
                       form: str | None = None, values: dict[str, str] | None = None) -> Page:
    """The folder page; also the answer of a refused form on it. ``form`` names the form the
    error belongs to, so the message is shown next to it."""
    access = p.access
    group = p.db.get_one(Group, folder.group_id)
    role = access.folder_role(folder)
    can_manage = role is not None and role >= FolderRole.MANAGE
    context: dict[str, Any] = {
        "group": group,
        "folder": folder,
        "is_root": folder.parent_id is None,
        "trail": folders.breadcrumbs(p.db, access, folder),
        "children": [(child, access.effective_access(child))
                     for child in folders.children(p.db, access, folder)],
        "effective_access": access.effective_access(folder),
        "my_role": role.name.lower() if role else None,
        "can_write": role is not None and role >= FolderRole.EDIT,
        "can_manage": can_manage,
        "documents": document_rows(p, folder),
        "max_upload": p.settings.max_upload_bytes,
        "access_members": [],
        "grants": {},
        **_form_state(error, form, values),
    }
    if can_manage:
        context.update(_access_settings(p, group, folder))
    return Page("folder.html", context, status=error.status if error else 200)


def _access_settings(p: PageCtx, group: Group, folder: Folder) -> dict[str, Any]:
    """The access form of a folder's managers: whom it can be opened to, and who has what."""
    # Owners and admins always reach every folder, so only the other members are listed.
    return {
        "access_members": [user for membership, user in groups.members(p.db, group)
                           if membership.state == MembershipState.MEMBER
                           and membership.role == GroupRole.MEMBER],
        "grants": {m.user_id: m.role for m, _user in folders.folder_members(p.db, folder)},
    }


def document_rows(p: PageCtx, folder: Folder) -> list[dict[str, Any]]:
    rows = []
    for doc in documents.folder_documents(p.db, p.access, folder):
        icon, label = kind_of(doc)
        rows.append({"doc": doc, "icon": icon, "type_label": label})
    return rows


# -- activity ---------------------------------------------------------------------------------

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
        data = item.data or {}
        title, link = _activity_target(item, doc)
        out.append({
            "item": item, "verb": item.verb, "actor": users.get(item.actor_id or ""),
            "subject": users.get(str(data.get("user_id") or "")),
            "group_id": item.group_id, "group": names.get(item.group_id, ""),
            "title": title, "link": link,
            "new": item.actor_id != me.id and (seen is None or item.created_at > seen),
        })
    return out


def _activity_target(item: Activity, doc: Document | None) -> tuple[str | None, str | None]:
    """The document an entry is about: (title, link), both None for entries about no
    document."""
    data = item.data or {}
    if item.verb == "document.trashed":
        return str(data.get("title", "")), None  # the title it had then; no link
    if isinstance(doc, Document):
        comment = data.get("comment_id")
        return doc.title, f"/documents/{doc.id}" + (f"#comment-{comment}" if comment else "")
    return None, None


def dashboard_activity(p: PageCtx, limit: int = 15) -> dict[str, Any]:
    feed = activity.feed(p.db, p.access, limit=limit)
    rows = activity_rows(p, feed)
    return {"activity": rows, "activity_new": sum(1 for r in rows if r["new"])}


def in_trash_page(p: PageCtx, kind: str, item_id: str, missing: NotFound) -> Page:
    """An old link to a folder or document that was moved to the trash: for whoever may
    restore it, say so and offer to (issue 17: the link said "does not exist"); for anyone
    else ``missing``, the same 404 as ever."""
    item: Folder | Document
    try:
        if kind == "folder":
            item = folders.get_folder(p.db, p.access, item_id, Action.TRASH_RESTORE)
        else:
            item = documents.get_document(p.db, p.access, item_id, Action.TRASH_RESTORE)
    except HTTPError:
        raise missing from None
    if item.trashed_at is None:  # inside a trashed folder: that folder is what comes back
        raise missing
    by = p.db.get(User, item.trashed_by) if item.trashed_by else None
    return Page("in_trash.html", {
        "kind": kind, "item": item, "group": p.db.get_one(Group, item.group_id),
        "name": item.name if isinstance(item, Folder) else item.title,
        "trashed_by": by.name if by else None})
