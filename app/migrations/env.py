"""Alembic environment: migrations run against the URL Plein's settings resolve."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import context
from sqlalchemy import create_engine, pool

from app.models import Base
from app.models.sealed import FieldKeys, attach_keys

config = context.config
target_metadata = Base.metadata


def migration_keys() -> FieldKeys | None:
    """The key file, for migrations that seal existing rows: given by ``plein migrate`` /
    ``plein serve``; a bare ``alembic upgrade`` reads ``PLEIN_KEY_FILE``."""
    keys: FieldKeys | None = config.attributes.get("plein_keys")
    if keys is None and os.environ.get("PLEIN_KEY_FILE"):
        from storage import KeySource

        keys = KeySource.load(Path(os.environ["PLEIN_KEY_FILE"]))
    return keys


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None  # noqa: S101 - set by app.db.alembic_config
    engine = create_engine(url, poolclass=pool.NullPool)
    keys = migration_keys()
    if keys is not None:
        attach_keys(engine, keys)
        config.attributes["plein_keys"] = keys
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # Migration 0009 replaces plaintext with sealed values (and batch mode copies whole
            # tables): zero what is freed, so the old text does not linger in free pages.
            connection.exec_driver_sql("PRAGMA secure_delete=ON")
            connection.commit()  # end the autobegun transaction: alembic opens its own
        # render_as_batch: SQLite can only ALTER by copying tables; batch mode does that for us.
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
