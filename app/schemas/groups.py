"""Groups, members, requests, invitations."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, EmailStr, Field

from app.models import Group, Invitation, Membership, MembershipState, User
from app.schemas.accounts import PersonOut
from app.schemas.common import AccessName, GroupRoleName, Input, LongText, Name


class GroupCreate(Input):
    name: Name
    description: LongText = ""
    access: AccessName


class GroupUpdate(Input):
    name: Name | None = None
    description: LongText | None = None
    access: AccessName | None = None
    # Owners of a closed group: members must use two-step sign-in to open it.
    require_totp: bool | None = None


class MemberAdd(Input):
    email: EmailStr
    role: GroupRoleName = "member"


class MemberUpdate(Input):
    role: GroupRoleName


class GroupOut(BaseModel):
    id: str
    name: str
    description: str
    access: str
    root_folder_id: str | None
    created_at: datetime
    my_role: str | None
    my_state: str | None
    require_totp: bool

    @classmethod
    def of(cls, group: Group, role: str | None, state: str | None) -> GroupOut:
        # A person who only requested to join sees no folder id: content is for members.
        member = state == MembershipState.MEMBER
        return cls(id=group.id, name=group.name, description=group.description,
                   access=group.access,
                   root_folder_id=group.root_folder_id if member else None,
                   created_at=group.created_at, my_role=role if member else None,
                   my_state=state, require_totp=group.require_totp)


class JoinOut(BaseModel):
    state: Literal["member", "requested"]


class MemberOut(BaseModel):
    user: PersonOut
    user_id: str
    role: str
    state: str
    since: datetime

    @classmethod
    def of(cls, membership: Membership, user: User) -> MemberOut:
        return cls(user=PersonOut.of(user), user_id=user.id, role=membership.role,
                   state=membership.state, since=membership.created_at)


class InvitationOut(BaseModel):
    id: str
    email: str
    role: str
    state: Literal["invited"] = "invited"
    created_at: datetime
    link: str | None = Field(
        None, description="The single-use invitation link to pass on yourself: only in the "
        "answer to whoever made the invitation, and only when this server sends no mail")

    @classmethod
    def of(cls, invitation: Invitation) -> InvitationOut:
        return cls(id=invitation.id, email=invitation.email, role=invitation.role,
                   created_at=invitation.created_at)


class MembersOut(BaseModel):
    members: list[MemberOut]
    invitations: list[InvitationOut]
