"""Links sent by e-mail that prove control of a mailbox: verify an address, reset a password,
accept an invitation.

Each link carries a single-use secret (256 random bits) stored only as its SHA-256, valid for a
limited time, and deleted when used. A link proves one thing: that whoever holds it reads mail
at the address it was sent to. That is what lets an address claim what was meant for it
(invitations): an account whose address is unproven claims nothing."""

from __future__ import annotations

import hashlib
import secrets
import threading
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.errors import BadRequest
from app.models import (
    AccountToken,
    Group,
    Invitation,
    Membership,
    MembershipState,
    User,
    utcnow,
)
from app.services import activity
from app.services.mail import Mail
from app.services.mail import enabled as mail_enabled
from app.settings import Settings

# One new mail per purpose and account per minute at most: the forms that send them are open
# to anyone, and must not become a way to flood someone's inbox.
RESEND_INTERVAL = timedelta(minutes=1)


class TokenInvalid(BadRequest):
    code = "token_invalid"
    default_message = "This link is not valid (any more). Ask for a new one."


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _issue(db: Session, *, purpose: str, email: str, lifetime: timedelta,
           user_id: str | None = None, invitation_id: str | None = None) -> str:
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    db.add(AccountToken(token_hash=_hash(secret), purpose=purpose, email=email, user_id=user_id,
                        invitation_id=invitation_id, created_at=now, expires_at=now + lifetime))
    db.flush()
    return secret


def _consume(db: Session, secret: str, purpose: str) -> AccountToken:
    """The token's row, deleted (single use); :class:`TokenInvalid` for an unknown, used,
    expired or other-purpose secret (one answer for all, so nothing is learnt by trying)."""
    row = db.scalar(select(AccountToken).where(AccountToken.token_hash == _hash(secret)))
    if row is None or row.purpose != purpose:
        raise TokenInvalid()
    if row.expires_at <= utcnow():
        raise TokenInvalid()  # left for the maintenance round to delete
    db.delete(row)
    db.flush()
    return row


def _recently_sent(db: Session, purpose: str, user_id: str, now: datetime) -> bool:
    newest = db.scalar(select(AccountToken.created_at)
                       .where(AccountToken.purpose == purpose, AccountToken.user_id == user_id)
                       .order_by(AccountToken.created_at.desc()).limit(1))
    return newest is not None and now - newest < RESEND_INTERVAL


def _link(settings: Settings, path: str, secret: str) -> str:
    return f"{settings.resolved_base_url}{path}?token={quote(secret)}"


def purge_expired(db: Session, now: datetime | None = None) -> int:
    result = db.execute(delete(AccountToken).where(AccountToken.expires_at <= (now or utcnow())))
    return int(getattr(result, "rowcount", 0) or 0)


# -- e-mail verification -------------------------------------------------------------------

def verification_mail(db: Session, settings: Settings, user: User) -> Mail:
    """A fresh verification link for ``user`` (earlier ones stop working)."""
    db.execute(delete(AccountToken).where(AccountToken.purpose == "verify_email",
                                          AccountToken.user_id == user.id))
    secret = _issue(db, purpose="verify_email", email=user.email, user_id=user.id,
                    lifetime=timedelta(hours=settings.email_verification_hours))
    return Mail(to=user.email, subject="Plein: confirm your e-mail address",
                text=f"Hello {user.name},\n\nConfirm that this is your address for Plein by "
                     f"opening this link:\n\n  {_link(settings, '/verify-email', secret)}\n\n"
                     f"The link works once and for {settings.email_verification_hours} hours. "
                     "If you did not create an account, ignore this message.\n")


def resend_verification(db: Session, settings: Settings, email: str) -> list[Mail]:
    """A new link for an unverified account at ``email``; nothing (and no hint) otherwise."""
    user = db.scalar(select(User).where(User.email == email))
    if user is None or not user.is_active or user.email_verified_at is not None:
        return []
    if _recently_sent(db, "verify_email", user.id, utcnow()):
        return []
    return [verification_mail(db, settings, user)]


