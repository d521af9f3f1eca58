"""Credential events: whatever ends a session, a token or an account reaches the listeners
once, after the commit, with exactly those credentials; a rollback reaches nobody."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from app.credential_events import session_key, token_key, user_key
from app.db import Database
from app.db_hooks import SessionHooks
from app.models import ApiToken, User
from app.services import accounts
from app.settings import Settings


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def seen(db: Database) -> list[frozenset[str]]:
    hooks = SessionHooks()
    hooks.install(db)
    found: list[frozenset[str]] = []
    hooks.credentials.subscribe(found.append)
    return found


def _user(db: Database, name: str) -> str:
    with db.write() as session:
        user = User(email=f"{name}@example.nl", name=name, password_hash="x")
        session.add(user)
        session.flush()
        return user.id


def test_each_way_of_ending_a_credential_is_announced(db: Database,
                                                      seen: list[frozenset[str]]) -> None:
    settings = Settings(data_dir=Path("/nonexistent"))
    alice_id, bob_id = _user(db, "alice"), _user(db, "bob")
    with db.write() as session:
        alice = session.get_one(User, alice_id)
        one = accounts.create_session(session, settings, alice)
        two = accounts.create_session(session, settings, alice)
        token, _secret = accounts.create_token(session, alice, "t")
        token_id = token.id
    assert seen == []  # creating credentials ends none

    with db.write() as session:  # signing out: a bulk DELETE of one row
        accounts.revoke_session(session, one)
    assert seen[-1] == {session_key(accounts.sha256_hex(one))}

    with db.write() as session:  # revoking a token: an ORM delete
        accounts.delete_token(session, session.get_one(User, alice_id), token_id)
    assert seen[-1] == {token_key(token_id)}

    with db.write() as session:  # every session of a person
        accounts.revoke_all_sessions(session, alice_id)
    assert seen[-1] == {session_key(accounts.sha256_hex(two))}

    with db.write() as session:  # deactivating, one way and the other
        session.get_one(User, bob_id).is_active = False
    assert seen[-1] == {user_key(bob_id)}
    with db.write() as session:
        session.execute(update(User).where(User.id == alice_id).values(is_active=False))
    assert seen[-1] == {user_key(alice_id)}
    count = len(seen)

    with db.write() as session:  # other changes to people end nothing
        session.get_one(User, alice_id).name = "Alice B."
    assert len(seen) == count

    with pytest.raises(RuntimeError), db.write() as session:
        session.execute(update(User).values(is_active=True))
        session.query(ApiToken).delete()
        raise RuntimeError("roll back")
    assert len(seen) == count
