"""The one place that decides "may this principal do this action on this object".

Every route asks :class:`Access` (one per request, so lookups are cached and a folder listing is
a fixed number of queries). Rules, in short:

- Group metadata (name, description, access) is visible to every signed-in person who has the
  group's link, so a closed group can be asked to join; lists show mine and the open ones;
  members lists only to members and site admins.
- Content (folders, documents) is for group members only. Site admins are operators, not
  readers: they may manage membership of any group (to rescue an orphaned group), and each such
  change is written to the ``plein.audit`` log, but they read content only as members.
- Folder access is the intersection along the path from the root: an ``open`` folder adds no
  restriction, a ``closed`` one narrows to its member list (viewer/editor). Group owners and
  admins manage every folder. So a folder is never wider than its parent, and narrowing a parent
  narrows its whole subtree at once, with nothing copied that could go stale.
- Not readable ⇒ :class:`NotFound` (identical to a missing id); readable but not allowed ⇒
  :class:`Forbidden`.
- Two-step sign-in: a closed group whose owners require it counts its members who have not
  turned it on as no members at all (no role, so no content anywhere: pages, API, search,
  live sync), and opening the group tells them why (403 ``totp_required``). With
  ``PLEIN_REQUIRE_TOTP_FOR_ADMINS`` a site administrator without it has no operator rights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum, StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Forbidden, NotFound, NotSignedIn
from app.i18n import N_
from app.models import (
    GROUP_MANAGERS,
    AccessLevel,
    Document,
    Folder,
    FolderMember,
    FolderMemberRole,
    Group,
    GroupRole,
    Membership,
    MembershipState,
    TotpCredential,
    User,
)


class Action(StrEnum):
    GROUP_VIEW = "group.view"
    GROUP_JOIN = "group.join"
    GROUP_VIEW_MEMBERS = "group.view_members"
    GROUP_MANAGE = "group.manage"
    GROUP_MANAGE_MEMBERS = "group.manage_members"
    GROUP_TRANSFER_OWNERSHIP = "group.transfer_ownership"
    FOLDER_READ = "folder.read"
    FOLDER_WRITE = "folder.write"
    FOLDER_MANAGE = "folder.manage"
    DOCUMENT_READ = "document.read"
    DOCUMENT_WRITE = "document.write"
    DOCUMENT_MANAGE = "document.manage"
    TRASH_VIEW = "trash.view"
    TRASH_RESTORE = "trash.restore"
    TRASH_PURGE = "trash.purge"


class TotpRequired(Forbidden):
    """Refused until the person turns on two-step sign-in."""

    code = "totp_required"


_TRASH_ACTIONS = frozenset({Action.TRASH_VIEW, Action.TRASH_RESTORE, Action.TRASH_PURGE})


# What site administrators may do in groups they are not members of.
_OPERATOR_ACTIONS = frozenset({Action.GROUP_VIEW_MEMBERS, Action.GROUP_MANAGE_MEMBERS,
                               Action.GROUP_TRANSFER_OWNERSHIP})


class FolderRole(int, Enum):
    """Effective rights in a folder, ordered so that ``min`` narrows."""

    VIEW = 1
    EDIT = 2
    MANAGE = 3


_LIST_ROLE = {FolderMemberRole.VIEWER: FolderRole.VIEW, FolderMemberRole.EDITOR: FolderRole.EDIT}


@dataclass(frozen=True)
class _Node:
    id: str
    parent_id: str | None
    access: str
    trashed: bool


class _GroupTree:
    """The folder tree of one group plus the caller's folder-member rows, loaded in two queries."""

    def __init__(self, nodes: Iterable[_Node], listed: dict[str, FolderRole]) -> None:
        self.nodes = {node.id: node for node in nodes}
        self.listed = listed
        self._roles: dict[tuple[str, str], FolderRole | None] = {}
        self._in_trash: dict[str, bool] = {}

    def path(self, folder_id: str) -> list[_Node]:
        path: list[_Node] = []
        seen: set[str] = set()
        current = self.nodes.get(folder_id)
        while current is not None and current.id not in seen:
            seen.add(current.id)
            path.append(current)
            current = self.nodes.get(current.parent_id) if current.parent_id else None
        path.reverse()
        return path

    def member_role(self, folder_id: str, group_role: str) -> FolderRole | None:
        """Effective role of a group member with ``group_role`` in the folder, ignoring trash."""
        key = (folder_id, group_role)
        if key not in self._roles:
            self._roles[key] = self._compute(folder_id, group_role)
        return self._roles[key]

    def _compute(self, folder_id: str, group_role: str) -> FolderRole | None:
        if folder_id not in self.nodes:
            return None
        if group_role in GROUP_MANAGERS:
            return FolderRole.MANAGE
        role = FolderRole.EDIT
        for node in self.path(folder_id):
            if node.access == AccessLevel.CLOSED:
                listed = self.listed.get(node.id)
                if listed is None:
                    return None
                role = min(role, listed)
        return role

    def in_trash(self, folder_id: str) -> bool:
        if folder_id not in self._in_trash:
            self._in_trash[folder_id] = any(node.trashed for node in self.path(folder_id))
        return self._in_trash[folder_id]

    def closed_ancestor_ids(self, folder_id: str) -> list[str]:
        return [node.id for node in self.path(folder_id) if node.access == AccessLevel.CLOSED]

    def descendant_ids(self, folder_id: str) -> list[str]:
        """Every folder below ``folder_id`` (trashed or not), parents before children."""
        children: dict[str, list[str]] = {}
        for node in self.nodes.values():
            if node.parent_id is not None:
                children.setdefault(node.parent_id, []).append(node.id)
        found: list[str] = []
        seen = {folder_id}
        queue = list(children.get(folder_id, []))
        while queue:
            current = queue.pop(0)
            if current in seen:
                continue
            seen.add(current)
            found.append(current)
            queue.extend(children.get(current, []))
        return found


