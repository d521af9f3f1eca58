"""First run and every start: data directory, session secret, key file, database migrations.

A missing or unreadable key file for an existing installation is a clear error *before* any
data is touched: we only create a key file when the database is new as well.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from app.db import Database
from app.db_hooks import SessionHooks
from app.errors import ConfigurationError
from app.settings import Settings
from storage import KeySource, StorageError

log = logging.getLogger("plein")


def prepare_data_dir(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


def load_or_create_secret(path: Path) -> bytes:
    if path.exists():
        data = path.read_bytes().strip()
        if len(data) < 32:
            raise ConfigurationError(f"The secret file {path} is too short or damaged.")
        return data
    value = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
        handle.flush()
        os.fsync(handle.fileno())
    return value


def database_is_new(settings: Settings) -> bool:
    if settings.database_url:
        return False  # an external database: never guess, the key file must be given
    return not (settings.data_dir / "plein.sqlite3").exists()


def load_keys(settings: Settings, *, create: bool) -> KeySource:
    path = settings.resolved_key_file
    try:
        if create and not path.exists():
            log.info("creating key file %s", path)
            return KeySource.create(path)
        return KeySource.load(path)
    except StorageError as exc:
        raise ConfigurationError(
            f"Cannot use the key file {path}: {exc}. Without it stored files cannot be read; "
            "restore it from your backup (see docs/key-management.md)."
        ) from exc


@dataclass(frozen=True)
class Prepared:
    db: Database
    keys: KeySource
    secret: bytes
    hooks: SessionHooks


def prepare(settings: Settings) -> Prepared:
    """Everything every command needs before it touches data, in a safe order: the key file is
    checked (or, for a brand-new install, created) before the database is created or migrated."""
    new_install = database_is_new(settings)
    prepare_data_dir(settings)
    keys = load_keys(settings, create=new_install)
    secret = load_or_create_secret(settings.resolved_secret_file)
    # The engine carries the keys: sealed columns (titles, names, comments) are encrypted and
    # decrypted with them, and migrations that seal existing rows get them too.
    db = Database(settings.resolved_database_url, keys)
    db.migrate()
    hooks = SessionHooks()
    hooks.install(db)
    return Prepared(db=db, keys=keys, secret=secret, hooks=hooks)