def verify_email(db: Session, secret: str) -> User:
    row = _consume(db, secret, "verify_email")
    user = db.get(User, row.user_id) if row.user_id else None
    if user is None or not user.is_active or user.email != row.email:
        raise TokenInvalid()
    mark_verified(db, user)
    return user


def mark_verified(db: Session, user: User) -> None:
    """The person proved they read mail at ``user.email``: from now on the address is theirs,
    and what was meant for it (invitations) becomes theirs."""
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    claim_invitations(db, user)


def claim_invitations(db: Session, user: User) -> list[Membership]:
    """Turn the invitations to ``user.email`` into memberships: only for a proven address."""
    if user.email_verified_at is None:
        return []
    claimed = []
    for invitation in db.scalars(select(Invitation).where(Invitation.email == user.email)).all():
        claimed.append(_become_member(db, invitation, user))
    return claimed


def _become_member(db: Session, invitation: Invitation, user: User) -> Membership:
    membership = db.scalar(select(Membership).where(Membership.group_id == invitation.group_id,
                                                    Membership.user_id == user.id))
    if membership is None:
        membership = Membership(group_id=invitation.group_id, user_id=user.id,
                                role=invitation.role, state=MembershipState.MEMBER)
        db.add(membership)
    elif membership.state != MembershipState.MEMBER:
        membership.role, membership.state = invitation.role, MembershipState.MEMBER
    else:
        db.delete(invitation)
        db.flush()
        return membership  # already in: the invitation has nothing left to give
    db.delete(invitation)
    db.flush()
    activity.record(db, "member.joined", actor_id=user.id, group_id=invitation.group_id,
                    data={"user_id": user.id, "role": membership.role})
    return membership


# -- password reset ------------------------------------------------------------------------

def request_password_reset(db: Session, settings: Settings, email: str) -> list[Mail]:
    """A reset link for the account at ``email``, if there is one. The same work is done
    either way (a token is made and hashed) and the caller answers the same: the form must not
    tell whether an address has an account. The mail leaves after the answer."""
    user = db.scalar(select(User).where(User.email == email))
    secret = secrets.token_urlsafe(32)
    token_hash = _hash(secret)
    now = utcnow()
    if user is None or not user.is_active or _recently_sent(db, "reset_password", user.id, now):
        return []
    db.execute(delete(AccountToken).where(AccountToken.purpose == "reset_password",
                                          AccountToken.user_id == user.id))
    db.add(AccountToken(token_hash=token_hash, purpose="reset_password", email=user.email,
                        user_id=user.id, created_at=now,
                        expires_at=now + timedelta(minutes=settings.password_reset_minutes)))
    db.flush()
    return [Mail(to=user.email, subject="Plein: set a new password",
                 text=f"Hello {user.name},\n\nSomeone (hopefully you) asked to set a new "
                      f"password for your Plein account. Open this link to choose one:\n\n"
                      f"  {_link(settings, '/reset-password', secret)}\n\n"
                      f"The link works once and for {settings.password_reset_minutes} minutes. "
                      "If you did not ask for this, ignore this message: your password stays "
                      "as it is.\n")]


def reset_password_user(db: Session, secret: str) -> User:
    """The account a reset link is for (the link is used up)."""
    row = _consume(db, secret, "reset_password")
    user = db.get(User, row.user_id) if row.user_id else None
    if user is None or not user.is_active or user.email != row.email:
        raise TokenInvalid()
    return user


# "Someone tried to register" mails: at most one per account per interval, or registering an
# address over and over would flood its owner. Kept in memory (no token to store): a restart
# forgets it, which costs at most one more mail.
TAKEN_MAIL_INTERVAL = timedelta(minutes=10)
_taken_mail_sent: dict[str, datetime] = {}
_taken_mail_lock = threading.Lock()


