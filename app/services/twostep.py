"""Two-step sign-in with an authenticator app (TOTP, RFC 6238, via pyotp).

Enrolling stores a fresh secret, unconfirmed; the person scans the QR code (drawn here, as
SVG, by segno: no outside service sees the secret) and confirms with a code, which turns it
on and hands out ten single-use recovery codes. From then on signing in needs a code (or a
recovery code) after the password. Guessing is throttled like passwords are
(:func:`app.services.accounts.check_keys`), per person and per address; a code is accepted
once (the step it belongs to is remembered), so one read over a shoulder cannot be replayed.
"""

from __future__ import annotations

import hmac
import secrets
import time

import pyotp
import segno
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.errors import Conflict, Unprocessable
from app.i18n import N_
from app.models import LoginFailure, RecoveryCode, TotpCredential, User, WebSession, utcnow
from app.services import accounts
from app.settings import Settings

ISSUER = "Plein"
STEP_SECONDS = 30
# One step either side: the phone's clock may be off by half a minute.
DRIFT_STEPS = 1
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: read off paper
_RECOVERY_LENGTH = 16  # 16 of 32 symbols: 80 bits


def credential(db: Session, user_id: str) -> TotpCredential | None:
    return db.scalar(select(TotpCredential).where(TotpCredential.user_id == user_id))


def enabled(db: Session, user_id: str) -> bool:
    row = credential(db, user_id)
    return row is not None and row.confirmed_at is not None


def otpauth_uri(secret: str, user: User) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The ``otpauth://`` URI as an inline SVG (no script, no outside request: fits the CSP)."""
    return str(segno.make(uri, error="m").svg_inline(scale=5, border=2, light="#fff", title=ISSUER))


def enrol(db: Session, user: User) -> tuple[str, str]:
    """Start (or restart) enrolment: a new secret, not yet in force. Returns the secret and
    its ``otpauth://`` URI."""
    row = credential(db, user.id)
    if row is not None and row.confirmed_at is not None:
        raise Conflict(N_("Two-step sign-in is already on; turn it off first to enrol a new "
                          "device."), code="totp_enabled")
    secret = pyotp.random_base32()
    if row is None:
        db.add(TotpCredential(user_id=user.id, secret=secret, last_step=0))
    else:
        row.secret, row.created_at, row.last_step = secret, utcnow(), 0
    db.flush()
    return secret, otpauth_uri(secret, user)


def _throttle_keys(user_id: str, ip: str) -> list[str]:
    # Per person (only someone with the password gets this far, so this keeps nobody out
    # who should be in) and per address (spraying many accounts).
    return [f"otp:{user_id}", f"ip:{ip}"]


def _normalise(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _check_totp(row: TotpCredential, code: str, now: float) -> bool:
    if not (code.isdigit() and len(code) == 6):
        return False
    totp = pyotp.TOTP(row.secret)
    current = int(now) // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > row.last_step and hmac.compare_digest(totp.generate_otp(step), code):
            row.last_step = step
            return True
    return False


def _use_recovery_code(db: Session, user_id: str, code: str) -> bool:
    if len(code) != _RECOVERY_LENGTH:
        return False
    found = db.scalar(select(RecoveryCode).where(RecoveryCode.user_id == user_id,
                                                 RecoveryCode.code_hash
                                                 == accounts.sha256_hex(code)))
    if found is None:
        return False
    db.delete(found)
    return True


def verify(db: Session, settings: Settings, user: User, code: str, ip: str, *,
           recovery: bool = True) -> bool:
    """Whether ``code`` is a fresh code of the person's authenticator (or, with ``recovery``,
    one of their unused recovery codes, which is then used up). Raises
    :class:`~app.errors.RateLimited` while a delay runs; a wrong code is counted, so the caller
    must commit even when this returns ``False``."""
    row = credential(db, user.id)
    now = utcnow()
    keys = _throttle_keys(user.id, ip)
    accounts.check_keys(db, settings, keys, now)
    code = _normalise(code)
    ok = row is not None and (_check_totp(row, code, time.time()) or (
        recovery and row.confirmed_at is not None and _use_recovery_code(db, user.id, code)))
    if not ok:
        accounts.record_keys(db, keys, now)
        return False
    db.execute(delete(LoginFailure).where(LoginFailure.key == keys[0]))
    return True


def new_recovery_codes(db: Session, user_id: str) -> list[str]:
    """Replace the person's recovery codes with ten new ones (shown once)."""
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
             for _ in range(RECOVERY_CODES)]
    for code in codes:
        db.add(RecoveryCode(user_id=user_id, code_hash=accounts.sha256_hex(code)))
    return [f"{c[0:4]}-{c[4:8]}-{c[8:12]}-{c[12:16]}" for c in codes]


def recovery_codes_left(db: Session, user_id: str) -> int:
    return len(db.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user_id)).all())


def confirm(db: Session, user: User, *, keep_session: str | None) -> list[str]:
    """Turn two-step sign-in on (after :func:`verify` accepted a code of the new secret) and
    return the recovery codes. Every other session of the person ends: each was opened with
    the password alone, which is no longer enough."""
    row = credential(db, user.id)
    if row is None:
        raise Conflict(N_("Start enrolling first."), code="totp_not_enrolled")
    row.confirmed_at = utcnow()
    others = select(WebSession).where(WebSession.user_id == user.id)
    if keep_session is not None:
        others = others.where(WebSession.token_hash != accounts.sha256_hex(keep_session))
    for session in db.scalars(others):
        db.delete(session)  # one by one: the credential events close their live channels
    return new_recovery_codes(db, user.id)


def require_pending(db: Session, user: User) -> TotpCredential:
    row = credential(db, user.id)
    if row is None:
        raise Conflict(N_("Start enrolling first."), code="totp_not_enrolled")
    if row.confirmed_at is not None:
        raise Conflict(N_("Two-step sign-in is already on."), code="totp_enabled")
    return row


def require_enabled(db: Session, user: User) -> TotpCredential:
    row = credential(db, user.id)
    if row is None or row.confirmed_at is None:
        raise Conflict(N_("Two-step sign-in is not on."), code="totp_not_enabled")
    return row


def disable(db: Session, user: User) -> None:
    """Turn two-step sign-in off (after :func:`verify` accepted a code)."""
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.execute(delete(TotpCredential).where(TotpCredential.user_id == user.id))


def wrong_code() -> Unprocessable:
    return Unprocessable(N_("The code is wrong or has been used already."), code="invalid_otp",
                         field="code")
