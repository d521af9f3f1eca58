"""``plein reindex`` while people keep working: what changes during the rebuild is re-queued
afterwards, so the new generation ends up equal to the database.

In process (the worker's functions on a real database and a real index), because the rebuild
must be interrupted at a chosen moment: after the first document is indexed, a document is
trashed, one purged, one restored from the trash, one commented on and one created -- and the
worker handles their tasks meanwhile, into the old generation that the switch throws away.
Trash, restore and purge touch no ``updated_at``: only comparing what was indexed with what is
live finds them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

from app.access import Access
from app.db import Database
from app.db_hooks import SessionHooks
from app.models import Comment, Document, Folder, Group, Membership, User, utcnow
from app.services import search
from app.settings import Settings
from indexer import IndexDocument, SearchIndex
from tests.app.helpers import API, expect, make_group
from tests.app.keyfile import keys_in
from tests.app.test_search_api import note, wait_found, wait_search, word
from tests.live import LiveServer, unique


def _world(db: Database) -> tuple[str, str, str]:
    with db.write() as session:
        user = User(email="a@example.nl", name="A", password_hash="x")
        group = Group(name="G", access="closed")
        session.add_all([user, group])
        session.flush()
        session.add(Membership(group_id=group.id, user_id=user.id, role="owner", state="member"))
        folder = Folder(group_id=group.id, name="root", access="open")
        session.add(folder)
        session.flush()
        return user.id, group.id, folder.id


def _note(db: Database, group_id: str, folder_id: str, title: str, *,
          trashed: bool = False) -> str:
    with db.write() as session:
        doc = Document(group_id=group_id, folder_id=folder_id, kind="note", title=title,
                       current_version=0, mime="application/vnd.plein.note+yjs",
                       trashed_at=utcnow() if trashed else None)
        session.add(doc)
        session.flush()
        return doc.id


def _found(db: Database, index: SearchIndex, user_id: str, q: str) -> list[str]:
    with db.read() as session:
        access = Access(session, session.get_one(User, user_id))
        found = search.search(index, access, search.SearchRequest(q=q))
        return [hit.document_id for hit in found.hits]


def test_changes_during_a_rebuild_reach_the_new_generation(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 's.sqlite3'}", keys_in(tmp_path))
    db.migrate()
    SessionHooks().install(db)
    index = SearchIndex(tmp_path / "index", None)
    # Notes without content are found by their titles; files would need a blob store.
    deps = search.WorkerDeps(db=db, settings=Settings(data_dir=tmp_path), store=cast(Any, None),
                             index=index, note_state=lambda _doc_id: None)
    user_id, group_id, folder_id = _world(db)
    ids = {name: _note(db, group_id, folder_id, f"{name} rebuildtest")
           for name in ("eerste", "trashed", "purged", "commented")}
    ids["restored"] = _note(db, group_id, folder_id, "restored rebuildtest", trashed=True)
    while search.run_once(deps):
        pass
    assert sorted(_found(db, index, user_id, "rebuildtest")) == sorted(
        ids[n] for n in ("eerste", "trashed", "purged", "commented"))

    rebuild = index.rebuild

    def meanwhile(documents: Iterable[IndexDocument], **kw: Any) -> int:
        def then_changes() -> Iterator[IndexDocument]:
            yield from documents
            # Every document was read; the changes land before the switch.
            with db.write() as session:
                session.get_one(Document, ids["trashed"]).trashed_at = utcnow()
                session.get_one(Document, ids["restored"]).trashed_at = None
                session.delete(session.get_one(Document, ids["purged"]))
                session.add(Comment(document_id=ids["commented"], group_id=group_id,
                                    body="opmerking kribbewerk"))
            ids["created"] = _note(db, group_id, folder_id, "created rebuildtest")
            while search.run_once(deps):  # into the old generation
                pass
        return rebuild(then_changes(), **kw)

    index.rebuild = meanwhile  # type: ignore[method-assign]
    search.reindex(deps)
    index.rebuild = rebuild  # type: ignore[method-assign]
    while search.run_once(deps):
        pass
    assert sorted(_found(db, index, user_id, "rebuildtest")) == sorted(
        ids[n] for n in ("eerste", "commented", "restored", "created"))
    assert _found(db, index, user_id, "kribbewerk") == [ids["commented"]]
    index.close()
    db.dispose()


def test_an_index_of_an_older_schema_is_rebuilt_at_start(tmp_path: Path) -> None:
    """Schema 2 added the suggestion word field: a server finding an older index rebuilds it
    (in the background; searches keep answering meanwhile)."""
    server = LiveServer(tmp_path / "data")
    server.start()
    try:
        owner = server.client()
        owner.sign_up("Oud")
        group = make_group(owner, unique("schema"))
        secret = word("schema")
        doc = note(owner, group["root_folder_id"], "Oude index", secret)["id"]
        wait_found(owner, secret, doc)
    finally:
        server.stop()
    pointer = tmp_path / "data" / "index" / "current"
    old = json.loads(pointer.read_text())
    pointer.write_text(json.dumps({**old, "schema": 1}))
    server.start()
    try:
        deadline = time.monotonic() + 60
        while json.loads(pointer.read_text())["schema"] != 2:
            assert time.monotonic() < deadline, "the index was not rebuilt"
            time.sleep(0.1)  # polling for the rebuild, with a deadline
        assert json.loads(pointer.read_text())["dir"] != old["dir"]
        typo = secret[:-1] + ("a" if secret[-1] != "a" else "e")
        found = wait_search(owner, typo, lambda f: bool(f["suggestions"]))
        assert found["suggestions"] == {typo: secret}
        expect(owner.get(f"{API}/session"), 200)
    finally:
        owner.close()
        server.stop()
