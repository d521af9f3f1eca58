"""Groups as online meeting rooms: create, join (at once or by request), members and roles."""

from __future__ import annotations

import logging

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, object_session

from app.access import Access, Action, TotpRequired
from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.i18n import N_
from app.models import (
    GROUP_MANAGERS,
    AccessLevel,
    Folder,
    Group,
    GroupRole,
    Invitation,
    Membership,
    MembershipState,
    User,
)
from app.services import activity, notifications
from app.services import audit as audit_trail
from app.services.accounts import normalize_email


def create_group(db: Session, access: Access, *, name: str, description: str, group_access: str
                 ) -> Group:
    user = access.require_user()
    group = Group(name=name.strip(), description=description, access=group_access,
                  created_by=user.id)
    db.add(group)
    db.flush()
    root = Folder(group_id=group.id, parent_id=None, name=group.name, access=AccessLevel.OPEN,
                  created_by=user.id)
    db.add(root)
    db.flush()
    group.root_folder_id = root.id
    db.add(Membership(group_id=group.id, user_id=user.id, role=GroupRole.OWNER,
                      state=MembershipState.MEMBER))
    db.flush()
    access.forget()
    return group


def get_group(db: Session, access: Access, group_id: str, action: Action = Action.GROUP_VIEW
              ) -> Group:
    return access.require_group(action, db.get(Group, group_id))


def list_groups(db: Session, access: Access) -> list[Group]:
    """Mine (including pending requests) first, then the open groups (API.md). A closed group
    is not listed to outsiders: people reach it through a link or an invitation, and its page
    shows only name and description with the request button. Site admins see every group."""
    access.require_user()
    mine = access.memberships()
    query = select(Group)
    if not access.is_site_admin:
        query = query.where(or_(Group.access == AccessLevel.OPEN, Group.id.in_(list(mine))))
    groups = list(db.scalars(query))
    # Sorted here, not in SQL: group names are sealed in the database (docs/security.md).
    return sorted(groups, key=lambda g: (g.id not in mine, g.name.lower(), g.id))


def update_group(group: Group, *, name: str | None, description: str | None,
                 group_access: str | None) -> None:
    if name is not None:
        group.name = name.strip()
        # The root folder carries the group's name (breadcrumbs, folder page heading).
        session = object_session(group)
        root = session.get(Folder, group.root_folder_id) if session and group.root_folder_id \
            else None
        if root is not None:
            root.name = group.name
    if description is not None:
        group.description = description
    if group_access is not None:
        group.access = group_access


def set_require_totp(access: Access, group: Group, required: bool) -> None:
    """Owners of a closed group may require two-step sign-in of its members. Whoever turns
    it on must have it on themselves, or they would lock themselves out."""
    if required == group.require_totp:
        return
    if access.group_role(group.id) != GroupRole.OWNER:
        raise Forbidden(N_("Only owners may require two-step sign-in."), code="owner_only")
    if required and group.access != AccessLevel.CLOSED:
        raise Unprocessable(N_("Only a closed group can require two-step sign-in."),
                            code="group_not_closed", field="require_totp")
    if required and not access.has_totp:
        raise TotpRequired(N_("Turn on two-step sign-in for yourself first."))
    group.require_totp = required
    access.forget()
    audit_trail.record(access.db, "group.totp_required" if required else "group.totp_optional",
                       actor_id=access.require_user().id, object_type="group",
                       object_id=group.id, group_id=group.id)


def join(db: Session, access: Access, group: Group) -> str:
    user = access.require_user()
    existing = access.memberships().get(group.id)
    if existing is not None:
        if existing.state == MembershipState.REQUESTED and group.access == AccessLevel.OPEN:
            # Asked while the group was closed; it has opened since: join at once.
            existing.state = MembershipState.MEMBER
            db.flush()
            access.forget()
            activity.record(db, "member.joined", actor_id=user.id, group_id=group.id,
                            data={"user_id": user.id, "role": existing.role})
        return existing.state
    state = MembershipState.MEMBER if group.access == AccessLevel.OPEN \
        else MembershipState.REQUESTED
    invitation = db.scalar(select(Invitation).where(Invitation.group_id == group.id,
                                                    Invitation.email == user.email))
    role: str = GroupRole.MEMBER
    # Only a proven address claims an invitation: anyone can register with any address.
    if invitation is not None and user.email_verified_at is not None:
        state, role = MembershipState.MEMBER, invitation.role
        db.delete(invitation)
    db.add(Membership(group_id=group.id, user_id=user.id, role=role, state=state))
    db.flush()
    access.forget()
    if state == MembershipState.MEMBER:
        activity.record(db, "member.joined", actor_id=user.id, group_id=group.id,
                        data={"user_id": user.id, "role": role})
    return state


