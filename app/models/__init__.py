"""SQLAlchemy 2.0 models, one module per area. Import from here."""

from app.models.accounts import AccountToken, ApiToken, LoginFailure, User, WebSession
from app.models.activity import Activity, Follow, Notification, NotificationSettings
from app.models.audit import AuditEvent
from app.models.base import Base, new_id, utcnow
from app.models.discussions import Comment
from app.models.documents import Blob, Document, DocumentVersion
from app.models.folders import Folder, FolderMember
from app.models.groups import Group, Invitation, Membership
from app.models.roles import (
    GROUP_MANAGERS,
    AccessLevel,
    FolderMemberRole,
    GroupRole,
    MembershipState,
)
from app.models.search import IndexTask
from app.models.tickets import SyncTicket
from app.models.twostep import OidcLink, OidcLogin, RecoveryCode, TotpCredential

__all__ = [
    "GROUP_MANAGERS",
    "AccessLevel",
    "AccountToken",
    "Activity",
    "AuditEvent",
    "ApiToken",
    "Base",
    "Blob",
    "Comment",
    "Document",
    "DocumentVersion",
    "Folder",
    "FolderMember",
    "FolderMemberRole",
    "Follow",
    "Group",
    "GroupRole",
    "IndexTask",
    "Invitation",
    "LoginFailure",
    "Membership",
    "MembershipState",
    "Notification",
    "RecoveryCode",
    "NotificationSettings",
    "OidcLink",
    "OidcLogin",
    "SyncTicket",
    "TotpCredential",
    "User",
    "WebSession",
    "new_id",
    "utcnow",
]
