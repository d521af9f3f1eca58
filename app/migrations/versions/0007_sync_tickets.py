"""sync tickets: short-lived, single-use passes for live-sync sockets

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-06 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.models.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_tickets",
        sa.Column("ticket_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("document_id", sa.String(length=32), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=True),
        sa.Column("token_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", app.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_sync_tickets_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_hash"],
            ["web_sessions.token_hash"],
            name=op.f("fk_sync_tickets_session_hash_web_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["api_tokens.id"],
            name=op.f("fk_sync_tickets_token_id_api_tokens"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_sync_tickets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("ticket_hash", name=op.f("pk_sync_tickets")),
    )
    with op.batch_alter_table("sync_tickets", schema=None) as batch_op:
        for column in ("document_id", "expires_at", "session_hash", "token_id", "user_id"):
            batch_op.create_index(batch_op.f(f"ix_sync_tickets_{column}"), [column],
                                  unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sync_tickets", schema=None) as batch_op:
        for column in ("document_id", "expires_at", "session_hash", "token_id", "user_id"):
            batch_op.drop_index(batch_op.f(f"ix_sync_tickets_{column}"))
    op.drop_table("sync_tickets")