def address_taken_mails(settings: Settings, user: User) -> list[Mail]:
    now = utcnow()
    with _taken_mail_lock:
        last = _taken_mail_sent.get(user.id)
        if last is not None and now - last < TAKEN_MAIL_INTERVAL:
            return []
        if len(_taken_mail_sent) > 10_000:
            _taken_mail_sent.clear()
        _taken_mail_sent[user.id] = now
    return [address_taken_mail(settings, user)]


def address_taken_mail(settings: Settings, user: User) -> Mail:
    return Mail(to=user.email, subject="Plein: someone tried to register with your address",
                text=f"Hello {user.name},\n\nSomeone tried to create a Plein account with this "
                     "e-mail address, which already has one. No new account was made.\n\n"
                     "If it was you and you forgot your password, set a new one here:\n\n"
                     f"  {settings.resolved_base_url}/forgot-password\n\n"
                     "If it was not you, you need not do anything.\n")


# -- invitations ---------------------------------------------------------------------------

def invitation_mails(db: Session, settings: Settings, invitation: Invitation, group: Group,
                     inviter: User) -> list[Mail]:
    """The invitation link, when this server sends mail. Without mail, see
    :func:`invitation_link_to_copy`."""
    if not mail_enabled(settings):
        return []
    return [invitation_mail(db, settings, invitation, group, inviter)]


def invitation_link(db: Session, settings: Settings, invitation: Invitation) -> str:
    """A new single-use link for ``invitation`` (what the mail carries). Only its hash is kept,
    so the link exists once: in the mail, or in the answer to whoever made the invitation. A
    new link replaces the earlier ones (a manager asks again when the first one was lost)."""
    db.execute(delete(AccountToken).where(AccountToken.purpose == "invitation",
                                          AccountToken.invitation_id == invitation.id))
    secret = _issue(db, purpose="invitation", email=invitation.email,
                    invitation_id=invitation.id,
                    lifetime=timedelta(days=settings.invitation_days))
    return _link(settings, "/invite", secret)


def invitation_link_to_copy(db: Session, settings: Settings,
                            invitation: Invitation) -> str | None:
    """Issue 17: with no mail server nothing would reach the invited address and nothing said
    so. Then the link is handed to the person who made the invitation, to pass on themselves."""
    if mail_enabled(settings):
        return None
    return invitation_link(db, settings, invitation)


def invitation_mail(db: Session, settings: Settings, invitation: Invitation, group: Group,
                    inviter: User) -> Mail:
    link = invitation_link(db, settings, invitation)
    return Mail(to=invitation.email, subject=f"Plein: {inviter.name} invites you to “{group.name}”",
                text=f"Hello,\n\n{inviter.name} invites you to the group “{group.name}” on "
                     f"Plein. Open this link to accept (sign in or create an account first "
                     f"if you have none):\n\n  {link}\n\n"
                     f"The link works once and for {settings.invitation_days} days.\n")


def find_invitation(db: Session, secret: str) -> tuple[Invitation, Group]:
    """The invitation a link is for, without using the link up (to show it before accepting)."""
    row = db.scalar(select(AccountToken).where(AccountToken.token_hash == _hash(secret)))
    if row is None or row.purpose != "invitation" or row.expires_at <= utcnow():
        raise TokenInvalid()
    invitation = db.get(Invitation, row.invitation_id) if row.invitation_id else None
    group = db.get(Group, invitation.group_id) if invitation is not None else None
    if invitation is None or group is None:
        raise TokenInvalid()
    return invitation, group


def accept_invitation(db: Session, user: User, secret: str) -> Membership:
    """The link proves its holder reads mail at the invited address: the signed-in account
    (whatever its own address) gets the membership; if that account's address is the invited
    one, it is proven too."""
    row = _consume(db, secret, "invitation")
    invitation = db.get(Invitation, row.invitation_id) if row.invitation_id else None
    if invitation is None or invitation.email != row.email:
        raise TokenInvalid()
    if user.email == invitation.email and user.email_verified_at is None:
        user.email_verified_at = utcnow()
    membership = _become_member(db, invitation, user)
    claim_invitations(db, user)
    return membership
