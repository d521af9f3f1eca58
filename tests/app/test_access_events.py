"""Access-change events: a commit that touches a group's access reaches the listeners once,
after the commit, with that group's id; a rollback reaches nobody."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from app.access import Access
from app.db import Database
from app.db_hooks import SessionHooks
from app.models import Folder, User
from app.services import folders, groups
from app.services.folders import FolderGrant
from tests.app.keyfile import keys_in


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'a.sqlite3'}", keys_in(tmp_path))
    database.migrate()
    return database


def _user(db: Database, name: str) -> str:
    with db.write() as session:
        user = User(email=f"{name}@example.nl", name=name, password_hash="x")
        session.add(user)
        session.flush()
        return user.id


def test_changes_reach_listeners_after_commit(db: Database) -> None:
    hooks = SessionHooks()
    hooks.install(db)
    seen: list[frozenset[str]] = []
    hooks.access.subscribe(seen.append)
    alice_id, bob_id = _user(db, "alice"), _user(db, "bob")

    with db.write() as session:
        alice = session.get_one(User, alice_id)
        group = groups.create_group(session, Access(session, alice), name="G",
                                    description="", group_access="closed")
        group_id = group.id
    assert seen == [{group_id}]

    with db.write() as session:
        alice = session.get_one(User, alice_id)
        access = Access(session, alice)
        group = groups.get_group(session, access, group_id)
        groups.add_member(session, access, group, email="bob@example.nl", role="member")
        root = session.scalar(select(Folder).where(Folder.group_id == group_id))
        assert root is not None
        sub = folders.create_folder(session, access, root, name="Dicht", folder_access="closed")
        folders.set_access(session, access, sub, folder_access="closed",
                           grants=[FolderGrant(bob_id, "viewer")])
    assert seen[-1] == {group_id}
    assert len(seen) == 2  # one notification per commit, not per change

    with pytest.raises(RuntimeError), db.write() as session:
        alice = session.get_one(User, alice_id)
        session.add(Folder(group_id=group_id, name="never", access="open"))
        session.flush()
        raise RuntimeError("roll back")
    assert len(seen) == 2


def test_a_failing_listener_does_not_undo_the_commit(db: Database) -> None:
    hooks = SessionHooks()
    hooks.install(db)

    def broken(_: frozenset[str]) -> None:
        raise ValueError("listener bug")

    hooks.access.subscribe(broken)
    alice_id = _user(db, "alice")
    with db.write() as session:
        alice = session.get_one(User, alice_id)
        groups.create_group(session, Access(session, alice), name="G", description="",
                            group_access="open")
    with db.read() as session:
        assert session.scalar(select(Folder.id)) is not None
