"""Folders: create, rename, move, trash and restore, and per-folder access (open or closed with
a member list). The rule "never wider than the parent" is enforced here on every change and by
:mod:`app.access` on every read."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.access import Access, Action, FolderRole
from app.errors import BadRequest, Conflict, Forbidden, Unprocessable
from app.i18n import N_
from app.models import (
    AccessLevel,
    Document,
    DocumentVersion,
    Folder,
    FolderMember,
    FolderMemberRole,
    Group,
    Membership,
    MembershipState,
    User,
    utcnow,
)
from app.services import activity, audit, notifications


@dataclass(frozen=True)
class FolderGrant:
    user_id: str
    role: str  # viewer | editor


def get_folder(db: Session, access: Access, folder_id: str, action: Action = Action.FOLDER_READ
               ) -> Folder:
    return access.require_folder(action, db.get(Folder, folder_id))


def children(db: Session, access: Access, folder: Folder) -> list[Folder]:
    """Sub-folders the caller may read: one query for the rows, the access tree is cached."""
    readable = access.readable_folder_ids(folder.group_id)
    rows = db.scalars(select(Folder).where(Folder.parent_id == folder.id,
                                           Folder.trashed_at.is_(None)))
    return sorted((f for f in rows if f.id in readable), key=lambda f: (f.name.lower(), f.id))


def breadcrumbs(db: Session, access: Access, folder: Folder) -> list[Folder]:
    trail: list[Folder] = []
    current: Folder | None = folder
    while current is not None:
        trail.append(current)
        current = db.get(Folder, current.parent_id) if current.parent_id else None
    trail.reverse()
    return trail


def create_folder(db: Session, access: Access, parent: Folder, *, name: str,
                  folder_access: str | None) -> Folder:
    user = access.require_user()
    access.require_folder(Action.FOLDER_WRITE, parent)
    if folder_access == AccessLevel.CLOSED:
        access.require_folder(Action.FOLDER_MANAGE, parent)
    folder = Folder(group_id=parent.group_id, parent_id=parent.id, name=name.strip(),
                    access=folder_access or AccessLevel.OPEN, created_by=user.id)
    db.add(folder)
    db.flush()
    access.forget()
    return folder


def rename_folder(db: Session, access: Access, folder: Folder, name: str) -> None:
    if folder.parent_id is None:
        access.require_folder(Action.FOLDER_MANAGE, folder)
    else:
        access.require_folder(Action.FOLDER_WRITE, folder)
    folder.name = name.strip()


def move_folder(db: Session, access: Access, folder: Folder, target: Folder) -> None:
    """Moving changes who can read a whole subtree, so it is a manager's act on both ends."""
    access.require_folder(Action.FOLDER_MANAGE, folder)
    access.require_folder(Action.FOLDER_MANAGE, target)
    if folder.parent_id is None:
        raise Unprocessable(N_("The root folder cannot be moved."), code="root_folder")
    if target.group_id != folder.group_id:
        raise Unprocessable(N_("Folders move within their group only."), code="other_group",
                            field="parent_id")
    node: Folder | None = target
    while node is not None:
        if node.id == folder.id:
            raise Unprocessable(N_("A folder cannot move into itself."), code="cycle",
                                field="parent_id")
        node = db.get(Folder, node.parent_id) if node.parent_id else None
    # Member lists below stay as they are: reads intersect along the new path, so the subtree
    # is at once no wider than its new parent.
    folder.parent_id = target.id
    db.flush()
    access.forget()


