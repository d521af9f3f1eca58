"""Groups (online meeting rooms), their members, join requests and invitations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, new_id, utcnow
from app.models.roles import GroupRole, MembershipState
from app.models.sealed import SealedText


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(SealedText("groups.name"))
    description: Mapped[str] = mapped_column(SealedText("groups.description"), default="")
    access: Mapped[str] = mapped_column(String(10))  # an AccessLevel
    # Nullable only because the root folder row needs the group id first; it is set in the
    # same transaction.
    root_folder_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A closed group's owners may require two-step sign-in: members without it are asked to
    # enrol before they can open the group (app.services.twostep.require_for_group).
    require_totp: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Membership(Base):
    """A person's place in a group: a :class:`GroupRole` and a :class:`MembershipState`."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10), default=GroupRole.MEMBER)
    state: Mapped[str] = mapped_column(String(10), default=MembershipState.MEMBER)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Invitation(Base):
    """An invitation to an e-mail address that has no account yet; it becomes a membership
    when someone registers with that address."""

    __tablename__ = "invitations"
    __table_args__ = (UniqueConstraint("group_id", "email"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    role: Mapped[str] = mapped_column(String(10), default=GroupRole.MEMBER)
    invited_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
