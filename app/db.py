"""Database engine, sessions and migrations.

SQLite runs in WAL mode with ``synchronous=FULL`` so a commit that returned is on disk (SECURITY.md,
crash safety). Write transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the
busy timeout instead of failing with "database is locked" when a read lock would be upgraded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from app.models.sealed import FieldKeys, attach_keys

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    is_sqlite = url.startswith("sqlite")
    kwargs: dict[str, Any] = {}
    if is_sqlite:
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted rows are zeroed, not left readable in free pages (docs/security.md).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("plein_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class Database:
    """Owns the engine and hands out sessions: ``read()`` for queries, ``write()`` for changes.

    One request = one transaction: ``write()`` commits when the block ends without an exception
    and rolls back otherwise, so nothing is half-created on error.
    """

    def __init__(self, url: str, keys: FieldKeys | None = None) -> None:
        self.url = url
        self.keys = keys
        self.engine = make_engine(url)
        if keys is not None:
            attach_keys(self.engine, keys)
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(
            self.engine.execution_options(plein_write=True), expire_on_commit=False
        )

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session:
            try:
                yield session
            finally:
                session.rollback()

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self._writer() as session, session.begin():
            yield session

    @property
    def session_factories(self) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
        """The factories of read and write sessions (for session hooks, app.db_hooks)."""
        return self._reader, self._writer

    def session(self, *, write: bool) -> Session:
        return (self._writer if write else self._reader)()

    def migrate(self) -> None:
        """Bring the schema to the newest migration (run by ``plein serve`` at start)."""
        # "heads": branches made in parallel (each from the same parent) all apply; with one
        # head it is the same as "head".
        command.upgrade(alembic_config(self.url, self.keys), "heads")
        self.checkpoint()

    def checkpoint(self) -> None:
        """Fold the SQLite write-ahead log into the database file and empty it: after a
        migration that sealed plaintext, the log's old page images must not keep it."""
        if self.engine.dialect.name == "sqlite":
            # On the raw connection: outside a transaction, where a checkpoint can finish.
            raw = self.engine.raw_connection()
            try:
                raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            finally:
                raw.close()

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str, keys: FieldKeys | None = None) -> Config:
    """The alembic configuration for ``url``; ``keys`` reach migrations that seal data
    (``config.attributes["plein_keys"]``, see app/migrations/env.py)."""
    config = Config()
    if keys is not None:
        config.attributes["plein_keys"] = keys
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config