def members(db: Session, group: Group) -> list[tuple[Membership, User]]:
    rows = db.execute(
        select(Membership, User).join(User, User.id == Membership.user_id)
        .where(Membership.group_id == group.id)
        .order_by(Membership.state, func.lower(User.name), User.id)
    )
    return [(m, u) for m, u in rows]


def invitations(db: Session, group: Group) -> list[Invitation]:
    return list(db.scalars(select(Invitation).where(Invitation.group_id == group.id)
                           .order_by(Invitation.email)))


audit = logging.getLogger("plein.audit")


def _audit_operator(access: Access, group: Group, what: str) -> None:
    """A site admin acting in a group they do not manage leaves a trace for the operators'
    log and in the audit log (``group.admin_act``)."""
    if access.group_role(group.id) not in GROUP_MANAGERS and access.is_site_admin:
        user = access.require_user()
        audit.warning("site admin %s (%s) in group %s: %s", user.id, user.email, group.id, what)
        audit_trail.record(access.db, "group.admin_act", actor_id=user.id, object_type="group",
                           object_id=group.id, group_id=group.id, detail={"act": what})


def _check_role_grant(access: Access, group: Group, role: str) -> None:
    # Only owners (or a site admin rescuing a group) may make owners; admins manage the rest.
    if role == GroupRole.OWNER and not access.can_group(Action.GROUP_TRANSFER_OWNERSHIP, group):
        raise Forbidden(N_("Only an owner can make someone an owner."))


def add_member(db: Session, access: Access, group: Group, *, email: str, role: str,
               invite_unproven: bool = False) -> Membership | Invitation:
    """Add a person at once if they have an account with a proven address (approving a
    pending request), or any account when addresses need no proof (verification off, e.g. no
    mail): the manager chose that account. Else invite the address: the invitation becomes a
    membership only for whoever proves they read mail there (the link mailed to it, or
    verifying that address), never merely by registering with it."""
    access.require_group(Action.GROUP_MANAGE_MEMBERS, group)
    _check_role_grant(access, group, role)
    _audit_operator(access, group, f"add {email} as {role}")
    email = normalize_email(email)
    user = db.scalar(select(User).where(User.email == email))
    # An account whose address is unproven may be someone else's, registered with it: when
    # addresses must be proven (``invite_unproven``), it gets the invitation link like a
    # newcomer would (and cannot sign in before proving it anyway).
    if user is None or (invite_unproven and user.email_verified_at is None):
        existing = db.scalar(select(Invitation).where(Invitation.group_id == group.id,
                                                      Invitation.email == email))
        if existing is not None:
            raise Conflict(N_("This address is already invited."), code="already_invited")
        invitation = Invitation(group_id=group.id, email=email, role=role,
                                invited_by=access.require_user().id)
        db.add(invitation)
        db.flush()
        return invitation
    membership = db.scalar(select(Membership).where(Membership.group_id == group.id,
                                                    Membership.user_id == user.id))
    if membership is not None and membership.state == MembershipState.MEMBER:
        raise Conflict(N_("This person is already a member."), code="already_member")
    if membership is None:
        membership = Membership(group_id=group.id, user_id=user.id)
        db.add(membership)
    membership.role, membership.state = role, MembershipState.MEMBER
    db.flush()
    access.forget()
    activity.record(db, "member.joined", actor_id=access.require_user().id, group_id=group.id,
                    data={"user_id": user.id, "role": role})
    # Issue 17: tell the person in Plein who added them (mail may be off or unread).
    notifications.notify_group(db, user_ids=[user.id], kind="group_added",
                               actor_id=access.require_user().id, group=group)
    audit_trail.record(db, "group.member_added", actor_id=access.require_user().id,
                       object_type="user", object_id=user.id, group_id=group.id,
                       detail={"role": role})
    return membership


def _membership(db: Session, group: Group, user_id: str) -> Membership:
    membership = db.scalar(select(Membership).where(Membership.group_id == group.id,
                                                    Membership.user_id == user_id))
    if membership is None:
        raise NotFound(N_("No such member."))
    return membership


def _owner_count(db: Session, group: Group) -> int:
    return db.scalar(select(func.count()).select_from(Membership).where(
        Membership.group_id == group.id, Membership.role == GroupRole.OWNER,
        Membership.state == MembershipState.MEMBER)) or 0


