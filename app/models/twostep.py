"""Two-step sign-in (TOTP, RFC 6238) and single sign-on (OpenID Connect): authenticator
secrets, recovery codes, links to provider accounts, sign-ons under way."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, new_id, utcnow
from app.models.sealed import SealedText


class TotpCredential(Base):
    """One authenticator per person. The shared secret is content (whoever holds it can make
    codes), so it is stored sealed. ``confirmed_at`` is NULL until the person proved with a
    code that their app has it; only then does signing in ask for codes."""

    __tablename__ = "totp_credentials"

    # An ``id`` like every table with sealed columns (key rotation and fsck walk rows by it).
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         unique=True)
    secret: Mapped[str] = mapped_column(SealedText("totp_credentials.secret"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # The 30-second step of the last code accepted: a code of that step or an earlier one is
    # refused, so a code seen over someone's shoulder cannot be used a second time.
    last_step: Mapped[int] = mapped_column(Integer, default=0)


class RecoveryCode(Base):
    """A single-use code for a lost authenticator. Only its SHA-256 is kept (the code is 80
    random bits, so a slow hash adds nothing); using it deletes the row."""

    __tablename__ = "totp_recovery_codes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OidcLink(Base):
    """An account at the single sign-on provider (issuer + subject, which never change for a
    person; an e-mail address may) linked to a Plein account."""

    __tablename__ = "oidc_links"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    issuer: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OidcLogin(Base):
    """A single sign-on under way: what the callback must find (the ``state``, stored hashed),
    bound to the browser that started it, used once. The PKCE verifier and the nonce are
    secrets for a few minutes, so they are sealed."""

    __tablename__ = "oidc_logins"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    browser_hash: Mapped[str] = mapped_column(String(64))
    nonce: Mapped[str] = mapped_column(SealedText("oidc_logins.nonce"))
    code_verifier: Mapped[str] = mapped_column(SealedText("oidc_logins.code_verifier"))
    next_url: Mapped[str] = mapped_column(String(2000), default="/")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
