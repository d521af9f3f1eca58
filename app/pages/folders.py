"""Folder pages: the folder browser (sub-folders, documents, new note, upload, create, rename,
trash, access settings) and the group's trash (folders and documents)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.routing import BaseRoute

from app.access import Action, FolderRole
from app.models import Folder, Group
from app.pages.forms import FormError, attempt, validate
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page
from app.schemas.folders import FolderAccessIn, FolderCreate, FolderUpdate
from app.services import documents, folders, groups
from app.services.folders import FolderGrant


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
        "values": values or {},
        "error": error.message if error else None,
        "error_form": form if error else None,
    }
    if can_manage:
        # Owners and admins always reach every folder, so only the other members are listed.
        context["access_members"] = [
            user for membership, user in groups.members(p.db, group)
            if membership.state == "member" and membership.role == "member"
        ]
        context["grants"] = {m.user_id: m.role for m, _user in folders.folder_members(p.db, folder)}
    return Page("folder.html", context, status=error.status if error else 200)


def document_rows(p: PageCtx, folder: Folder) -> list[dict[str, Any]]:
    from app.pages.documents import kind_of

    rows = []
    for doc in documents.folder_documents(p.db, p.access, folder):
        icon, label = kind_of(doc)
        rows.append({"doc": doc, "icon": icon, "type_label": label})
    return rows


def folder_page(p: PageCtx, fid: str) -> PageResult:
    return folder_page_result(p, folders.get_folder(p.db, p.access, fid))


def create_folder(p: PageCtx, fid: str) -> PageResult:
    parent = folders.get_folder(p.db, p.access, fid)
    values = {"name": p.form.get("name", ""), "access": p.form.get("access", "")}

    def create() -> Folder:
        body = validate(FolderCreate, {"name": values["name"], "access": values["access"] or None})
        return folders.create_folder(p.db, p.access, parent, name=body.name,
                                     folder_access=body.access)

    result = attempt(p, create)
    if isinstance(result, FormError):
        return folder_page_result(p, parent, error=result, form="create", values=values)
    return Redirect(f"/folders/{parent.id}#folders")


def rename_folder(p: PageCtx, fid: str) -> PageResult:
    folder = folders.get_folder(p.db, p.access, fid)
    values = {"name": p.form.get("name", "")}

    def rename() -> None:
        body = validate(FolderUpdate, values)
        if body.name is not None:
            folders.rename_folder(p.db, p.access, folder, body.name)

    result = attempt(p, rename)
    if isinstance(result, FormError):
        return folder_page_result(p, folder, error=result, form="rename", values=values)
    return Redirect(f"/folders/{folder.id}")


def trash_folder(p: PageCtx, fid: str) -> PageResult:
    folder = folders.get_folder(p.db, p.access, fid)
    result = attempt(p, lambda: folders.trash_folder(p.db, p.access, folder))
    if isinstance(result, FormError):
        return folder_page_result(p, folder, error=result, form="trash")
    return Redirect(f"/folders/{folder.parent_id}")


def set_access(p: PageCtx, fid: str) -> PageResult:
    folder = folders.get_folder(p.db, p.access, fid, Action.FOLDER_MANAGE)
    # One checkbox ("member") and one select ("role-<user id>") per group member.
    chosen = p.form_lists.get("member", [])
    members = [{"user_id": uid, "role": p.form.get(f"role-{uid}", "viewer")} for uid in chosen]

    def apply() -> None:
        body = validate(FolderAccessIn, {"access": p.form.get("access", ""), "members": members})
        grants = [FolderGrant(m.user_id, m.role) for m in body.members or []]
        folders.set_access(p.db, p.access, folder, folder_access=body.access, grants=grants)

    result = attempt(p, apply)
    if isinstance(result, FormError):
        return folder_page_result(p, folder, error=result, form="access")
    return Redirect(f"/folders/{folder.id}#access")


def trash_page_result(p: PageCtx, group: Group, error: FormError | None = None) -> Page:
    from app.pages.documents import kind_of

    items = folders.trash_items(p.db, p.access, group)
    trashed = documents.trashed_documents(p.db, p.access, group)
    return Page("trash.html", {
        "group": group,
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


def routes() -> list[BaseRoute]:
    post = ("POST",)
    return [
        page("/folders/{fid}", folder_page),
        page("/folders/{fid}/folders", create_folder, methods=post),
        page("/folders/{fid}/rename", rename_folder, methods=post),
        page("/folders/{fid}/trash", trash_folder, methods=post),
        page("/folders/{fid}/access", set_access, methods=post),
        page("/folders/{fid}/restore", restore_folder, methods=post),
        page("/folders/{fid}/purge", purge_folder, methods=post),
        page("/groups/{gid}/trash", trash_page),
    ]