def change_role(db: Session, access: Access, group: Group, user_id: str, role: str) -> Membership:
    access.require_group(Action.GROUP_MANAGE_MEMBERS, group)
    _audit_operator(access, group, f"set role of {user_id} to {role}")
    membership = _membership(db, group, user_id)
    if membership.state != MembershipState.MEMBER:
        raise Unprocessable(N_("Approve the request first."), code="not_a_member")
    if GroupRole.OWNER in (role, membership.role):
        # Making or unmaking an owner is an owner's decision.
        _check_role_grant(access, group, GroupRole.OWNER)
    if (membership.role == GroupRole.OWNER and role != GroupRole.OWNER
            and _owner_count(db, group) <= 1):
        raise Conflict(N_("A group always keeps at least one owner; make someone else owner "
                          "first."), code="last_owner")
    membership.role = role
    db.flush()
    access.forget()
    activity.record(db, "member.role", actor_id=access.require_user().id, group_id=group.id,
                    data={"user_id": user_id, "role": role})
    audit_trail.record(db, "group.role_changed", actor_id=access.require_user().id,
                       object_type="user", object_id=user_id, group_id=group.id,
                       detail={"role": role})
    return membership


def remove_member(db: Session, access: Access, group: Group, user_id: str) -> None:
    """Remove a member, or leave (when ``user_id`` is the caller). Also clears the person's
    folder memberships in this group, so rejoining later does not silently restore them."""
    user = access.require_user()
    if user_id != user.id:
        access.require_group(Action.GROUP_MANAGE_MEMBERS, group)
        _audit_operator(access, group, f"remove {user_id}")
    membership = _membership(db, group, user_id)
    if membership.role == GroupRole.OWNER:
        if user_id != user.id:
            _check_role_grant(access, group, GroupRole.OWNER)
        if membership.state == MembershipState.MEMBER and _owner_count(db, group) <= 1:
            raise Conflict(N_("A group always keeps at least one owner; make someone else owner "
                           "first."), code="last_owner")
    if user_id != user.id and membership.role == GroupRole.ADMIN:
        role = access.group_role(group.id)
        if role not in GROUP_MANAGERS and not access.is_site_admin:
            raise Forbidden()
    from app.services.folders import drop_folder_memberships

    drop_folder_memberships(db, group, user_id)
    was_member = membership.state == MembershipState.MEMBER
    db.delete(membership)
    db.flush()
    access.forget()
    if was_member:
        activity.record(db, "member.left", actor_id=user.id, group_id=group.id,
                        data={"user_id": user_id})
        audit_trail.record(db, "group.member_removed", actor_id=user.id, object_type="user",
                           object_id=user_id, group_id=group.id)


def decide_request(db: Session, access: Access, group: Group, user_id: str, *, approve: bool
                   ) -> None:
    access.require_group(Action.GROUP_MANAGE_MEMBERS, group)
    _audit_operator(access, group, f"{'approve' if approve else 'reject'} request of {user_id}")
    membership = _membership(db, group, user_id)
    if membership.state != MembershipState.REQUESTED:
        raise Conflict(N_("There is no pending request from this person."), code="no_request")
    if approve:
        membership.state = MembershipState.MEMBER
        activity.record(db, "member.joined", actor_id=access.require_user().id,
                        group_id=group.id, data={"user_id": user_id, "role": membership.role})
        audit_trail.record(db, "group.member_added", actor_id=access.require_user().id,
                           object_type="user", object_id=user_id, group_id=group.id,
                           detail={"role": membership.role, "request": True})
    else:
        db.delete(membership)
    db.flush()
    access.forget()


def get_invitation(db: Session, access: Access, group: Group, invitation_id: str) -> Invitation:
    """A pending invitation of ``group``, for whoever manages its members."""
    access.require_group(Action.GROUP_MANAGE_MEMBERS, group)
    invitation = db.get(Invitation, invitation_id)
    if invitation is None or invitation.group_id != group.id:
        raise NotFound(N_("No such invitation."))
    return invitation


def revoke_invitation(db: Session, access: Access, group: Group, invitation_id: str) -> None:
    access.require_group(Action.GROUP_MANAGE_MEMBERS, group)
    invitation = db.get(Invitation, invitation_id)
    if invitation is None or invitation.group_id != group.id:
        raise NotFound(N_("No such invitation."))
    db.delete(invitation)

