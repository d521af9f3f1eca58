"""Sealed columns (app/models/sealed.py): titles, names, comment bodies, labels and activity
details are stored encrypted with the key file; a value tampered with or moved to another column
does not decrypt; rotation reseals them and they stay readable; migration 0009 seals what an
older database holds in the clear (docs/security.md, "Data at rest")."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from app.db import Database, alembic_config
from app.models import Base, Blob, Comment, Document, DocumentVersion, Folder, Group, User
from app.models.activity import Activity
from app.models.sealed import MissingKeys, sealed_columns
from app.services.maintenance import fsck, rotate_keys
from storage import IntegrityError, KeySource, LocalBlobStore
from tests.app.keyfile import keys_in
from tests.canary import files_containing

SEALED = {"groups.name", "groups.description", "folders.name", "documents.title",
          "document_versions.filename", "document_versions.label", "comments.body",
          "comments.anchor", "activities.data", "audit_events.detail",
          # Two-step sign-in and single sign-on secrets (issue 15).
          "totp_credentials.secret", "oidc_logins.nonce", "oidc_logins.code_verifier"}


@pytest.fixture
def canary() -> str:
    return "kanarie" + secrets.token_hex(8)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'plein.sqlite3'}", keys_in(tmp_path))
    database.migrate()
    yield database
    database.dispose()


def _world(db: Database, canary: str) -> dict[str, str]:
    with db.write() as session:
        user = User(email="a@example.nl", name="A", password_hash="x")
        group = Group(name=f"groep {canary}", description=f"over {canary}", access="closed")
        session.add_all([user, group])
        session.flush()
        folder = Folder(group_id=group.id, name=f"map {canary}", access="open")
        session.add(folder)
        session.flush()
        doc = Document(group_id=group.id, folder_id=folder.id, kind="note",
                       title=f"titel {canary}")
        session.add(doc)
        session.flush()
        comment = Comment(document_id=doc.id, group_id=group.id, author_id=user.id,
                          body=f"reactie {canary}", anchor={"quote": canary})
        activity = Activity(group_id=group.id, document_id=doc.id, actor_id=user.id,
                            verb="document.trashed", data={"title": doc.title})
        session.add_all([comment, activity])
        session.flush()
        return {"group": group.id, "folder": folder.id, "doc": doc.id, "comment": comment.id}


def _raw(path: Path, sql: str, *args: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return [tuple(row) for row in conn.execute(sql, args)]


def test_every_sealed_column_is_named_by_its_place() -> None:
    found = {(table, column, context) for table, column, context in sealed_columns(Base.metadata)}
    assert {context for _, _, context in found} == SEALED
    assert all(context == f"{table}.{column}" for table, column, context in found)


def test_values_are_sealed_in_the_file_and_read_back(tmp_path: Path, db: Database,
                                                     canary: str) -> None:
    ids = _world(db, canary)
    db.checkpoint()
    assert not files_containing(tmp_path, [canary.encode(), canary.encode("utf-16-le")])
    keys = keys_in(tmp_path)
    (title,) = _raw(tmp_path / "plein.sqlite3", "SELECT title FROM documents")[0]
    assert title.startswith(f"v1:{keys.active_id}:")
    with db.read() as session:
        assert session.get_one(Document, ids["doc"]).title == f"titel {canary}"
        assert session.get_one(Folder, ids["folder"]).name == f"map {canary}"
        comment = session.get_one(Comment, ids["comment"])
        assert comment.body == f"reactie {canary}" and comment.anchor == {"quote": canary}
        assert session.scalars(select(Activity)).one().data == {"title": f"titel {canary}"}
        # Core selects decrypt too.
        assert dict(session.execute(select(Group.id, Group.name)).all()) == {
            ids["group"]: f"groep {canary}"}


def test_a_value_moved_to_another_column_does_not_decrypt(tmp_path: Path, db: Database,
                                                          canary: str) -> None:
    ids = _world(db, canary)
    path = tmp_path / "plein.sqlite3"
    (folder_name,) = _raw(path, "SELECT name FROM folders WHERE id = ?", ids["folder"])[0]
    _raw(path, "UPDATE documents SET title = ? WHERE id = ?", folder_name, ids["doc"])
    with db.read() as session, pytest.raises(IntegrityError, match="documents.title"):
        session.get_one(Document, ids["doc"])
    report = fsck(db, LocalBlobStore(tmp_path / "blobs", keys_in(tmp_path)), keys_in(tmp_path))
    assert [(where, row) for where, row, _ in report.damaged_values] == [
        ("documents.title", ids["doc"])]
    assert not report.ok


def test_a_tampered_value_does_not_decrypt(tmp_path: Path, db: Database, canary: str) -> None:
    ids = _world(db, canary)
    path = tmp_path / "plein.sqlite3"
    (body,) = _raw(path, "SELECT body FROM comments")[0]
    flipped = body[:-3] + ("A" if body[-3] != "A" else "B") + body[-2:]
    _raw(path, "UPDATE comments SET body = ?", flipped)
    with db.read() as session, pytest.raises(IntegrityError):
        session.get_one(Comment, ids["comment"])


def test_rotation_reseals_and_everything_stays_readable(tmp_path: Path, db: Database,
                                                       canary: str) -> None:
    ids = _world(db, canary)
    keys = keys_in(tmp_path)
    old = keys.active_id
    report = rotate_keys(db, keys, batch_size=2)  # several batches
    assert report.resealed == 7  # group name+description, folder, title, body, anchor, data
    assert report.retired == [old]
    path = tmp_path / "plein.sqlite3"
    for table, column, _ in sealed_columns(Base.metadata):
        for (value,) in _raw(path, f"SELECT {column} FROM {table} "  # noqa: S608
                                   f"WHERE {column} IS NOT NULL"):
            assert value.startswith(f"v1:{report.new_key_id}:"), (table, column)
    # The database's own key source (loaded before the rotation) follows the key file.
    with db.read() as session:
        assert session.get_one(Document, ids["doc"]).title == f"titel {canary}"
        assert session.get_one(Comment, ids["comment"]).body == f"reactie {canary}"
    assert fsck(db, LocalBlobStore(tmp_path / "blobs", keys), keys).values_checked == 7


def test_an_engine_without_keys_refuses_sealed_columns(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'plein.sqlite3'}")
    db.migrate()  # a new database: nothing to seal, so no key needed
    try:
        with pytest.raises(StatementError, match="no key source") as raised, \
                db.write() as session:
            session.add(Group(name="G", access="open"))
            session.flush()
        assert isinstance(raised.value.orig, MissingKeys)
        assert _raw(tmp_path / "plein.sqlite3", "SELECT count(*) FROM groups") == [(0,)]
    finally:
        db.dispose()


def test_migration_seals_what_an_older_database_holds(tmp_path: Path, db: Database,
                                                      canary: str) -> None:
    ids = _world(db, canary)
    with db.write() as session:
        session.add(DocumentVersion(document_id=ids["doc"], number=1, blob_id=_blob(session),
                                    filename=f"bestand {canary}.pdf", mime="application/pdf",
                                    size=1, sha256="0" * 64, label=f"versie {canary}"))
    path = tmp_path / "plein.sqlite3"
    keys = keys_in(tmp_path)
    # Back to before 0009: every value in the clear, as an older installation has it.
    command.downgrade(alembic_config(db.url, keys), "0005")
    assert (f"titel {canary}",) in _raw(path, "SELECT title FROM documents")
    assert (f"bestand {canary}.pdf",) in _raw(path, "SELECT filename FROM document_versions")
    db.dispose()
    # Without the key file the upgrade refuses (and leaves the data as it was).
    plain = Database(f"sqlite:///{path}")
    with pytest.raises(RuntimeError, match="PLEIN_KEY_FILE"):
        plain.migrate()
    plain.dispose()
    assert (f"titel {canary}",) in _raw(path, "SELECT title FROM documents")

    keyed = Database(f"sqlite:///{path}", KeySource.load(tmp_path / "keys.json"))
    keyed.migrate()
    try:
        assert not files_containing(tmp_path, [canary.encode()])
        with keyed.read() as session:
            assert session.get_one(Document, ids["doc"]).title == f"titel {canary}"
            version = session.scalars(select(DocumentVersion)).one()
            assert version.filename == f"bestand {canary}.pdf"
            assert version.label == f"versie {canary}"
            assert session.get_one(Comment, ids["comment"]).anchor == {"quote": canary}
    finally:
        keyed.dispose()


def _blob(session: Session) -> str:
    blob = Blob(id="B" * 24, group_id=None, wrapped_key=b"\x01", kek_id="k", size=1,
                sha256="0" * 64, stored_size=1)
    session.add(blob)
    session.flush()
    return blob.id
