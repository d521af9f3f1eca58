"""Groups, membership, join requests and invitations."""

from __future__ import annotations

from app.access import Action
from app.http.context import Ctx
from app.models import Group, Invitation, MembershipState, User
from app.routes.api.registry import router
from app.schemas.common import Page
from app.schemas.groups import (
    GroupCreate,
    GroupOut,
    GroupUpdate,
    InvitationOut,
    JoinOut,
    MemberAdd,
    MemberOut,
    MembersOut,
    MemberUpdate,
)
from app.services import account_links, groups

TAG = "groups"


def _out(ctx: Ctx, group: Group) -> GroupOut:
    return GroupOut.of(group, ctx.access.group_role(group.id),
                       ctx.access.membership_state(group.id))


@router.route("POST", "/groups", summary="Create a group; the creator is owner", tag=TAG,
              body=GroupCreate, response=GroupOut, status=201)
def create_group(ctx: Ctx, body: GroupCreate) -> GroupOut:
    group = groups.create_group(ctx.db, ctx.access, name=body.name, description=body.description,
                                group_access=body.access)
    return _out(ctx, group)


@router.route("GET", "/groups", summary="My groups first, then the others I may see", tag=TAG,
              response=list[GroupOut], query=Page)
def list_groups(ctx: Ctx, query: Page) -> list[GroupOut]:
    rows = groups.list_groups(ctx.db, ctx.access)
    return [_out(ctx, g) for g in rows[query.offset:query.offset + query.limit]]


@router.route("GET", "/groups/{gid}", summary="A group", tag=TAG, response=GroupOut)
def get_group(ctx: Ctx, gid: str) -> GroupOut:
    return _out(ctx, groups.get_group(ctx.db, ctx.access, gid))


@router.route("PATCH", "/groups/{gid}",
              summary="Change name, description or access; owners of a closed group may "
                      "require two-step sign-in (require_totp)", tag=TAG,
              body=GroupUpdate, response=GroupOut)
def update_group(ctx: Ctx, gid: str, body: GroupUpdate) -> GroupOut:
    group = groups.get_group(ctx.db, ctx.access, gid, Action.GROUP_MANAGE)
    groups.update_group(group, name=body.name, description=body.description,
                        group_access=body.access)
    if body.require_totp is not None:
        groups.set_require_totp(ctx.access, group, body.require_totp)
    return _out(ctx, group)


@router.route("POST", "/groups/{gid}/join",
              summary="Join an open group, or ask to join a closed one", tag=TAG,
              response=JoinOut)
def join_group(ctx: Ctx, gid: str) -> JoinOut:
    group = groups.get_group(ctx.db, ctx.access, gid)
    return JoinOut(state=groups.join(ctx.db, ctx.access, group))


@router.route("GET", "/groups/{gid}/members",
              summary="Members, pending requests and invitations", tag=TAG, response=MembersOut)
def list_members(ctx: Ctx, gid: str) -> MembersOut:
    group = groups.get_group(ctx.db, ctx.access, gid, Action.GROUP_VIEW_MEMBERS)
    manager = ctx.access.can_group(Action.GROUP_MANAGE_MEMBERS, group)
    rows = [MemberOut.of(m, u) for m, u in groups.members(ctx.db, group)
            if m.state == MembershipState.MEMBER or manager]
    invitations = [InvitationOut.of(i) for i in groups.invitations(ctx.db, group)] if manager \
        else []
    return MembersOut(members=rows, invitations=invitations)


@router.route("POST", "/groups/{gid}/members",
              summary="Add a person (or invite an address without an account)", tag=TAG,
              body=MemberAdd, response=MemberOut | InvitationOut, status=201)
def add_member(ctx: Ctx, gid: str, body: MemberAdd) -> MemberOut | InvitationOut:
    group = groups.get_group(ctx.db, ctx.access, gid)
    added = groups.add_member(ctx.db, ctx.access, group, email=body.email, role=body.role,
                              invite_unproven=ctx.settings.email_verification_required)
    if isinstance(added, Invitation):
        ctx.outbox.extend(account_links.invitation_mails(ctx.db, ctx.settings, added, group,
                                                         ctx.require_user()))
        out = InvitationOut.of(added)
        out.link = account_links.invitation_link_to_copy(ctx.db, ctx.settings, added)
        return out
    user = ctx.db.get_one(User, added.user_id)
    return MemberOut.of(added, user)


@router.route("PATCH", "/groups/{gid}/members/{uid}", summary="Change a member's role", tag=TAG,
              body=MemberUpdate, response=MemberOut)
def update_member(ctx: Ctx, gid: str, uid: str, body: MemberUpdate) -> MemberOut:
    group = groups.get_group(ctx.db, ctx.access, gid)
    membership = groups.change_role(ctx.db, ctx.access, group, uid, body.role)
    return MemberOut.of(membership, ctx.db.get_one(User, uid))


@router.route("DELETE", "/groups/{gid}/members/{uid}",
              summary="Remove a member, or leave the group (your own id)", tag=TAG, status=204)
def remove_member(ctx: Ctx, gid: str, uid: str) -> None:
    group = groups.get_group(ctx.db, ctx.access, gid)
    groups.remove_member(ctx.db, ctx.access, group, uid)


@router.route("POST", "/groups/{gid}/requests/{uid}/approve", summary="Approve a join request",
              tag=TAG, status=204)
def approve_request(ctx: Ctx, gid: str, uid: str) -> None:
    group = groups.get_group(ctx.db, ctx.access, gid)
    groups.decide_request(ctx.db, ctx.access, group, uid, approve=True)


@router.route("POST", "/groups/{gid}/requests/{uid}/reject", summary="Reject a join request",
              tag=TAG, status=204)
def reject_request(ctx: Ctx, gid: str, uid: str) -> None:
    group = groups.get_group(ctx.db, ctx.access, gid)
    groups.decide_request(ctx.db, ctx.access, group, uid, approve=False)


@router.route("DELETE", "/groups/{gid}/invitations/{iid}", summary="Withdraw an invitation",
              tag=TAG, status=204)
def revoke_invitation(ctx: Ctx, gid: str, iid: str) -> None:
    group = groups.get_group(ctx.db, ctx.access, gid)
    groups.revoke_invitation(ctx.db, ctx.access, group, iid)
