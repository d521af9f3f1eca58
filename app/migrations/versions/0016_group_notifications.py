"""group-level notifications: the folder a notification is about (issue 17: owners are told
when a folder is trashed)

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-08 02:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("folder_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_notifications_folder_id"), ["folder_id"],
                              unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_notifications_folder_id_folders"),
                                    "folders", ["folder_id"], ["id"], ondelete="CASCADE")


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_notifications_folder_id_folders"),
                                 type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_notifications_folder_id"))
        batch_op.drop_column("folder_id")
