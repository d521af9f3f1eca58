"""The access matrix for discussions, activity and notifications (SECURITY.md, Authorization):
role × object × path as a table, checked against a server of this module's own (so its first
account is the site admin). Companion of ``test_access_matrix.py`` and
``test_access_matrix_files.py``; the world has the same shape as the files matrix.

The world: one closed group owned by ``owner``; ``gadmin`` is admin; ``member``, ``viewer`` and
``editor`` are members; ``outsider`` is signed in and in no group; ``siteadmin`` registered first
and is in no group. Folders under the root: ``open``, ``closed`` (viewer listed as viewer, editor
as editor) and ``nested`` (closed inside ``closed``, only editor listed). Objects: a file in each
folder with a thread the owner started, mentioning everyone; ``trashed``: the same in the open
folder, then moved to the trash (its discussion is not readable by anyone: 404).

Rows ``FEED`` and ``NOTIFIED`` say whether the person's activity feed shows the document's
activity (``document.trashed`` aside: it shows to readers of the folder the document left,
see ``test_activity.py``) and whether their notifications show the owner's mention of them
(the owner does not notify herself). Not readable ⇒ 404 with exactly the body of a missing id.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.helpers import (
    API,
    add_member,
    describe,
    expect,
    expect_error,
    make_folder,
    make_group,
    missing_id,
    set_access,
    uid_of,
)
from tests.inprocess import InProcessServer, running_in_process
from tests.live import Client, unique

ROLES = ("outsider", "member", "viewer", "editor", "gadmin", "owner", "siteadmin")

TABLE = """
path             object   outsider member viewer editor gadmin owner siteadmin
GET comments     open     404      200    200    200    200    200   404
GET comments     closed   404      404    200    200    200    200   404
GET comments     nested   404      404    404    200    200    200   404
GET comments     trashed  404      404    404    404    404    404   404
POST comment     open     404      201    201    201    201    201   404
POST comment     closed   404      404    201    201    201    201   404
POST comment     nested   404      404    404    201    201    201   404
POST comment     trashed  404      404    404    404    404    404   404
GET comment      open     404      200    200    200    200    200   404
GET comment      closed   404      404    200    200    200    200   404
GET comment      nested   404      404    404    200    200    200   404
GET comment      trashed  404      404    404    404    404    404   404
PATCH edit       open     404      403    403    403    403    200   404
PATCH edit       closed   404      404    403    403    403    200   404
PATCH edit       nested   404      404    404    403    403    200   404
PATCH edit       trashed  404      404    404    404    404    404   404
PATCH resolve    open     404      200    200    200    200    200   404
PATCH resolve    closed   404      404    403    200    200    200   404
PATCH resolve    nested   404      404    404    200    200    200   404
PATCH resolve    trashed  404      404    404    404    404    404   404
DELETE comment   open     404      403    403    403    204    204   404
DELETE comment   closed   404      404    403    403    204    204   404
DELETE comment   nested   404      404    404    403    204    204   404
DELETE comment   trashed  404      404    404    404    404    404   404
GET candidates   open     404      200    200    200    200    200   404
GET candidates   closed   404      404    200    200    200    200   404
GET candidates   nested   404      404    404    200    200    200   404
GET candidates   trashed  404      404    404    404    404    404   404
PUT follow       open     404      200    200    200    200    200   404
PUT follow       closed   404      404    200    200    200    200   404
PUT follow       nested   404      404    404    200    200    200   404
PUT follow       trashed  404      404    404    404    404    404   404
FEED activity    open     no       yes    yes    yes    yes    yes   no
FEED activity    closed   no       no     yes    yes    yes    yes   no
FEED activity    nested   no       no     no     yes    yes    yes   no
FEED activity    trashed  no       no     no     no     no     no    no
NOTIFIED mention open     no       yes    yes    yes    yes    no    no
NOTIFIED mention closed   no       no     yes    yes    yes    no    no
NOTIFIED mention nested   no       no     no     yes    yes    no    no
NOTIFIED mention trashed  no       no     no     no     no     no    no
"""

PATHS: dict[str, tuple[str, str]] = {
    "GET comments": ("GET", "/documents/{doc}/comments"),
    "POST comment": ("POST", "/documents/{doc}/comments"),
    "GET comment": ("GET", "/comments/{comment}"),
    "PATCH edit": ("PATCH", "/comments/{comment}"),
    "PATCH resolve": ("PATCH", "/comments/{comment}"),
    "DELETE comment": ("DELETE", "/comments/{comment}"),
    "GET candidates": ("GET", "/documents/{doc}/mention-candidates"),
    "PUT follow": ("PUT", "/documents/{doc}/follow"),
    "FEED activity": ("GET", "/activity"),
    "NOTIFIED mention": ("GET", "/notifications"),
}
OBJECTS = ("open", "closed", "nested", "trashed")
DEDICATED = {"DELETE comment"}  # changes its object: each cell gets a fresh one


def parse_table(text: str) -> dict[tuple[str, str, str], str]:
    lines = [line.split() for line in text.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert tuple(header[2:]) == ROLES, header
    cells: dict[tuple[str, str, str], str] = {}
    for row in rows:
        path, obj, values = f"{row[0]} {row[1]}", row[2], row[3:]
        assert path in PATHS and obj in OBJECTS and len(values) == len(ROLES), row
        for role, value in zip(ROLES, values, strict=True):
            assert (role, path, obj) not in cells, row
            cells[(role, path, obj)] = value
    return cells


CELLS = parse_table(TABLE)
assert {(p, o) for _, p, o in CELLS} == {(p, o) for p in PATHS for o in OBJECTS}


# -- the world -----------------------------------------------------------------------------

@dataclass
class World:
    people: dict[str, Client]
    group: dict[str, Any]
    folders: dict[str, str]
    server: InProcessServer
    docs: dict[str, str] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)
    missing: dict[tuple[str, str], httpx.Response] = field(default_factory=dict)

    def everyone(self) -> str:
        return " ".join(f"@[{role}](user:{uid_of(c)})" for role, c in self.people.items())

    def make(self, kind: str) -> tuple[str, str]:
        """A fresh document shaped like ``kind`` with the owner's thread: (doc, comment)."""
        owner = self.people["owner"]
        folder = self.folders["open" if kind == "trashed" else kind]
        doc = expect(owner.post(f"{API}/folders/{folder}/files",
                                files={"file": (f"{kind}.txt", os.urandom(40), "x/y")}), 201)
        posted = expect(owner.post(f"{API}/documents/{doc['id']}/comments",
                                   json={"body": f"Over {kind}: {self.everyone()}"}), 201)
        if kind == "trashed":
            expect(owner.delete(f"{API}/documents/{doc['id']}"), 204)
        return str(doc["id"]), str(posted["id"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("discussions-matrix") / "data"
    with running_in_process(data_dir, comments_per_minute=0) as server:
        people: dict[str, Client] = {}
        try:
            for role in sorted(ROLES, key=lambda r: r != "siteadmin"):
                people[role] = server.client()
                people[role].sign_up(role.capitalize())
            assert people["siteadmin"].user and people["siteadmin"].user["is_site_admin"]
            owner = people["owner"]
            group = make_group(owner, unique("G_discuss"), "closed")
            add_member(owner, group["id"], people["gadmin"], "admin")
            for role in ("member", "viewer", "editor"):
                add_member(owner, group["id"], people[role])
            root = group["root_folder_id"]
            viewer, editor = people["viewer"], people["editor"]
            folders = {"open": make_folder(owner, root, unique("open"), "open")["id"]}
            folders["closed"] = make_folder(owner, root, unique("closed"), "closed",
                                            [(viewer, "viewer"), (editor, "editor")])["id"]
            folders["nested"] = make_folder(owner, folders["closed"], unique("nested"),
                                            "closed", [(editor, "editor")])["id"]
            world = World(people, group, folders, server)
            for kind in OBJECTS:
                world.docs[kind], world.comments[kind] = world.make(kind)
            yield world
        finally:
            for client in people.values():
                client.close()


def _send(client: Client, path: str, doc: str, comment: str) -> httpx.Response:
    method, template = PATHS[path]
    url = API + template.format(doc=doc, comment=comment)
    if path == "POST comment":
        return client.request(method, url, json={"body": "Mijn inbreng"})
    if path == "PATCH edit":
        return client.request(method, url, json={"body": "Aangepast"})
    if path == "PATCH resolve":
        return client.request(method, url, json={"resolved": True})
    if path in ("FEED activity", "NOTIFIED mention"):
        return client.request(method, url, params={"limit": 500})
    return client.request(method, url)


@pytest.mark.parametrize(("role", "path", "obj", "expected"), [
    pytest.param(role, path, obj, expected, id=f"{path.replace(' ', '_')}-{obj}-{role}")
    for (role, path, obj), expected in CELLS.items()])
def test_discussion_access(world: World, role: str, path: str, obj: str, expected: str
                           ) -> None:
    doc, comment = world.make(obj) if path in DEDICATED else (world.docs[obj],
                                                               world.comments[obj])
    client = world.people[role]
    response = _send(client, path, doc, comment)
    if path == "FEED activity":
        items = expect(response, 200)["items"]
        verbs = [i["verb"] for i in items if i["document"] and i["document"]["id"] == doc]
        # The trash event itself shows to readers of the folder it left (test_activity.py).
        shown = any(verb != "document.trashed" for verb in verbs)
        assert shown == (expected == "yes"), f"{role} {obj}: {verbs}"
        return
    if path == "NOTIFIED mention":
        items = expect(response, 200)["items"]
        kinds = [n["kind"] for n in items if n["document"] and n["document"]["id"] == doc]
        assert ("mention" in kinds) == (expected == "yes"), f"{role} {obj}: {kinds}"
        return
    status = int(expected)
    assert response.status_code == status, f"{role} {obj}: {describe(response)}"
    if status == 404:
        # Identical to asking for an id that does not exist: no existence oracle.
        key = (role, path)
        if key not in world.missing:
            world.missing[key] = _send(client, path, missing_id(), missing_id())
        absent = world.missing[key]
        assert absent.status_code == 404, describe(absent)
        assert response.content == absent.content, f"{role} {obj} {path}"
    elif status >= 400:
        expect_error(response, status)


@pytest.mark.parametrize(("role", "status"), [
    ("outsider", 403), ("member", 200), ("viewer", 200), ("editor", 200), ("gadmin", 200),
    ("owner", 200), ("siteadmin", 403)])
def test_group_activity_is_for_members(world: World, role: str, status: int) -> None:
    response = world.people[role].get(f"{API}/groups/{world.group['id']}/activity")
    assert response.status_code == status, describe(response)
    mine = expect(world.people[role].get(f"{API}/activity", params={"limit": 500}), 200)
    in_group = [i for i in mine["items"] if i["group"]["id"] == world.group["id"]]
    assert bool(in_group) == (status == 200)
    notes = expect(world.people[role].get(f"{API}/notifications", params={"limit": 500}), 200)
    assert all(n["group"]["id"] == world.group["id"] for n in notes["items"]) or \
        not notes["items"]
    if status != 200:
        assert notes["items"] == [] and notes["unread"] == 0


def _feed_docs(client: Client) -> set[str]:
    items = expect(client.get(f"{API}/activity", params={"limit": 500}), 200)["items"]
    return {i["document"]["id"] for i in items if i["document"]}


def _notified_docs(client: Client) -> set[str]:
    page = expect(client.get(f"{API}/notifications", params={"limit": 500}), 200)
    return {n["document"]["id"] for n in page["items"] if n["document"]}


def test_losing_access_hides_comments_activity_and_notifications(world: World) -> None:
    owner, member = world.people["owner"], world.people["member"]
    folder = make_folder(owner, world.folders["open"], unique("tijdelijk"), "closed",
                         [(member, "editor")])["id"]
    doc = expect(owner.post(f"{API}/folders/{folder}/files",
                            files={"file": ("plan.txt", os.urandom(40), "x/y")}), 201)["id"]
    cid = expect(owner.post(f"{API}/documents/{doc}/comments",
                            json={"body": f"@[m](user:{uid_of(member)}) kijk"}), 201)["id"]
    expect(member.post(f"{API}/documents/{doc}/comments", json={"body": "Gezien"}), 201)
    unread_before = expect(member.get(f"{API}/notifications/unread"), 200)["unread"]
    assert doc in _feed_docs(member) and doc in _notified_docs(member)
    expect(member.get(f"{API}/documents/{doc}/comments"), 200)

    # The owner takes the member off the folder: at once nothing of it is left to see.
    expect(set_access(owner, folder, "closed", []), 200)
    expect_error(member.get(f"{API}/documents/{doc}/comments"), 404)
    expect_error(member.get(f"{API}/comments/{cid}"), 404)
    assert doc not in _feed_docs(member) and doc not in _notified_docs(member)
    assert expect(member.get(f"{API}/notifications/unread"), 200)["unread"] == unread_before - 1
    # And a mention of them now tells the author it reaches nobody.
    out = expect(owner.post(f"{API}/documents/{doc}/comments",
                            json={"body": f"@[m](user:{uid_of(member)}) nog eens"}), 201)
    assert out["unnotified_mentions"] == [f"@[m](user:{uid_of(member)})"]

    # The filter is applied at read time, so giving access back shows it again.
    expect(set_access(owner, folder, "closed", [(member, "viewer")]), 200)
    assert doc in _feed_docs(member) and doc in _notified_docs(member)


def test_comments_of_a_trashed_document(world: World) -> None:
    owner, editor = world.people["owner"], world.people["editor"]
    doc, cid = world.make("open")
    assert doc in _notified_docs(editor)
    expect(owner.delete(f"{API}/documents/{doc}"), 204)
    for role in ROLES:
        client = world.people[role]
        expect_error(client.get(f"{API}/documents/{doc}/comments"), 404)
        expect_error(client.get(f"{API}/comments/{cid}"), 404)
        assert doc not in _notified_docs(client)
    # Restored, it is a document again, discussion and all.
    expect(owner.post(f"{API}/documents/{doc}/restore"), 200)
    assert expect(editor.get(f"{API}/comments/{cid}"), 200)["id"] == cid
    assert doc in _notified_docs(editor)


def test_leaving_the_group_hides_everything_of_it(world: World) -> None:
    owner = world.people["owner"]
    leaver = world.server.client()
    try:
        leaver.sign_up("Leaver")
        add_member(owner, world.group["id"], leaver)
        doc, _ = world.make("open")
        expect(owner.post(f"{API}/documents/{doc}/comments",
                          json={"body": f"@[l](user:{uid_of(leaver)})"}), 201)
        assert doc in _feed_docs(leaver) and doc in _notified_docs(leaver)
        expect(leaver.delete(f"{API}/groups/{world.group['id']}/members/{uid_of(leaver)}"), 204)
        assert _feed_docs(leaver) == set() and _notified_docs(leaver) == set()
        expect_error(leaver.get(f"{API}/groups/{world.group['id']}/activity"), 403)
        assert expect(leaver.get(f"{API}/notifications/unread"), 200)["unread"] == 0
    finally:
        leaver.close()