def trash_folder(db: Session, access: Access, folder: Folder) -> None:
    user = access.require_user()
    access.require_folder(Action.FOLDER_WRITE, folder)
    if folder.parent_id is None:
        raise Unprocessable(N_("The root folder cannot be deleted."), code="root_folder")
    parent = db.get(Folder, folder.parent_id)
    if parent is not None:
        access.require_folder(Action.FOLDER_WRITE, parent)
    # The trash (and the purge after PLEIN_TRASH_DAYS) takes the whole subtree: a closed
    # sub-folder this person cannot change (or even see) must not go with it. We refuse rather
    # than trash only the allowed part, which would tear the tree apart behind the person's
    # back; the refusal says only that such a folder exists, never its name or contents.
    if not access.can_change_subtree(folder):
        raise Forbidden(N_("This folder holds folders you may not change; ask an owner or admin "
                        "to delete it."), code="subfolders_not_allowed")
    # Issue 17: an editor trashed a whole folder of everyone's work with one click. A folder
    # goes to the trash by an owner or admin, or by whoever made it while all in it is theirs.
    if not access.can_folder(Action.FOLDER_MANAGE, folder) and not _only_work_of(
            db, folder, user.id):
        raise Forbidden(N_("Only the group's owners and admins may move this folder to the "
                           "trash: it holds work of others."), code="trash_not_allowed")
    folder.trashed_at = utcnow()
    folder.trashed_by = user.id
    audit.record(db, "folder.trashed", actor_id=user.id, object_type="folder",
                 object_id=folder.id, group_id=folder.group_id)
    access.forget()
    # Issue 17: the owners hear of it (who, which folder), whoever did it.
    group = db.get_one(Group, folder.group_id)
    notifications.notify_group(db, user_ids=notifications.owners(db, folder.group_id),
                               kind="folder_trashed", actor_id=user.id, group=group,
                               folder=folder)


@dataclass
class Contents:
    """What trashing a folder takes along, as far as this person can see: said before they
    confirm (issue 17: a whole folder went with one click, nobody knew what was in it)."""

    documents: int
    folders: int


def trash_contents(db: Session, access: Access, folder: Folder) -> Contents:
    """The documents and sub-folders (not already in the trash) in ``folder``'s subtree that
    this person may read: two queries whatever the size of the tree."""
    rows = db.scalars(select(Folder).where(Folder.group_id == folder.group_id,
                                           Folder.trashed_at.is_(None))).all()
    children: dict[str | None, list[Folder]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)
    below: list[Folder] = []
    pending = list(children.get(folder.id, []))
    while pending:
        current = pending.pop()
        if access.can_folder(Action.FOLDER_READ, current):
            below.append(current)
            pending.extend(children.get(current.id, []))
    ids = [folder.id, *(f.id for f in below)]
    documents = db.scalar(select(func.count()).select_from(Document).where(
        Document.folder_id.in_(ids), Document.trashed_at.is_(None))) or 0
    return Contents(documents=documents, folders=len(below))


def may_trash(db: Session, access: Access, folder: Folder) -> bool:
    """Whether :func:`trash_folder` would let this person trash ``folder`` (for a page that
    asks before it tries)."""
    user = access.user
    return user is not None and folder.parent_id is not None and \
        access.can_change_subtree(folder) and (
            access.can_folder(Action.FOLDER_MANAGE, folder)
            or _only_work_of(db, folder, user.id))


def _only_work_of(db: Session, folder: Folder, user_id: str) -> bool:
    """Whether ``user_id`` made ``folder``, every folder below it and every document (and
    uploaded version) in them, trashed ones included (a purge takes those too). Three queries.
    Others' typing in a note is not looked at: a note counts as its creator's work."""
    if folder.created_by != user_id:
        return False
    rows = db.execute(select(Folder.id, Folder.parent_id, Folder.created_by)
                      .where(Folder.group_id == folder.group_id)).all()
    children: dict[str | None, list[tuple[str, str | None]]] = {}
    for fid, parent_id, created_by in rows:
        children.setdefault(parent_id, []).append((fid, created_by))
    ids, pending = [folder.id], [folder.id]
    while pending:
        for fid, created_by in children.get(pending.pop(), []):
            if created_by != user_id:
                return False
            ids.append(fid)
            pending.append(fid)
    others = db.scalar(select(func.count()).select_from(Document).where(
        Document.folder_id.in_(ids),
        (Document.created_by != user_id) | Document.created_by.is_(None)))
    if others:
        return False
    versions = db.scalar(select(func.count()).select_from(DocumentVersion).join(
        Document, Document.id == DocumentVersion.document_id).where(
        Document.folder_id.in_(ids),
        (DocumentVersion.created_by != user_id) | DocumentVersion.created_by.is_(None)))
    return not versions


def restore_folder(db: Session, access: Access, folder: Folder) -> None:
    access.require_folder(Action.TRASH_RESTORE, folder)
    if folder.trashed_at is None:
        raise Conflict(N_("This folder is not in the trash."), code="not_in_trash")
    parent = db.get(Folder, folder.parent_id) if folder.parent_id else None
    if parent is not None and access.in_trash(parent):
        raise Conflict(N_("Restore the folder it was in first."), code="parent_in_trash")
    folder.trashed_at = None
    folder.trashed_by = None
    audit.record(db, "folder.restored", actor_id=access.require_user().id,
                 object_type="folder", object_id=folder.id, group_id=folder.group_id)
    access.forget()


