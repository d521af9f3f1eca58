"""Accounts: registration, sign-in with throttling, sessions, profile, password change, tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.errors import Conflict, Forbidden, NotFound, RateLimited, Unprocessable
from app.i18n import N_
from app.models import (
    ApiToken,
    LoginFailure,
    User,
    WebSession,
    utcnow,
)
from app.services import account_links, audit
from app.services.mail import Mail
from app.services.passwords import Passwords
from app.settings import Settings

TOKEN_PREFIX = "plein_"  # noqa: S105 - a prefix, not a secret


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def normalize_email(email: str) -> str:
    return email.strip().lower()


@dataclass
class Registration:
    """What registering did: the new account (``None`` when the address already had one and
    the answer must not say so) and the mail to send after the commit."""

    user: User | None
    mails: list[Mail] = field(default_factory=list)


def register(
    db: Session, settings: Settings, passwords: Passwords, *, email: str, name: str, password: str,
    by_operator: bool = False,
) -> Registration:
    """Create an account. The very first account becomes site administrator and may always be
    created, so a fresh install is usable even with registration closed.

    Registration claims nothing: invitations go to a proven address only (account_links).
    While e-mail verification is required, a taken address is answered like a fresh one (its
    owner gets a mail instead), so registering tells nobody which addresses have accounts.
    Without verification the new account is usable at once, so a taken address must be
    refused (409) and that much is revealed."""
    email = normalize_email(email)
    first = db.scalar(select(func.count()).select_from(User)) == 0
    if not first and not settings.open_registration:
        raise Forbidden(N_("Registration is closed; ask an administrator for an account."),
                        code="registration_closed")
    # Hashed before the look-up: a taken address costs the same time as a fresh one.
    password_hash = passwords.hash(password)
    existing = db.scalar(select(User).where(User.email == email))
    verifying = settings.email_verification_required and not by_operator
    if existing is not None:
        if not verifying:
            raise Conflict(N_("An account with this e-mail address exists."), code="email_taken",
                           field="email")
        mails = account_links.address_taken_mails(settings, existing) if existing.is_active \
            else []
        return Registration(None, mails)
    proven = first or by_operator
    user = User(email=email, name=name.strip(), password_hash=password_hash,
                is_site_admin=first, email_verified_at=utcnow() if proven else None)
    db.add(user)
    db.flush()
    if verifying and not proven:
        return Registration(user, [account_links.verification_mail(db, settings, user)])
    return Registration(user)


def require_verified(settings: Settings, user: User) -> None:
    """Signing in needs a proven address while verification is required (the password was
    right, so saying so reveals nothing to a stranger)."""
    if settings.email_verification_required and user.email_verified_at is None:
        raise Forbidden(N_("Confirm your e-mail address first: open the link we sent you, or ask "
                        "for a new one."), code="email_unverified")


def reset_password(db: Session, passwords: Passwords, secret: str, new: str) -> User:
    """Set a new password from a reset link: every session and personal access token ends
    (whoever had the old password is out, as after a password change) and the address counts
    as proven (the link was read there)."""
    user = account_links.reset_password_user(db, secret)
    user.password_hash = passwords.hash(new)
    revoke_all_sessions(db, user.id)
    db.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    account_links.mark_verified(db, user)
    return user


# -- sign-in throttling --------------------------------------------------------------------

def _throttle_keys(email: str, ip: str) -> list[str]:
    # Per address+IP (slows guessing one password) and per IP (slows spraying many accounts).
    # Not per address alone: then anyone could keep a person out by failing on purpose.
    return [f"login:{email}|{ip}", f"ip:{ip}"]


# Failures older than this are forgotten: without it, typos collected over months behind one
# office NAT address would make every later slip from there wait the maximum delay. An attacker
# who keeps guessing keeps the count alive (each failure renews it).
FAILURE_MEMORY = timedelta(days=1)


def _delay_seconds(settings: Settings, failures: int, *, per_ip: bool) -> int:
    free = settings.login_free_failures * (10 if per_ip else 1)
    if failures < free:
        return 0
    return int(min(2 ** (failures - free), settings.login_max_delay_seconds))


def check_throttle(db: Session, settings: Settings, email: str, ip: str, now: datetime) -> None:
    check_keys(db, settings, _throttle_keys(email, ip), now)


def check_keys(db: Session, settings: Settings, keys: list[str], now: datetime) -> None:
    """Raise :class:`RateLimited` while the delay earned by the failures under ``keys`` runs
    (keys starting ``ip:`` allow ten times the free failures: an office shares one address)."""
    for key in keys:
        row = db.get(LoginFailure, key)
        if row is None or now - row.last_failure_at > FAILURE_MEMORY:
            continue
        delay = _delay_seconds(settings, row.failures, per_ip=key.startswith("ip:"))
        wait_until = row.last_failure_at + timedelta(seconds=delay)
        if delay and now < wait_until:
            raise RateLimited(
                N_("Too many failed sign-ins; wait a moment before trying again."),
                retry_after=int((wait_until - now).total_seconds()) + 1,
            )


def record_failure(db: Session, email: str, ip: str, now: datetime) -> None:
    record_keys(db, _throttle_keys(email, ip), now)


def record_keys(db: Session, keys: list[str], now: datetime) -> None:
    for key in keys:
        row = db.get(LoginFailure, key)
        if row is None:
            db.add(LoginFailure(key=key, failures=1, last_failure_at=now))
        else:
            row.failures = 1 if now - row.last_failure_at > FAILURE_MEMORY else row.failures + 1
            row.last_failure_at = now


def clear_failures(db: Session, email: str, ip: str) -> None:
    db.execute(delete(LoginFailure).where(LoginFailure.key == f"login:{email}|{ip}"))


def authenticate(
    db: Session, settings: Settings, passwords: Passwords, *, email: str, password: str, ip: str
) -> User | None:
    """The user for these credentials, or ``None``; raises :class:`RateLimited` while a delay
    runs. The caller must commit even when ``None`` is returned, so the failure is counted."""
    email = normalize_email(email)
    now = utcnow()
    check_throttle(db, settings, email, ip, now)
    user = db.scalar(select(User).where(User.email == email))
    ok = passwords.verify(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        record_failure(db, email, ip, now)
        login_failed(db, email=email, user=user, ip=ip, reason="password")
        return None
    clear_failures(db, email, ip)
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
    return user


def logged_in(db: Session, user: User, *, ip: str, method: str) -> None:
    """Audit a completed sign-in (``method``: password, totp, recovery, sso)."""
    audit.record(db, "session.login", actor_id=user.id, object_type="user", object_id=user.id,
                 ip=ip, detail={"method": method})


def login_failed(db: Session, *, email: str, user: User | None, ip: str, reason: str) -> None:
    """Audit a refused sign-in (``reason``: password, otp). The address tried is in the sealed
    detail; the object is the account when there is one."""
    audit.record(db, "session.login_failed", actor_id=None, object_type="user",
                 object_id=user.id if user else "", ip=ip,
                 detail={"email": email, "reason": reason})


# -- sessions --------------------------------------------------------------------------------

def create_session(db: Session, settings: Settings, user: User, user_agent: str = "",
                   ip: str = "") -> str:
    """A new session with a fresh random id (never reusing one the browser brought: no fixation).
    Returns the cookie value; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(WebSession(token_hash=sha256_hex(token), user_id=user.id, created_at=now,
                      last_seen_at=now, expires_at=now + timedelta(days=settings.session_days),
                      user_agent=user_agent[:200], ip=ip[:64]))
    return token