# Not a valid id (ids are ``token_urlsafe``, no "!"): the group tree lookup of a missing id.
_NO_GROUP = "!missing"


class Access:
    """Authorization for one principal during one request."""

    def __init__(self, db: Session, user: User | None, *, admin_needs_totp: bool = False
                 ) -> None:
        self.db = db
        self.user = user
        self.admin_needs_totp = admin_needs_totp
        self._memberships: dict[str, Membership] | None = None
        self._gated: set[str] = set()
        self._has_totp: bool | None = None
        self._trees: dict[str, _GroupTree] = {}

    # -- identity ---------------------------------------------------------------------------

    def require_user(self) -> User:
        if self.user is None:
            raise NotSignedIn()
        return self.user

    @property
    def is_site_admin(self) -> bool:
        return bool(self.user and self.user.is_site_admin) and not self.admin_lacks_totp

    @property
    def admin_lacks_totp(self) -> bool:
        """A site administrator who must use two-step sign-in and has not turned it on."""
        return bool(self.user and self.user.is_site_admin and self.admin_needs_totp
                    and not self.has_totp)

    @property
    def has_totp(self) -> bool:
        """Whether this person has two-step sign-in on."""
        if self._has_totp is None:
            self._has_totp = self.user is not None and self.db.scalar(
                select(TotpCredential.confirmed_at).where(
                    TotpCredential.user_id == self.user.id)) is not None
        return self._has_totp

    def totp_gated(self, group_id: str) -> bool:
        """Whether this person is a member of the group but may not open it until they turn
        on two-step sign-in."""
        self.memberships()
        return group_id in self._gated

    # -- groups -----------------------------------------------------------------------------

    def memberships(self) -> dict[str, Membership]:
        if self._memberships is None:
            if self.user is None:
                self._memberships = {}
            else:
                rows = self.db.execute(
                    select(Membership, Group.require_totp, Group.access)
                    .join(Group, Group.id == Membership.group_id)
                    .where(Membership.user_id == self.user.id)).all()
                self._memberships = {row[0].group_id: row[0] for row in rows}
                requiring = {row[0].group_id for row in rows
                             if row[1] and row[2] == AccessLevel.CLOSED}
                self._gated = requiring if requiring and not self.has_totp else set()
        return self._memberships

    def forget(self) -> None:
        """Drop cached lookups after this request changed memberships or folder access."""
        self._memberships = None
        self._has_totp = None
        self._trees.clear()

    def group_role(self, group_id: str) -> str | None:
        """``owner``/``admin``/``member`` for an approved member, else ``None``."""
        membership = self.memberships().get(group_id)
        if membership is None or membership.state != MembershipState.MEMBER \
                or group_id in self._gated:
            return None
        return membership.role

    def membership_state(self, group_id: str) -> str | None:
        membership = self.memberships().get(group_id)
        return membership.state if membership else None

    def can_group(self, action: Action, group: Group) -> bool:
        if self.user is None:
            return False
        role = self.group_role(group.id)
        if action is Action.GROUP_VIEW:
            return True
        if action is Action.GROUP_JOIN:
            return role is None
        if action is Action.GROUP_VIEW_MEMBERS:
            return role is not None or self.is_site_admin
        if action is Action.GROUP_MANAGE:
            return role in GROUP_MANAGERS
        if action is Action.GROUP_MANAGE_MEMBERS:
            return role in GROUP_MANAGERS or self.is_site_admin
        if action is Action.GROUP_TRANSFER_OWNERSHIP:
            return role == GroupRole.OWNER or self.is_site_admin
        if action in (Action.TRASH_VIEW, Action.TRASH_RESTORE):
            return role is not None
        if action is Action.TRASH_PURGE:
            return role in GROUP_MANAGERS
        raise ValueError(f"{action} is not a group action")

    def require_group(self, action: Action, group: Group | None) -> Group:
        """Raise unless allowed. Group metadata is visible to every signed-in person, so a
        group that exists yields 403 (not 404) for a refused action."""
        self.require_user()
        if group is None:
            raise NotFound(N_("No such group."))
        if self.totp_gated(group.id) and action is not Action.GROUP_JOIN:
            raise TotpRequired(N_("This group requires two-step sign-in: turn it on in your "
                                  "profile first."))
        if not self.can_group(action, group):
            if self.admin_lacks_totp and action in _OPERATOR_ACTIONS:
                raise TotpRequired(N_("Site administrators must use two-step sign-in: turn it "
                                      "on in your profile first."))
            raise Forbidden()
        return group

    # -- folders ----------------------------------------------------------------------------

    def _tree(self, group_id: str) -> _GroupTree:
        tree = self._trees.get(group_id)
        if tree is None:
            rows = self.db.execute(
                select(Folder.id, Folder.parent_id, Folder.access, Folder.trashed_at).where(
                    Folder.group_id == group_id
                )
            )
            nodes = [_Node(r.id, r.parent_id, r.access, r.trashed_at is not None) for r in rows]
            listed: dict[str, FolderRole] = {}
            if self.user is not None:
                member_rows = self.db.execute(
                    select(FolderMember.folder_id, FolderMember.role)
                    .join(Folder, Folder.id == FolderMember.folder_id)
                    .where(Folder.group_id == group_id, FolderMember.user_id == self.user.id)
                )
                listed = {r.folder_id: _LIST_ROLE[r.role] for r in member_rows}
            tree = _GroupTree(nodes, listed)
            self._trees[group_id] = tree
        return tree

    def folder_role(self, folder: Folder, *, include_trashed: bool = False) -> FolderRole | None:
        group_role = self.group_role(folder.group_id)
        if group_role is None:
            return None
        tree = self._tree(folder.group_id)
        if not include_trashed and tree.in_trash(folder.id):
            return None
        return tree.member_role(folder.id, group_role)

    def in_trash(self, folder: Folder) -> bool:
        return self._tree(folder.group_id).in_trash(folder.id)

    def can_folder(self, action: Action, folder: Folder) -> bool:
        return _allowed(action, _FOLDER_NEEDS,
                        lambda trashed: self.folder_role(folder, include_trashed=trashed))

    def require_folder(self, action: Action, folder: Folder | None) -> Folder:
        """Raise :class:`NotFound` unless readable (no existence oracle), then
        :class:`Forbidden` unless the action is allowed."""
        self.require_user()
        if folder is None:
            self._same_work_as_hidden()
            raise NotFound(N_("No such folder."))
        # What you can see decides 404 vs 403: a live folder you may read, or a trashed one you
        # could restore (only trash actions reach into the trash). So a viewer who restores or
        # purges a live folder is refused (403), like any other readable-but-not-allowed act.
        if self.in_trash(folder):
            visible = action in _TRASH_ACTIONS and self.can_folder(Action.TRASH_VIEW, folder)
        else:
            visible = self.can_folder(Action.FOLDER_READ, folder)
        if not visible:
            self._same_work_as_hidden(folder.group_id)
            raise NotFound(N_("No such folder."))
        if not self.can_folder(action, folder):
            raise Forbidden()
        return folder

    def _same_work_as_hidden(self, group_id: str | None = None) -> None:
        """Do the lookups a refused id costs, so "missing" and "hidden" cannot be told apart by
        how long the 404 takes (issue 9, item 16): the caller's memberships and a group's
        folder tree, for a group that names nothing when the id itself named nothing. Both
        paths then make the same queries; only the size of the tree still varies."""
        self.memberships()
        self._tree(group_id if group_id is not None else _NO_GROUP)

    def readable_folder_ids(self, group_id: str) -> set[str]:
        """Folders of the group this principal may read (not in the trash)."""
        group_role = self.group_role(group_id)
        if group_role is None:
            return set()
        tree = self._tree(group_id)
        return {
            fid
            for fid in tree.nodes
            if not tree.in_trash(fid) and tree.member_role(fid, group_role) is not None
        }

    # -- documents --------------------------------------------------------------------------
    # A document has exactly the access of the folder it is in; in the trash (itself or a
    # folder above it) it vanishes from every path but the trash.

    def document_role(self, doc: Document, *, include_trashed: bool = False
                      ) -> FolderRole | None:
        group_role = self.group_role(doc.group_id)
        if group_role is None:
            return None
        tree = self._tree(doc.group_id)
        if not include_trashed and (doc.trashed_at is not None or tree.in_trash(doc.folder_id)):
            return None
        return tree.member_role(doc.folder_id, group_role)

    def can_document(self, action: Action, doc: Document) -> bool:
        return _allowed(action, _DOCUMENT_NEEDS,
                        lambda trashed: self.document_role(doc, include_trashed=trashed))

    def require_document(self, action: Action, doc: Document | None) -> Document:
        """Like :meth:`require_folder`: 404 unless readable (or, for trash actions, visible in
        the trash), then 403 unless allowed."""
        self.require_user()
        if doc is None:
            self._same_work_as_hidden()
            raise NotFound(N_("No such document."))
        # The same rule as for folders: a live document you may read, or one in the trash you
        # could restore, is visible; anything else is 404. Visible but not allowed is 403.
        in_trash = doc.trashed_at is not None or self._tree(doc.group_id).in_trash(doc.folder_id)
        if in_trash:
            visible = action in _TRASH_ACTIONS and self.can_document(Action.TRASH_VIEW, doc)
        else:
            visible = self.can_document(Action.DOCUMENT_READ, doc)
        if not visible:
            self._same_work_as_hidden(doc.group_id)
            raise NotFound(N_("No such document."))
        if not self.can_document(action, doc):
            raise Forbidden()
        return doc

    def readable_folder_ids_all(self) -> set[str]:
        """Every folder this principal may read, across all groups (for search and activity)."""
        folder_ids: set[str] = set()
        for group_id in list(self.memberships()):
            folder_ids |= self.readable_folder_ids(group_id)
        return folder_ids

    def document_reader_ids(self, doc: Document) -> set[str]:
        """Ids of everyone who may read ``doc`` now (whoever this principal is): the same rule
        as :meth:`document_role`, evaluated for all members at once (for mentions, followers
        and the @-autocomplete), in two queries plus the cached tree."""
        tree = self._tree(doc.group_id)
        if doc.trashed_at is not None or doc.folder_id not in tree.nodes \
                or tree.in_trash(doc.folder_id):
            return set()
        roles = {user_id: role for user_id, role in self.db.execute(
            select(Membership.user_id, Membership.role)
            .where(Membership.group_id == doc.group_id,
                   Membership.state == MembershipState.MEMBER))}
        readers = set(roles)
        closed = tree.closed_ancestor_ids(doc.folder_id)
        if closed:
            listed: dict[str, set[str]] = {fid: set() for fid in closed}
            for folder_id, user_id in self.db.execute(
                    select(FolderMember.folder_id, FolderMember.user_id)
                    .where(FolderMember.folder_id.in_(closed))).tuples():
                listed[folder_id].add(user_id)
            managers = {uid for uid, role in roles.items() if role in GROUP_MANAGERS}
            for names in listed.values():
                readers &= names | managers
        return readers

    def closed_ancestor_ids(self, folder: Folder) -> list[str]:
        return self._tree(folder.group_id).closed_ancestor_ids(folder.id)

    def can_change_subtree(self, folder: Folder) -> bool:
        """Whether this principal may edit every folder below ``folder`` (trashed ones too):
        what a folder's trash and later purge take along."""
        group_role = self.group_role(folder.group_id)
        if group_role is None:
            return False
        tree = self._tree(folder.group_id)
        for folder_id in tree.descendant_ids(folder.id):
            role = tree.member_role(folder_id, group_role)
            if role is None or role < FolderRole.EDIT:
                return False
        return True

    def effective_access(self, folder: Folder) -> str:
        return AccessLevel.CLOSED if self.closed_ancestor_ids(folder) else AccessLevel.OPEN


_FOLDER_NEEDS = {Action.FOLDER_READ: FolderRole.VIEW, Action.FOLDER_WRITE: FolderRole.EDIT,
                 Action.FOLDER_MANAGE: FolderRole.MANAGE}
_DOCUMENT_NEEDS = {Action.DOCUMENT_READ: FolderRole.VIEW, Action.DOCUMENT_WRITE: FolderRole.EDIT,
                   Action.DOCUMENT_MANAGE: FolderRole.MANAGE}


def _allowed(action: Action, needs: dict[Action, FolderRole],
             role_of: Callable[[bool], FolderRole | None]) -> bool:
    """The one rule for folders and documents. ``role_of(include_trashed)`` is the caller's
    effective role; people who could edit where an item was may see it in the trash and bring
    it back, managers may purge it."""
    if action in (Action.TRASH_VIEW, Action.TRASH_RESTORE):
        role = role_of(True)
        return role is not None and role >= FolderRole.EDIT
    if action is Action.TRASH_PURGE:
        return role_of(True) is FolderRole.MANAGE
    needed = needs.get(action)
    if needed is None:
        raise ValueError(f"{action} does not apply here")
    role = role_of(False)
    return role is not None and role >= needed
