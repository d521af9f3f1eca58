"""seal content columns: titles, names, comments, labels and activity details

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-06 04:50:00

Every existing value is encrypted with the key file (``KeyRing.seal_field``, see
app/models/sealed.py and docs/security.md "Data at rest"). ``plein migrate`` and ``plein serve``
hand this migration the key file; a bare ``alembic upgrade`` needs ``PLEIN_KEY_FILE`` set, and
offline (SQL script) mode cannot run it at all. The columns become TEXT: sealed values are
longer than the old VARCHAR limits (the limits are checked where input is validated).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import context, op

from app.models.sealed import FieldKeys

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

# table -> [(column, type before this migration, nullable)]
COLUMNS: dict[str, list[tuple[str, sa.types.TypeEngine[Any], bool]]] = {
    "groups": [("name", sa.String(length=120), False), ("description", sa.Text(), False)],
    "folders": [("name", sa.String(length=200), False)],
    "documents": [("title", sa.String(length=300), False)],
    "document_versions": [("filename", sa.String(length=300), False),
                          ("label", sa.String(length=200), True)],
    "comments": [("body", sa.Text(), False), ("anchor", sa.JSON(), True)],
    "activities": [("data", sa.JSON(), False)],
}
BATCH = 500


def _keys() -> FieldKeys | None:
    keys: FieldKeys | None = context.config.attributes.get("plein_keys")
    return keys


def _convert(transform: Callable[[str, str], str]) -> None:
    """Rewrite every non-null value of every listed column with ``transform(value, context)``,
    in batches by primary key."""
    bind = op.get_bind()
    for table_name, columns in COLUMNS.items():
        names = [name for name, _, _ in columns]
        table = sa.table(table_name, sa.column("id"), *(sa.column(n) for n in names))
        last = ""
        while True:
            rows = bind.execute(sa.select(table).where(table.c.id > last)
                                .order_by(table.c.id).limit(BATCH)).all()
            if not rows:
                break
            for row in rows:
                values = {name: transform(str(getattr(row, name)), f"{table_name}.{name}")
                          for name in names if getattr(row, name) is not None}
                if values:
                    bind.execute(sa.update(table).where(table.c.id == row.id).values(**values))
            last = rows[-1].id


def _require_keys() -> FieldKeys:
    if context.is_offline_mode():
        raise RuntimeError("migration 0009 encrypts existing rows and cannot run in offline "
                           "(SQL script) mode; run `plein migrate`")
    keys = _keys()
    if keys is None:
        raise RuntimeError("migration 0009 encrypts existing rows with the key file: run "
                           "`plein migrate`, or set PLEIN_KEY_FILE for `alembic upgrade`")
    return keys


def upgrade() -> None:
    # Check for the key first: SQLite runs these DDL statements outside one transaction, so a
    # refusal halfway would leave a half-migrated schema.
    keys = _require_keys() if _has_rows() else None  # a new database needs no key
    for table_name, columns in COLUMNS.items():
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            for name, old_type, nullable in columns:
                batch_op.alter_column(name, existing_type=old_type, type_=sa.Text(),
                                      existing_nullable=nullable)
    if keys is None:
        return

    def seal(value: str, where: str) -> str:
        return keys.seal_field(value.encode("utf-8"), where)

    _convert(seal)


def downgrade() -> None:
    if _has_rows():
        keys = _require_keys()

        def unseal(value: str, where: str) -> str:
            return keys.open_field(value, where).decode("utf-8")

        _convert(unseal)
    for table_name, columns in COLUMNS.items():
        with op.batch_alter_table(table_name, schema=None) as batch_op:
            for name, old_type, nullable in columns:
                batch_op.alter_column(name, existing_type=sa.Text(), type_=old_type,
                                      existing_nullable=nullable)


def _has_rows() -> bool:
    if context.is_offline_mode():
        return True
    bind = op.get_bind()
    return any(bind.execute(sa.select(sa.literal(1)).select_from(sa.table(t)).limit(1)).first()
               for t in COLUMNS)
