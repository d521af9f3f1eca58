"""A group's trash: the page (trashed folders and documents), restoring from it and removing
for good. A refusal shows the trash page with the message."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from starlette.routing import BaseRoute

from app.access import Action
from app.models import Group, User
from app.pages.context import kind_of
from app.pages.forms import FormError, attempt
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page
from app.services import documents, folders, groups


def trash_page_result(p: PageCtx, group: Group, error: FormError | None = None) -> Page:
    items = folders.trash_items(p.db, p.access, group)
    trashed = documents.trashed_documents(p.db, p.access, group)
    # Who moved each item to the trash, in one query for the whole list (issue 17: a folder
    # vanished and nobody could tell who had done it).
    trashers = {by for by in [*(f.trashed_by for f in items), *(d.trashed_by for d in trashed)]
                if by}
    names = {u.id: u.name for u in p.db.scalars(select(User).where(User.id.in_(trashers)))
             } if trashers else {}
    return Page("trash.html", {
        "group": group,
        "trashed_by": names,
        "items": [(item, p.access.can_folder(Action.TRASH_PURGE, item)) for item in items],
        "documents": [(doc, kind_of(doc), p.access.can_document(Action.TRASH_PURGE, doc))
                      for doc in trashed],
        "error": error.message if error else None,
    }, status=error.status if error else 200)


def trash_page(p: PageCtx, gid: str) -> PageResult:
    return trash_page_result(p, groups.get_group(p.db, p.access, gid, Action.TRASH_VIEW))


def trash_action(p: PageCtx, group_id: str, act: Callable[[], object], done: str
                 ) -> PageResult:
    """Restore or purge from the trash page: on refusal show the trash page with the message,
    else go to ``done``."""
    result = attempt(p, act)
    if isinstance(result, FormError):
        return trash_page_result(p, p.db.get_one(Group, group_id), result)
    return Redirect(done)


def restore_folder(p: PageCtx, fid: str) -> PageResult:
    folder = folders.get_folder(p.db, p.access, fid, Action.TRASH_RESTORE)
    return trash_action(p, folder.group_id,
                        lambda: folders.restore_folder(p.db, p.access, folder),
                        f"/folders/{folder.id}")


def purge_folder(p: PageCtx, fid: str) -> PageResult:
    folder = folders.get_folder(p.db, p.access, fid, Action.TRASH_PURGE)
    return trash_action(p, folder.group_id,
                        lambda: folders.purge_folder(p.db, p.access, folder),
                        f"/groups/{folder.group_id}/trash")


def restore_document(p: PageCtx, doc_id: str) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id, Action.TRASH_RESTORE)
    return trash_action(p, doc.group_id, lambda: documents.restore_document(p.access, doc),
                        f"/documents/{doc.id}")


def purge_document(p: PageCtx, doc_id: str) -> PageResult:
    doc = documents.get_document(p.db, p.access, doc_id, Action.TRASH_PURGE)
    return trash_action(p, doc.group_id,
                        lambda: documents.purge_document(p.db, p.access, doc),
                        f"/groups/{doc.group_id}/trash")


def routes() -> list[BaseRoute]:
    post = ("POST",)
    return [
        page("/groups/{gid}/trash", trash_page),
        page("/folders/{fid}/restore", restore_folder, methods=post),
        page("/folders/{fid}/purge", purge_folder, methods=post),
        page("/documents/{doc_id}/restore", restore_document, methods=post),
        page("/documents/{doc_id}/purge", purge_document, methods=post),
    ]
