"""Accounts, sessions and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, EmailStr, Field

from app.models import ApiToken, User, WebSession
from app.schemas.common import Input, LongText, Name, OptionalLine, Password
from app.services.accounts import public_session_id
from app.services.devices import describe


class UserCreate(Input):
    email: EmailStr
    name: Name
    password: Password


class SessionCreate(Input):
    email: str
    password: str
    # The authenticator code (or a recovery code) once two-step sign-in is on.
    otp: str | None = Field(default=None, max_length=40)


class ProfileUpdate(Input):
    name: Name | None = None
    bio: LongText | None = None
    organisation: OptionalLine | None = None  # "" clears it
    language: Literal["nl", "en"] | None = None


class PasswordChange(Input):
    current_password: str
    new_password: Password


class TokenCreate(Input):
    name: Name
    # Bind the token to one document the caller may read: it then works for that document's
    # live sync only, so a token handed to a sync client is not the whole account.
    document_id: str | None = Field(default=None, max_length=64)


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    bio: str
    organisation: str
    is_site_admin: bool
    email_verified: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, name=user.name, bio=user.bio,
                   organisation=user.organisation, is_site_admin=user.is_site_admin,
                   email_verified=user.email_verified_at is not None,
                   created_at=user.created_at)


class PersonOut(BaseModel):
    """What other people may see of someone."""

    id: str
    name: str
    organisation: str

    @classmethod
    def of(cls, user: User) -> PersonOut:
        return cls(id=user.id, name=user.name, organisation=user.organisation)


class SessionOut(BaseModel):
    user: UserOut | None
    csrf_token: str


class TokenOut(BaseModel):
    id: str
    name: str
    document_id: str | None
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(id=token.id, name=token.name, document_id=token.document_id,
                   created_at=token.created_at, last_used_at=token.last_used_at)


class TokenCreated(BaseModel):
    id: str
    name: str
    document_id: str | None = None
    token: str


class EmailLinkToken(Input):
    """The secret from a link sent by e-mail (verification, invitation)."""

    token: str = Field(min_length=1, max_length=200)


class EmailAddress(Input):
    email: str = Field(min_length=1, max_length=254)


class PasswordResetConfirm(Input):
    token: str = Field(min_length=1, max_length=200)
    password: Password


class Accepted(BaseModel):
    """The same answer whatever happened (no account oracle): ``verification_sent`` after a
    registration that needs a proven address, ``accepted`` for the e-mail forms."""

    status: Literal["verification_sent", "accepted"]


class Verified(BaseModel):
    status: Literal["verified"] = "verified"


class InvitationAccepted(BaseModel):
    group_id: str
    role: str
    state: Literal["member"] = "member"
class SyncTicketOut(BaseModel):
    ticket: str
    expires_at: datetime


class TotpEnrolment(BaseModel):
    """A new authenticator secret, not yet in force: confirm it with a code."""

    secret: str
    otpauth_uri: str


class TotpCode(Input):
    code: str = Field(min_length=1, max_length=40)


class RecoveryCodes(BaseModel):
    """Ten single-use codes for a lost authenticator, shown this once."""

    recovery_codes: list[str]


class SessionInfo(BaseModel):
    """One of my browser sessions."""

    id: str
    device: str
    ip: str
    created_at: datetime
    last_seen_at: datetime
    current: bool

    @classmethod
    def of(cls, row: WebSession, *, current: bool) -> SessionInfo:
        return cls(id=public_session_id(row.token_hash), device=describe(row.user_agent),
                   ip=row.ip, created_at=row.created_at, last_seen_at=row.last_seen_at,
                   current=current)
