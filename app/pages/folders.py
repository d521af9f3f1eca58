"""Folder pages: the folder browser (sub-folders, documents, new note, upload, create, rename,
trash, access settings); the page itself is built in :mod:`app.pages.context`, the group's
trash is :mod:`app.pages.trash`."""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.access import Action
from app.errors import NotFound, Unprocessable
from app.i18n import N_
from app.models import Folder, FolderMemberRole
from app.pages.context import folder_page_result, in_trash_page
from app.pages.forms import FormError, attempt, validate
from app.pages.framework import Page, PageCtx, PageResult, Redirect, page
from app.pages.notices import saved
from app.schemas.folders import FolderAccessIn, FolderCreate, FolderUpdate
from app.services import folders, groups
from app.services.folders import FolderGrant


def folder_page(p: PageCtx, fid: str) -> PageResult:
    try:
        folder = folders.get_folder(p.db, p.access, fid)
    except NotFound as missing:
        return in_trash_page(p, "folder", fid, missing)
    return folder_page_result(p, folder)


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
    return Redirect(saved(f"/folders/{parent.id}#folders", "folder"))


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
    return Redirect(saved(f"/folders/{folder.id}", "name"))


def trash_folder(p: PageCtx, fid: str) -> PageResult:
    folder = folders.get_folder(p.db, p.access, fid)
    if p.method == "GET":
        # Confirm first, saying what goes along (the form on the folder page leads here).
        folders.get_folder(p.db, p.access, fid, Action.FOLDER_WRITE)
        if folder.parent_id is None:
            raise Unprocessable(N_("The root folder cannot be deleted."), code="root_folder")
        return Page("folder_trash.html", {
            "folder": folder, "group": groups.get_group(p.db, p.access, folder.group_id),
            "contents": folders.trash_contents(p.db, p.access, folder),
            "allowed": folders.may_trash(p.db, p.access, folder)})
    result = attempt(p, lambda: folders.trash_folder(p.db, p.access, folder))
    if isinstance(result, FormError):
        return folder_page_result(p, folder, error=result, form="trash")
    return Redirect(f"/folders/{folder.parent_id}")


def set_access(p: PageCtx, fid: str) -> PageResult:
    folder = folders.get_folder(p.db, p.access, fid, Action.FOLDER_MANAGE)
    # One checkbox ("member") and one select ("role-<user id>") per group member.
    chosen = p.form_lists.get("member", [])
    members = [{"user_id": uid, "role": p.form.get(f"role-{uid}", FolderMemberRole.VIEWER)}
               for uid in chosen]

    def apply() -> None:
        body = validate(FolderAccessIn, {"access": p.form.get("access", ""), "members": members})
        grants = [FolderGrant(m.user_id, m.role) for m in body.members or []]
        folders.set_access(p.db, p.access, folder, folder_access=body.access, grants=grants)

    result = attempt(p, apply)
    if isinstance(result, FormError):
        return folder_page_result(p, folder, error=result, form="access")
    return Redirect(saved(f"/folders/{folder.id}#access", "access"))


def routes() -> list[BaseRoute]:
    post = ("POST",)
    return [
        page("/folders/{fid}", folder_page),
        page("/folders/{fid}/folders", create_folder, methods=post),
        page("/folders/{fid}/rename", rename_folder, methods=post),
        page("/folders/{fid}/trash", trash_folder, methods=("GET", "POST")),
        page("/folders/{fid}/access", set_access, methods=post),
    ]
