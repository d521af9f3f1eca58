"""Index tasks are queued in the transaction that changes a document (and not otherwise)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from app.db import Database
from app.db_hooks import SessionHooks
from app.models import Document, Folder, Group, IndexTask, User
from tests.app.keyfile import keys_in


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 's.sqlite3'}", keys_in(tmp_path))
    database.migrate()
    SessionHooks().install(database)
    return database


def _world(db: Database) -> tuple[str, str]:
    with db.write() as session:
        user = User(email="a@example.nl", name="A", password_hash="x")
        group = Group(name="G", access="open")
        session.add_all([user, group])
        session.flush()
        folder = Folder(group_id=group.id, name="root", access="open")
        session.add(folder)
        session.flush()
        return group.id, folder.id


def _tasks(db: Database) -> set[str]:
    with db.read() as session:
        return set(session.scalars(select(IndexTask.document_id)))


def test_new_and_changed_documents_are_queued_once(db: Database) -> None:
    group_id, folder_id = _world(db)
    assert _tasks(db) == set()
    with db.write() as session:
        doc = Document(group_id=group_id, folder_id=folder_id, kind="note", title="Nota")
        session.add(doc)
        session.flush()
        doc.title = "Nota 2"  # a second change in the same transaction: still one task
        doc_id = doc.id
    assert _tasks(db) == {doc_id}
    with db.write() as session:
        session.execute(IndexTask.__table__.delete())
    with db.write() as session:
        session.get_one(Document, doc_id).title = "Nota 3"
    assert _tasks(db) == {doc_id}


def test_a_rolled_back_change_queues_nothing(db: Database) -> None:
    group_id, folder_id = _world(db)
    with pytest.raises(RuntimeError), db.write() as session:
        session.add(Document(group_id=group_id, folder_id=folder_id, kind="note", title="x"))
        session.flush()
        raise RuntimeError("abort")
    assert _tasks(db) == set()


def test_folder_changes_need_no_task(db: Database) -> None:
    _, folder_id = _world(db)
    with db.write() as session:
        session.get_one(Folder, folder_id).access = "closed"
    assert _tasks(db) == set()