def session_user(db: Session, token: str) -> tuple[WebSession, User] | None:
    row = db.get(WebSession, sha256_hex(token))
    if row is None or row.expires_at <= utcnow():
        return None
    user = db.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    return row, user


def touch_session(db: Session, settings: Settings, token: str, ip: str | None = None) -> None:
    row = db.get(WebSession, sha256_hex(token))
    if row is not None:
        now = utcnow()
        row.last_seen_at = now
        row.expires_at = now + timedelta(days=settings.session_days)
        if ip is not None:
            row.ip = ip[:64]


TOUCH_INTERVAL = timedelta(hours=1)


def is_stale(last: datetime | None) -> bool:
    return last is None or utcnow() - last > TOUCH_INTERVAL


def touch_token(db: Session, token_id: str) -> None:
    row = db.get(ApiToken, token_id)
    if row is not None:
        row.last_used_at = utcnow()


def revoke_session(db: Session, token: str) -> None:
    db.execute(delete(WebSession).where(WebSession.token_hash == sha256_hex(token)))


def public_session_id(token_hash: str) -> str:
    """The id a person's sessions page shows for a session: derived from the stored hash, so
    it names the session without being anything a cookie or a live channel is keyed by."""
    return sha256_hex(f"session-id|{token_hash}")[:24]


