"""Sync tickets: short-lived, single-use passes that open one live-sync socket.

A ticket is what a sync client puts in its WebSocket URL instead of a long-lived token
(URLs end up in logs and histories). Only its SHA-256 is stored. It names the document, the
person and the credential that asked (a session's hash or a token's id): it dies with that
credential (the foreign keys delete it) and the socket it opens is closed with it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UTCDateTime, utcnow


class SyncTicket(Base):
    __tablename__ = "sync_tickets"

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    # Exactly one of these: the credential that asked for the ticket.
    session_hash: Mapped[str | None] = mapped_column(
        ForeignKey("web_sessions.token_hash", ondelete="CASCADE"), nullable=True, index=True
    )
    token_id: Mapped[str | None] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
