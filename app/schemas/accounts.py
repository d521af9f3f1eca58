"""Accounts, sessions and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, EmailStr

from app.models import ApiToken, User
from app.schemas.common import Input, LongText, Name, OptionalLine, Password


class UserCreate(Input):
    email: EmailStr
    name: Name
    password: Password


class SessionCreate(Input):
    email: str
    password: str


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


class UserOut(BaseModel):
    id: str
    email: str
    name: str
    bio: str
    organisation: str
    is_site_admin: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, name=user.name, bio=user.bio,
                   organisation=user.organisation, is_site_admin=user.is_site_admin,
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
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(id=token.id, name=token.name, created_at=token.created_at,
                   last_used_at=token.last_used_at)


class TokenCreated(BaseModel):
    id: str
    name: str
    token: str
