"""Sync tickets: a short-lived, single-use pass for one live-sync socket (see
:mod:`app.models.tickets`).

``POST /api/v1/documents/{id}/sync-ticket`` hands one out to whoever may read the note; the
sync client opens ``/sync/{id}?ticket=...`` within ``PLEIN_SYNC_TICKET_SECONDS``. Redeeming
deletes the row in the handshake's write transaction, so a ticket opens one socket at most,
even when two handshakes race (SQLite serializes the writers). The credential that asked
must still be alive when the ticket is redeemed, and the socket remembers that credential.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.credential_events import session_key, token_key
from app.models import ApiToken, SyncTicket, User, WebSession, utcnow
from app.services.accounts import sha256_hex

TICKET_PREFIX = "plein-ticket_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True)
class Redeemed:
    user: User
    #: The credential that asked for the ticket (``session:<hash>`` or ``token:<id>``).
    credential: str


def create_ticket(db: Session, *, user: User, document_id: str, seconds: int,
                  session_token: str | None, api_token: ApiToken | None
                  ) -> tuple[str, datetime]:
    """A new ticket for ``document_id``, bound to the caller's credential; returns the
    secret (shown once) and when it expires."""
    if (session_token is None) == (api_token is None):
        raise ValueError("a ticket needs exactly one credential")
    secret = TICKET_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    expires_at = now + timedelta(seconds=seconds)
    db.add(SyncTicket(ticket_hash=sha256_hex(secret), user_id=user.id, document_id=document_id,
                      session_hash=sha256_hex(session_token) if session_token else None,
                      token_id=api_token.id if api_token else None,
                      created_at=now, expires_at=expires_at))
    # Expired tickets of anyone: a ticket row is small, but nothing else ever removes them.
    db.execute(delete(SyncTicket).where(SyncTicket.expires_at <= now))
    return secret, expires_at


def redeem_ticket(db: Session, secret: str, document_id: str) -> Redeemed | None:
    """Spend the ticket (whatever the outcome); the person and credential if it is valid
    for ``document_id`` now. Must run in a write transaction."""
    if not secret.startswith(TICKET_PREFIX):
        return None
    row = db.get(SyncTicket, sha256_hex(secret))
    if row is None:
        return None
    db.delete(row)
    db.flush()
    if row.expires_at <= utcnow() or row.document_id != document_id:
        return None
    user = db.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if row.session_hash is not None:
        session_row = db.get(WebSession, row.session_hash)
        if session_row is None or session_row.expires_at <= utcnow():
            return None
        return Redeemed(user, session_key(row.session_hash))
    token = db.get(ApiToken, row.token_id) if row.token_id else None
    if token is None or (token.document_id is not None and token.document_id != document_id):
        return None
    return Redeemed(user, token_key(token.id))


def credential_alive(db: Session, credential: str, user_id: str) -> bool:
    """Whether ``credential`` (``session:<hash>`` / ``token:<id>``) of ``user_id`` still
    works: the periodic safety re-check of open live channels."""
    user = db.get(User, user_id)
    if user is None or not user.is_active:
        return False
    kind, _, ident = credential.partition(":")
    if kind == "session":
        row = db.get(WebSession, ident)
        return row is not None and row.user_id == user_id and row.expires_at > utcnow()
    if kind == "token":
        token = db.get(ApiToken, ident)
        return token is not None and token.user_id == user_id
    return False