def purge_folder(db: Session, access: Access, folder: Folder) -> None:
    access.require_folder(Action.TRASH_PURGE, folder)
    if folder.trashed_at is None:
        raise Conflict(N_("Only items in the trash can be removed for good."), code="not_in_trash")
    from app.services.maintenance import purge_folder_tree

    audit.record(db, "folder.purged", actor_id=access.require_user().id,
                 object_type="folder", object_id=folder.id, group_id=folder.group_id)
    purge_folder_tree(db, folder)
    access.forget()


def trash_items(db: Session, access: Access, group: Group) -> list[Folder]:
    rows = db.scalars(select(Folder).where(Folder.group_id == group.id,
                                           Folder.trashed_at.is_not(None))
                      .order_by(Folder.trashed_at.desc()))
    return [f for f in rows if access.can_folder(Action.TRASH_VIEW, f)]


def folder_members(db: Session, folder: Folder) -> list[tuple[FolderMember, User]]:
    rows = db.execute(select(FolderMember, User).join(User, User.id == FolderMember.user_id)
                      .where(FolderMember.folder_id == folder.id).order_by(User.name))
    return [(m, u) for m, u in rows]


def set_access(db: Session, access: Access, folder: Folder, *, folder_access: str,
               grants: list[FolderGrant] | None) -> None:
    """Open or close a folder. A closed folder's list may only name people who are members of
    the group and hold at least that role on the parent: a folder is never wider than its
    parent (peers shipped exactly this hole)."""
    access.require_folder(Action.FOLDER_MANAGE, folder)
    if folder.parent_id is None and folder_access == AccessLevel.CLOSED:
        raise Unprocessable(N_("The root folder follows the group; close a sub-folder instead."),
                            code="root_folder")
    grants = grants or []
    seen: set[str] = set()
    parent = db.get(Folder, folder.parent_id) if folder.parent_id else None
    for index, grant in enumerate(grants):
        if grant.user_id in seen:
            raise BadRequest(N_("A person is listed twice."), field=f"members.{index}.user_id")
        seen.add(grant.user_id)
        member = db.scalar(select(Membership).where(Membership.group_id == folder.group_id,
                                                    Membership.user_id == grant.user_id,
                                                    Membership.state == MembershipState.MEMBER))
        if member is None:
            raise Unprocessable(N_("Only members of the group can be given access."),
                                code="not_a_member", field=f"members.{index}.user_id")
        if parent is not None:
            their = _role_of(db, grant.user_id, parent)
            wanted = FolderRole.EDIT if grant.role == FolderMemberRole.EDITOR else FolderRole.VIEW
            if their is None or their < wanted:
                raise Unprocessable(N_("A folder cannot be wider than the folder it is in."),
                                    code="wider_than_parent",
                                    field=f"members.{index}.user_id")
    folder.access = folder_access
    db.execute(delete(FolderMember).where(FolderMember.folder_id == folder.id))
    if folder_access == AccessLevel.CLOSED:
        for grant in grants:
            db.add(FolderMember(folder_id=folder.id, user_id=grant.user_id, role=grant.role))
    db.flush()
    access.forget()
    activity.record(db, "folder.access", actor_id=access.require_user().id,
                    group_id=folder.group_id, folder_id=folder.id,
                    data={"access": folder_access})
    audit.record(db, "folder.access_changed", actor_id=access.require_user().id,
                 object_type="folder", object_id=folder.id, group_id=folder.group_id,
                 detail={"access": folder_access,
                         "members": [{"user_id": g.user_id, "role": g.role} for g in grants]})


def _role_of(db: Session, user_id: str, folder: Folder) -> FolderRole | None:
    user = db.get(User, user_id)
    if user is None:
        return None
    return Access(db, user).folder_role(folder)


def drop_folder_memberships(db: Session, group: Group, user_id: str) -> None:
    folder_ids = select(Folder.id).where(Folder.group_id == group.id)
    db.execute(delete(FolderMember).where(FolderMember.user_id == user_id,
                                          FolderMember.folder_id.in_(folder_ids)))
