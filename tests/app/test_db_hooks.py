"""Session hooks belong to one application instance: nothing is installed on the Session
class at import time, and two instances in one process never hear each other."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.db import Database
from app.db_hooks import SessionHooks
from app.models import User
from tests.app.keyfile import keys_in


def test_importing_the_app_installs_no_session_hook() -> None:
    import app.main  # noqa: F401  (every module of the app, as a server imports them)

    engine = create_engine("sqlite://")
    try:
        with Session(engine) as session:
            for name in ("before_flush", "do_orm_execute", "after_commit", "after_rollback"):
                assert len(getattr(session.dispatch, name)) == 0, name
    finally:
        engine.dispose()


def _database(directory: Path) -> Database:
    directory.mkdir()
    db = Database(f"sqlite:///{directory / 'h.sqlite3'}", keys_in(directory))
    db.migrate()
    return db


def test_two_instances_hear_only_their_own_database(tmp_path: Path) -> None:
    first, second = _database(tmp_path / "one"), _database(tmp_path / "two")
    heard: dict[str, list[frozenset[str]]] = {"one": [], "two": []}
    for name, db in (("one", first), ("two", second)):
        hooks = SessionHooks()
        hooks.install(db)
        hooks.credentials.subscribe(heard[name].append)
    try:
        with first.write() as session:
            user = User(email="a@example.nl", name="A", password_hash="x")
            session.add(user)
            session.flush()
            user_id = user.id
        with first.write() as session:
            session.delete(session.get_one(User, user_id))
        assert heard == {"one": [frozenset({f"user:{user_id}"})], "two": []}
    finally:
        first.dispose()
        second.dispose()


def test_live_sync_is_built_with_what_it_needs(tmp_path: Path) -> None:
    """No back-reference to the runtime: the database and room manager come in the
    constructor, the loop with ``start()``; before that a change has nothing to re-check."""
    from app.live import LiveSync
    from sync import FileDocumentStore, RoomManager

    db = _database(tmp_path / "live")
    try:
        manager = RoomManager(FileDocumentStore(tmp_path / "notes", keys_in(tmp_path / "live")))
        live = LiveSync(manager, db)
        assert live.db is db and not hasattr(live, "bind")
        live.on_access_change(frozenset({"some-group"}))
        live.on_credentials_ended(frozenset({"user:someone"}))
        assert live.sockets == {}
    finally:
        db.dispose()
