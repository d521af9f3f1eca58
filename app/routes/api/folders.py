"""Folders: browse, create, rename, move, trash, restore, purge, and access settings."""

from __future__ import annotations

from datetime import UTC, datetime

from app.access import Action
from app.errors import NotFound
from app.http.context import Ctx
from app.i18n import N_
from app.models import Folder
from app.routes.api.registry import router
from app.schemas.folders import (
    FolderAccessIn,
    FolderCreate,
    FolderMemberOut,
    FolderOut,
    FolderSummary,
    FolderUpdate,
    TrashItemOut,
)
from app.services import documents, folders, groups
from app.services.folders import FolderGrant

TAG = "folders"


def folder_out(ctx: Ctx, folder: Folder) -> FolderOut:
    members = None
    if ctx.access.can_folder(Action.FOLDER_MANAGE, folder):
        members = [FolderMemberOut.of(m, u) for m, u in folders.folder_members(ctx.db, folder)]
    trail = folders.breadcrumbs(ctx.db, ctx.access, folder)
    return FolderOut.build(folder, ctx.access, trail=trail,
                           children=folders.children(ctx.db, ctx.access, folder), members=members,
                           documents=documents.folder_documents(ctx.db, ctx.access, folder))


@router.route("GET", "/folders/{fid}", summary="A folder with the children you may see", tag=TAG,
              response=FolderOut)
def get_folder(ctx: Ctx, fid: str) -> FolderOut:
    return folder_out(ctx, folders.get_folder(ctx.db, ctx.access, fid))


@router.route("POST", "/folders/{fid}/folders", summary="Create a sub-folder", tag=TAG,
              body=FolderCreate, response=FolderSummary, status=201)
def create_folder(ctx: Ctx, fid: str, body: FolderCreate) -> FolderSummary:
    parent = folders.get_folder(ctx.db, ctx.access, fid)
    folder = folders.create_folder(ctx.db, ctx.access, parent, name=body.name,
                                   folder_access=body.access)
    return FolderSummary.of(folder, ctx.access)


@router.route("PATCH", "/folders/{fid}", summary="Rename or move a folder", tag=TAG,
              body=FolderUpdate, response=FolderSummary)
def update_folder(ctx: Ctx, fid: str, body: FolderUpdate) -> FolderSummary:
    folder = folders.get_folder(ctx.db, ctx.access, fid)
    if body.parent_id is not None and body.parent_id != folder.parent_id:
        target = ctx.db.get(Folder, body.parent_id)
        if target is None or not ctx.access.can_folder(Action.FOLDER_READ, target):
            raise NotFound(N_("No such target folder."), field="parent_id")
        folders.move_folder(ctx.db, ctx.access, folder, target)
    if body.name is not None:
        folders.rename_folder(ctx.db, ctx.access, folder, body.name)
    return FolderSummary.of(folder, ctx.access)


@router.route("DELETE", "/folders/{fid}", summary="Move a folder to the group's trash", tag=TAG,
              status=204)
def trash_folder(ctx: Ctx, fid: str) -> None:
    folders.trash_folder(ctx.db, ctx.access, folders.get_folder(ctx.db, ctx.access, fid))


@router.route("POST", "/folders/{fid}/restore", summary="Bring a folder back from the trash",
              tag=TAG, response=FolderSummary)
def restore_folder(ctx: Ctx, fid: str) -> FolderSummary:
    folder = folders.get_folder(ctx.db, ctx.access, fid, Action.TRASH_RESTORE)
    folders.restore_folder(ctx.db, ctx.access, folder)
    return FolderSummary.of(folder, ctx.access)


@router.route("DELETE", "/folders/{fid}/purge", summary="Remove a trashed folder for good",
              tag=TAG, status=204)
def purge_folder(ctx: Ctx, fid: str) -> None:
    folder = folders.get_folder(ctx.db, ctx.access, fid, Action.TRASH_PURGE)
    folders.purge_folder(ctx.db, ctx.access, folder)


@router.route("PUT", "/folders/{fid}/access",
              summary="Open or close a folder (owners and admins)", tag=TAG,
              body=FolderAccessIn, response=FolderOut)
def set_folder_access(ctx: Ctx, fid: str, body: FolderAccessIn) -> FolderOut:
    folder = folders.get_folder(ctx.db, ctx.access, fid, Action.FOLDER_MANAGE)
    grants = [FolderGrant(m.user_id, m.role) for m in body.members or []]
    folders.set_access(ctx.db, ctx.access, folder, folder_access=body.access, grants=grants)
    return folder_out(ctx, folder)


@router.route("GET", "/groups/{gid}/trash", summary="The group's trash (what you may restore)",
              tag=TAG, response=list[TrashItemOut])
def list_trash(ctx: Ctx, gid: str) -> list[TrashItemOut]:
    group = groups.get_group(ctx.db, ctx.access, gid, Action.TRASH_VIEW)
    items = [TrashItemOut.of(f) for f in folders.trash_items(ctx.db, ctx.access, group)]
    items += [TrashItemOut.of_document(d)
              for d in documents.trashed_documents(ctx.db, ctx.access, group)]
    return sorted(items, key=lambda item: item.trashed_at or datetime.min.replace(tzinfo=UTC),
                  reverse=True)