def list_sessions(db: Session, user: User) -> list[WebSession]:
    """The person's live browser sessions, most recently used first."""
    return list(db.scalars(select(WebSession).where(WebSession.user_id == user.id,
                                                    WebSession.expires_at > utcnow())
                           .order_by(WebSession.last_seen_at.desc())))


def end_session(db: Session, user: User, session_id: str) -> WebSession:
    """End one of the person's own sessions by its public id (another person's, or none:
    404). Deleted through the ORM, so its live channels close (app.credential_events)."""
    for row in list_sessions(db, user):
        if hmac.compare_digest(public_session_id(row.token_hash), session_id):
            db.delete(row)
            db.flush()
            return row
    raise NotFound(N_("No such session."))


def revoke_all_sessions(db: Session, user_id: str) -> None:
    db.execute(delete(WebSession).where(WebSession.user_id == user_id))


def change_password(
    db: Session, passwords: Passwords, user: User, *, current: str, new: str
) -> None:
    """Change the password and end every credential of the person: all sessions (the caller
    signs the person in again with a fresh one) and all personal access tokens. A password
    change is how someone takes an account back; whoever knew the old password could have
    made tokens, and those must not outlive it (docs/security.md, "Credentials and live
    channels"). Open live channels close with them."""
    if not passwords.verify(user.password_hash, current):
        raise Unprocessable(N_("The current password is wrong."), code="wrong_password",
                            field="current_password")
    user.password_hash = passwords.hash(new)
    revoke_all_sessions(db, user.id)
    db.execute(delete(ApiToken).where(ApiToken.user_id == user.id))


# -- personal access tokens ----------------------------------------------------------------

def create_token(db: Session, user: User, name: str, document_id: str | None = None
                 ) -> tuple[ApiToken, str]:
    token_id = secrets.token_urlsafe(9)
    secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    row = ApiToken(id=token_id, user_id=user.id, name=name.strip(),
                   token_hash=sha256_hex(secret), document_id=document_id)
    db.add(row)
    db.flush()
    return row, secret


def token_user(db: Session, secret: str) -> tuple[ApiToken, User] | None:
    if not secret.startswith(TOKEN_PREFIX):
        return None
    row = db.scalar(select(ApiToken).where(ApiToken.token_hash == sha256_hex(secret)))
    if row is None:
        return None
    user = db.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    return row, user


def list_tokens(db: Session, user: User) -> list[ApiToken]:
    return list(db.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                           .order_by(ApiToken.created_at)))


def delete_token(db: Session, user: User, token_id: str) -> None:
    row = db.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound(N_("No such token."))
    db.delete(row)


def update_profile(user: User, *, name: str | None, bio: str | None, organisation: str | None,
                   language: str | None) -> None:
    if name is not None:
        user.name = name.strip()
    if bio is not None:
        user.bio = bio
    if organisation is not None:
        user.organisation = organisation.strip()
    if language is not None:
        user.language = language
