"""A hidden id and a missing id must be the same 404 (issue 9, item 16): the same answer and
the same work. Timing is not asserted (it is noisy under load); the work is, as the number of
SQL statements each path makes, counted in this process.

People: ``owner`` owns the group, ``member`` is in it but not listed on the closed folder,
``outsider`` is in no group of theirs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.access import Access
from app.errors import NotFound
from app.models import Document, User
from app.services import accounts, documents, folders, groups
from tests.app.helpers import API, expect_error, make_folder, make_group, missing_id
from tests.inprocess import InProcessServer
from tests.live import Client, unique
from tests.queries import counted_queries


@pytest.fixture(scope="module")
def inproc(app_server: InProcessServer) -> Any:
    return app_server.runtime


@pytest.fixture(scope="module")
def world(inproc: Any) -> dict[str, str]:
    with inproc.db.write() as session:
        def person(name: str) -> User:
            return accounts.register(session, inproc.settings, inproc.passwords,
                                     email=f"{unique(name)}@example.nl", name=name,
                                     password="correct horse battery staple").user

        owner, member, outsider = person("owner"), person("member"), person("outsider")
        access = Access(session, owner)
        group = groups.create_group(session, access, name="G", description="",
                                    group_access="closed")
        groups.add_member(session, access, group, email=member.email, role="member")
        assert group.root_folder_id is not None
        root = folders.get_folder(session, access, group.root_folder_id)
        closed = folders.create_folder(session, access, root, name="dicht",
                                       folder_access="closed")
        for index in range(5):
            folders.create_folder(session, access, root, name=f"open {index}",
                                  folder_access=None)
        doc = Document(group_id=group.id, folder_id=closed.id, kind="note", title="geheim")
        session.add(doc)
        session.flush()
        return {"owner": owner.id, "member": member.id, "outsider": outsider.id,
                "folder": closed.id, "document": doc.id}


def statements_of(inproc: Any, user_id: str, lookup: Callable[[Any, Access], object]) -> int:
    """How many SQL statements a lookup that must end in 404 makes."""
    with inproc.db.read() as session:
        access = Access(session, session.get_one(User, user_id))
        with counted_queries(inproc.db.engine) as statements, pytest.raises(NotFound):
            lookup(session, access)
    return len(statements)


@pytest.mark.parametrize("who", ["member", "outsider"])
@pytest.mark.parametrize("kind", ["document", "folder"])
def test_hidden_and_missing_ids_do_the_same_work(inproc: Any, world: dict[str, str], who: str,
                                                 kind: str) -> None:
    def get(item_id: str) -> Callable[[Any, Access], object]:
        if kind == "document":
            return lambda session, access: documents.get_document(session, access, item_id)
        return lambda session, access: folders.get_folder(session, access, item_id)

    hidden = statements_of(inproc, world[who], get(world[kind]))
    missing = statements_of(inproc, world[who], get(missing_id()))
    assert hidden == missing, f"{who}/{kind}: hidden {hidden} statements, missing {missing}"


def test_hidden_and_missing_answer_alike(cast: Callable[[str], Client]) -> None:
    alice, dave = cast("Alice"), cast("Dave")
    group = make_group(alice, unique("Verborgen"))
    folder = make_folder(alice, group["root_folder_id"], "dicht", "closed", [])
    doc = alice.post(f"{API}/folders/{folder['id']}/notes", json={"title": "geheim"}).json()
    for path in ("documents/{}", "folders/{}"):
        item = doc["id"] if path.startswith("documents") else folder["id"]
        hidden = expect_error(dave.get(f"{API}/{path.format(item)}"), 404)
        missing = expect_error(dave.get(f"{API}/{path.format(missing_id())}"), 404)
        assert hidden == missing
