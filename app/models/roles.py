"""The fixed words stored in string columns: group and folder access, group roles, membership
states and folder-member roles. They are ``StrEnum`` so a member *is* the stored string (rows
read back as plain ``str`` compare equal) and the API keeps speaking the same words."""

from __future__ import annotations

from enum import StrEnum


class AccessLevel(StrEnum):
    """``groups.access`` and ``folders.access``."""

    OPEN = "open"  # a group anyone may join; a folder that adds no restriction of its own
    CLOSED = "closed"  # join by approval; a folder narrowed to its member list


class GroupRole(StrEnum):
    """``memberships.role`` and ``invitations.role``."""

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


# The roles that manage a group: its settings, members, every folder and the trash.
GROUP_MANAGERS = frozenset({GroupRole.OWNER, GroupRole.ADMIN})


class MembershipState(StrEnum):
    """``memberships.state``."""

    MEMBER = "member"
    REQUESTED = "requested"  # asked to join a closed group, awaiting approval


class FolderMemberRole(StrEnum):
    """``folder_members.role``: what a listed person may do in a closed folder."""

    VIEWER = "viewer"
    EDITOR = "editor"
