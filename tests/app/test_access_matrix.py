"""The access matrix (SECURITY.md, Authorization): every role × object × path of the foundation,
as readable tables of expected statuses, checked against the app (in process).

The world (one server of this module's own, so its first account is the site admin):

- ``G_open`` (open) and ``G_closed`` (closed). In both: ``owner`` owns, ``gadmin`` is admin,
  ``member``, ``viewer`` and ``editor`` are members. ``requester`` asked to join ``G_closed``
  (pending) and is nothing in ``G_open``. ``outsider`` is signed in and in no group.
  ``siteadmin`` registered first and is in no group: site admins may manage membership of any
  group but read content only as members (app/access.py).
- Folders of ``G_closed``: ``root``; ``open_sub`` (open, under root); ``closed`` (closed under
  root: viewer listed as viewer, editor as editor); ``nested`` (closed inside ``closed``: only
  editor listed, so viewer is on the outer list but not the inner); ``trashed`` (open, in the
  trash). ``open_root`` is the root of ``G_open`` (content is for members even in open groups).
- ``missing`` is a random id: every "not readable" 404 must have exactly its body.

Mutating paths that could change the shared world (trash, restore, purge) get a fresh object of
the same shape per cell; PATCH and PUT send the object's current values; a join is undone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from tests.app.helpers import (
    API,
    add_member,
    describe,
    email_of,
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

ROLES = ("anon", "owner", "gadmin", "member", "viewer", "editor", "requester", "outsider",
         "siteadmin")

# Expected outcome per (path, object) × role. "200/m" and "200/r": 200 with state member or
# requested. 303: a page sends the signed-out visitor to /login.
GROUP_TABLE = """
path         object   anon owner gadmin member viewer editor requester outsider siteadmin
GET group    open     401  200   200    200    200    200    200       200      200
GET group    closed   401  200   200    200    200    200    200       200      200
GET group    missing  401  404   404    404    404    404    404       404      404
GET members  open     401  200   200    200    200    200    403       403      200
GET members  closed   401  200   200    200    200    200    403       403      200
GET members  missing  401  404   404    404    404    404    404       404      404
PATCH group  open     401  200   200    403    403    403    403       403      403
PATCH group  closed   401  200   200    403    403    403    403       403      403
PATCH group  missing  401  404   404    404    404    404    404       404      404
POST join    open     401  200/m 200/m  200/m  200/m  200/m  200/m     200/m    200/m
POST join    closed   401  200/m 200/m  200/m  200/m  200/m  200/r     200/r    200/r
POST join    missing  401  404   404    404    404    404    404       404      404
GET trash    open     401  200   200    200    200    200    403       403      403
GET trash    closed   401  200   200    200    200    200    403       403      403
GET trash    missing  401  404   404    404    404    404    404       404      404
GET export   open     401  200   200    200    200    200    404       404      404
GET export   closed   401  200   200    200    200    200    404       404      404
GET export   missing  401  404   404    404    404    404    404       404      404
PAGE group   open     303  200   200    200    200    200    200       200      200
PAGE group   closed   303  200   200    200    200    200    200       200      200
PAGE group   missing  303  404   404    404    404    404    404       404      404
"""

FOLDER_TABLE = """
path           object     anon owner gadmin member viewer editor requester outsider siteadmin
GET folder     root       401  200   200    200    200    200    404       404      404
GET folder     open_root  401  200   200    200    200    200    404       404      404
GET folder     open_sub   401  200   200    200    200    200    404       404      404
GET folder     closed     401  200   200    404    200    200    404       404      404
GET folder     nested     401  200   200    404    404    200    404       404      404
GET folder     trashed    401  404   404    404    404    404    404       404      404
GET folder     missing    401  404   404    404    404    404    404       404      404
POST folders   root       401  201   201    201    201    201    404       404      404
POST folders   open_root  401  201   201    201    201    201    404       404      404
POST folders   open_sub   401  201   201    201    201    201    404       404      404
POST folders   closed     401  201   201    404    403    201    404       404      404
POST folders   nested     401  201   201    404    404    201    404       404      404
POST folders   trashed    401  404   404    404    404    404    404       404      404
POST folders   missing    401  404   404    404    404    404    404       404      404
PATCH folder   root       401  200   200    403    403    403    404       404      404
PATCH folder   open_root  401  200   200    403    403    403    404       404      404
PATCH folder   open_sub   401  200   200    200    200    200    404       404      404
PATCH folder   closed     401  200   200    404    403    200    404       404      404
PATCH folder   nested     401  200   200    404    404    200    404       404      404
PATCH folder   trashed    401  404   404    404    404    404    404       404      404
PATCH folder   missing    401  404   404    404    404    404    404       404      404
DELETE folder  root       401  422   422    422    422    422    404       404      404
DELETE folder  open_root  401  422   422    422    422    422    404       404      404
DELETE folder  open_sub   401  204   204    403    403    403    404       404      404
DELETE folder  closed     401  204   204    404    403    403    404       404      404
DELETE folder  nested     401  204   204    404    404    403    404       404      404
DELETE folder  trashed    401  404   404    404    404    404    404       404      404
DELETE folder  missing    401  404   404    404    404    404    404       404      404
PUT access     root       401  200   200    403    403    403    404       404      404
PUT access     open_root  401  200   200    403    403    403    404       404      404
PUT access     open_sub   401  200   200    403    403    403    404       404      404
PUT access     closed     401  200   200    404    403    403    404       404      404
PUT access     nested     401  200   200    404    404    403    404       404      404
PUT access     trashed    401  404   404    404    404    404    404       404      404
PUT access     missing    401  404   404    404    404    404    404       404      404
POST restore   root       401  409   409    409    409    409    404       404      404
POST restore   open_root  401  409   409    409    409    409    404       404      404
POST restore   open_sub   401  409   409    409    409    409    404       404      404
POST restore   closed     401  409   409    404    403    409    404       404      404
POST restore   nested     401  409   409    404    404    409    404       404      404
POST restore   trashed    401  200   200    200    200    200    404       404      404
POST restore   missing    401  404   404    404    404    404    404       404      404
DELETE purge   root       401  409   409    403    403    403    404       404      404
DELETE purge   open_root  401  409   409    403    403    403    404       404      404
DELETE purge   open_sub   401  409   409    403    403    403    404       404      404
DELETE purge   closed     401  409   409    404    403    403    404       404      404
DELETE purge   nested     401  409   409    404    404    403    404       404      404
DELETE purge   trashed    401  204   204    403    403    403    404       404      404
DELETE purge   missing    401  404   404    404    404    404    404       404      404
PAGE folder    root       303  200   200    200    200    200    404       404      404
PAGE folder    open_sub   303  200   200    200    200    200    404       404      404
PAGE folder    closed     303  200   200    404    200    200    404       404      404
PAGE folder    nested     303  200   200    404    404    200    404       404      404
PAGE folder    trashed    303  200   200    200    200    200    404       404      404
PAGE folder    missing    303  404   404    404    404    404    404       404      404
PAGE trashconfirm root     303  422   422    422    422    422    404       404      404
PAGE trashconfirm open_root 303 422   422    422    422    422    404       404      404
PAGE trashconfirm open_sub 303  200   200    200    200    200    404       404      404
PAGE trashconfirm closed   303  200   200    404    403    200    404       404      404
PAGE trashconfirm nested   303  200   200    404    404    200    404       404      404
PAGE trashconfirm trashed  303  404   404    404    404    404    404       404      404
PAGE trashconfirm missing  303  404   404    404    404    404    404       404      404
"""

# ``my_role`` in GET /folders/{fid} for every readable cell: access is the intersection along
# the path; owners and admins manage every folder.
MY_ROLE_TABLE = """
object     owner   gadmin  member viewer editor
root       manager manager editor editor editor
open_sub   manager manager editor editor editor
closed     manager manager -      viewer editor
nested     manager manager -      -      editor
"""

# Paths: method, URL template, whether it is an HTML page.
PATHS: dict[str, tuple[str, str]] = {
    "GET group": ("GET", API + "/groups/{id}"),
    "GET members": ("GET", API + "/groups/{id}/members"),
    "PATCH group": ("PATCH", API + "/groups/{id}"),
    "POST join": ("POST", API + "/groups/{id}/join"),
    "GET trash": ("GET", API + "/groups/{id}/trash"),
    "GET export": ("GET", API + "/groups/{id}/export"),
    "POST import": ("POST", API + "/groups/import"),
    "PAGE import": ("GET", "/admin/import"),
    "GET me/export": ("GET", API + "/users/me/export"),
    "GET audit": ("GET", API + "/groups/{id}/audit"),
    "GET site-audit": ("GET", API + "/audit"),
    "PAGE audit": ("GET", "/groups/{id}/audit"),
    "CSV audit": ("GET", "/groups/{id}/audit?format=csv"),
    "PAGE site-audit": ("GET", "/admin/audit"),
    "CSV site-audit": ("GET", "/admin/audit?format=csv"),
    "PAGE group": ("GET", "/groups/{id}"),
    "GET folder": ("GET", API + "/folders/{id}"),
    "POST folders": ("POST", API + "/folders/{id}/folders"),
    "PATCH folder": ("PATCH", API + "/folders/{id}"),
    "DELETE folder": ("DELETE", API + "/folders/{id}"),
    "PUT access": ("PUT", API + "/folders/{id}/access"),
    "POST restore": ("POST", API + "/folders/{id}/restore"),
    "DELETE purge": ("DELETE", API + "/folders/{id}/purge"),
    "PAGE folder": ("GET", "/folders/{id}"),
    "PAGE trashconfirm": ("GET", "/folders/{id}/trash"),  # what trashing would take along
}
# Cells of these paths change their object, so each gets a fresh one of the same shape.
DEDICATED = {"DELETE folder", "POST restore", "DELETE purge"}


def parse_table(text: str) -> dict[tuple[str, str, str], str]:
    lines = [line.split() for line in text.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    roles = header[2:]  # "path object" then the roles
    assert tuple(roles) == ROLES, roles
    cells: dict[tuple[str, str, str], str] = {}
    for row in rows:
        path, obj, values = f"{row[0]} {row[1]}", row[2], row[3:]
        assert path in PATHS and len(values) == len(roles), row
        for role, value in zip(roles, values, strict=True):
            assert (role, path, obj) not in cells, row
            cells[(role, path, obj)] = value
    return cells


GROUP_CELLS = parse_table(GROUP_TABLE)
FOLDER_CELLS = parse_table(FOLDER_TABLE)


def _page_routes() -> set[str]:
    """Page routes the app has right now, with parameter names erased (``/folders/{}``)."""
    from app.pages import page_routes

    return {re.sub(r"{[^}]*}", "{}", r.path) for r in page_routes() if isinstance(r, Route)}


PAGES = _page_routes()


def _params(cells: dict[tuple[str, str, str], str]) -> list[Any]:
    params = []
    for (role, path, obj), expected in cells.items():
        marks: list[Any] = []
        if path.startswith("PAGE"):
            route = re.sub(r"{[^}]*}", "{}", PATHS[path][1])
            if route not in PAGES:
                marks.append(pytest.mark.skip(reason=f"page route {route} does not exist yet"))
        params.append(pytest.param(role, path, obj, expected, marks=marks,
                                   id=f"{path.replace(' ', '_')}-{obj}-{role}"))
    return params


# -- the world -----------------------------------------------------------------------------

@dataclass
class Obj:
    id: str
    name: str = ""
    access: dict[str, Any] = field(default_factory=dict)  # its PUT /access body as it stands


@dataclass
class World:
    server: InProcessServer
    people: dict[str, Client]
    groups: dict[str, Obj]
    folders: dict[str, Obj]
    missing_bodies: dict[tuple[str, str], httpx.Response] = field(default_factory=dict)

    def client(self, role: str) -> Client:
        return self.people[role]

    def grants(self, *pairs: tuple[str, str]) -> list[dict[str, str]]:
        return [{"user_id": uid_of(self.people[r]), "role": role} for r, role in pairs]

    def make_folder_like(self, kind: str) -> Obj:
        """A fresh folder shaped like the world's ``kind`` (for cells that change it)."""
        owner = self.people["owner"]
        root = self.folders["root"].id
        viewer, editor = self.people["viewer"], self.people["editor"]
        if kind in ("root", "open_root", "missing"):
            return self.folders[kind]  # these cells never change their object
        if kind in ("open_sub", "trashed"):
            made = make_folder(owner, root, unique(kind), "open")
            if kind == "trashed":
                expect(owner.delete(f"{API}/folders/{made['id']}"), 204)
            return Obj(made["id"], made["name"], {"access": "open"})
        outer = make_folder(owner, root, unique("closed"), "closed",
                            [(viewer, "viewer"), (editor, "editor")])
        if kind == "closed":
            return Obj(outer["id"], outer["name"],
                       {"access": "closed",
                        "members": self.grants(("viewer", "viewer"), ("editor", "editor"))})
        assert kind == "nested", kind
        inner = make_folder(owner, outer["id"], unique("nested"), "closed", [(editor, "editor")])
        return Obj(inner["id"], inner["name"],
                   {"access": "closed", "members": self.grants(("editor", "editor"))})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("matrix") / "data"
    with running_in_process(data_dir) as server:
        people: dict[str, Client] = {}
        try:
            # The site admin must be the server's very first account.
            for role in sorted(ROLES, key=lambda r: r != "siteadmin"):
                client = server.client()
                people[role] = client
                if role != "anon":
                    client.sign_up(role.capitalize())
            assert people["siteadmin"].user and people["siteadmin"].user["is_site_admin"]
            assert not any(people[r].user["is_site_admin"]  # type: ignore[index]
                           for r in ROLES if r not in ("anon", "siteadmin"))
            owner = people["owner"]
            groups: dict[str, Obj] = {}
            roots: dict[str, str] = {}
            for kind in ("open", "closed"):
                made = make_group(owner, unique(f"G_{kind}"), kind)
                groups[kind] = Obj(made["id"], made["name"])
                roots[kind] = made["root_folder_id"]
                add_member(owner, made["id"], people["gadmin"], "admin")
                for role in ("member", "viewer", "editor"):
                    add_member(owner, made["id"], people[role])
            assert expect(people["requester"].post(f"{API}/groups/{groups['closed'].id}/join"),
                          200) == {"state": "requested"}
            groups["missing"] = Obj(missing_id())

            world = World(server, people, groups, {})
            root = expect(owner.get(f"{API}/folders/{roots['closed']}"), 200)
            open_root = expect(owner.get(f"{API}/folders/{roots['open']}"), 200)
            world.folders["root"] = Obj(root["id"], root["name"], {"access": "open"})
            world.folders["open_root"] = Obj(open_root["id"], open_root["name"],
                                             {"access": "open"})
            world.folders["missing"] = Obj(missing_id(), "x", {"access": "open"})
            world.folders["open_sub"] = world.make_folder_like("open_sub")
            world.folders["trashed"] = world.make_folder_like("trashed")
            # nested lives inside a closed folder made by the same call; find that parent.
            nested = world.make_folder_like("nested")
            parent_id = expect(owner.get(f"{API}/folders/{nested.id}"), 200)["parent_id"]
            parent = expect(owner.get(f"{API}/folders/{parent_id}"), 200)
            world.folders["closed"] = Obj(parent["id"], parent["name"], {
                "access": "closed",
                "members": world.grants(("viewer", "viewer"), ("editor", "editor"))})
            world.folders["nested"] = nested
            yield world
        finally:
            for client in people.values():
                client.close()


def _request(world: World, role: str, path: str, obj: Obj, *, group: bool) -> httpx.Response:
    method, template = PATHS[path]
    url = template.format(id=obj.id)
    body: dict[str, Any] | None = None
    if path == "PATCH group":
        body = {"name": obj.name or "x"}
    elif path == "POST folders":
        body = {"name": unique("sub")}
    elif path == "PATCH folder":
        body = {"name": obj.name}
    elif path == "PUT access":
        body = obj.access
    client = world.client(role)
    return client.request(method, url, json=body) if body is not None else \
        client.request(method, url)


def _check(world: World, role: str, path: str, obj: Obj, expected: str, response: httpx.Response,
           *, group: bool) -> None:
    status = int(expected.split("/")[0])
    is_page = path.startswith("PAGE")
    assert response.status_code == status, f"{role}: {describe(response)}"
    if is_page:
        if status == 303:
            assert response.headers["location"].startswith("/login"), response.headers
        return
    if status >= 400:
        expect_error(response, status)
    if status == 404:
        # Not readable ⇒ exactly the answer for an id that does not exist.
        missing = world.groups["missing"] if group else world.folders["missing"]
        other = _request(world, role, path, missing, group=group)
        assert other.status_code == 404, describe(other)
        assert response.json() == other.json(), (response.text, other.text)
        assert response.headers.get("content-length") == other.headers.get("content-length")
    if "/" in expected:
        state = {"m": "member", "r": "requested"}[expected.split("/")[1]]
        assert response.json() == {"state": state}


@pytest.mark.parametrize(("role", "path", "obj", "expected"), _params(GROUP_CELLS))
def test_group_matrix(world: World, role: str, path: str, obj: str, expected: str) -> None:
    group = world.groups[obj]
    before = _membership_state(world, role, obj)
    try:
        response = _request(world, role, path, group, group=True)
        _check(world, role, path, group, expected, response, group=True)
    finally:
        if path == "POST join" and obj != "missing":
            _restore_membership(world, role, obj, before)


@pytest.mark.parametrize(("role", "path", "obj", "expected"), _params(FOLDER_CELLS))
def test_folder_matrix(world: World, role: str, path: str, obj: str, expected: str) -> None:
    target = world.make_folder_like(obj) if path in DEDICATED else world.folders[obj]
    response = _request(world, role, path, target, group=False)
    _check(world, role, path, target, expected, response, group=False)
    if path == "PAGE folder" and response.status_code == 404:
        missing = world.folders["missing"]
        other = world.client(role).get(f"/folders/{missing.id}")
        assert response.text.replace(target.id, "ID") == other.text.replace(missing.id, "ID")


def _membership_state(world: World, role: str, obj: str) -> str | None:
    if role == "anon" or obj == "missing":
        return None
    data = expect(world.client(role).get(f"{API}/groups/{world.groups[obj].id}"), 200)
    state: str | None = data["my_state"]
    return state


def _restore_membership(world: World, role: str, obj: str, before: str | None) -> None:
    """Undo a join so later cells see the world as described."""
    after = _membership_state(world, role, obj)
    if after == before:
        return
    gid = world.groups[obj].id
    uid = uid_of(world.client(role))
    response = world.client("owner").delete(f"{API}/groups/{gid}/members/{uid}")
    assert response.status_code == 204, describe(response)
    if before == "requested":
        expect(world.client(role).post(f"{API}/groups/{gid}/join"), 200)
    assert _membership_state(world, role, obj) == before


def test_world_is_as_described(world: World) -> None:
    """The tables mean something only if the world has the described shape."""
    owner = world.client("owner")
    closed = world.folders["closed"]
    data = expect(owner.get(f"{API}/folders/{closed.id}"), 200)
    assert data["own_access"] == "closed"
    assert {(m["user_id"], m["role"]) for m in data["members"]} == {
        (uid_of(world.client("viewer")), "viewer"), (uid_of(world.client("editor")), "editor")}
    nested = expect(owner.get(f"{API}/folders/{world.folders['nested'].id}"), 200)
    assert nested["parent_id"] == closed.id and nested["access"] == "closed"
    assert [m["user_id"] for m in nested["members"]] == [uid_of(world.client("editor"))]
    members = expect(owner.get(f"{API}/groups/{world.groups['closed'].id}/members"), 200)
    states = {m["user_id"]: (m["role"], m["state"]) for m in members["members"]}
    assert states[uid_of(world.client("requester"))] == ("member", "requested")
    assert states[uid_of(world.client("gadmin"))] == ("admin", "member")
    assert uid_of(world.client("siteadmin")) not in states


def _parse_roles(text: str) -> dict[tuple[str, str], str | None]:
    lines = [line.split() for line in text.strip().splitlines()]
    roles = lines[0][1:]
    return {(role, row[0]): (None if value == "-" else value)
            for row in lines[1:] for role, value in zip(roles, row[1:], strict=True)}


@pytest.mark.parametrize(("role", "obj", "my_role"), [
    pytest.param(role, obj, my_role, id=f"{obj}-{role}")
    for (role, obj), my_role in _parse_roles(MY_ROLE_TABLE).items() if my_role is not None])
def test_my_role(world: World, role: str, obj: str, my_role: str) -> None:
    data = expect(world.client(role).get(f"{API}/folders/{world.folders[obj].id}"), 200)
    assert data["my_role"] == my_role
    # Only managers see the member list of a folder.
    assert (data["members"] is not None) == (my_role == "manager")


@pytest.mark.parametrize(("role", "visible"), [
    ("owner", {"open_sub", "closed"}),
    ("member", {"open_sub"}),
    ("viewer", {"open_sub", "closed"}),
    ("editor", {"open_sub", "closed"}),
])
def test_children_only_what_you_may_read(world: World, role: str, visible: set[str]) -> None:
    data = expect(world.client(role).get(f"{API}/folders/{world.folders['root'].id}"), 200)
    ids = {c["id"] for c in data["children"]}
    named = {name for name in ("open_sub", "closed", "trashed")
             if world.folders[name].id in ids}
    assert named == visible
    inner = world.folders["nested"].id
    if role in ("viewer", "editor", "owner"):
        data = expect(world.client(role).get(f"{API}/folders/{world.folders['closed'].id}"), 200)
        assert (inner in {c["id"] for c in data["children"]}) == (role != "viewer")


def test_trash_lists_only_what_you_could_restore(world: World) -> None:
    owner = world.client("owner")
    hidden = world.make_folder_like("closed")  # closed: member is not listed
    expect(owner.delete(f"{API}/folders/{hidden.id}"), 204)
    gid = world.groups["closed"].id
    for role, sees_hidden in (("owner", True), ("editor", True), ("viewer", False),
                              ("member", False)):
        items = {i["id"] for i in expect(world.client(role).get(f"{API}/groups/{gid}/trash"), 200)}
        assert world.folders["trashed"].id in items, role
        assert (hidden.id in items) == sees_hidden, role


# -- site admins: operators, not readers ------------------------------------------------------

def test_site_admin_manages_membership_of_any_group(world: World) -> None:
    admin, owner = world.client("siteadmin"), world.client("owner")
    group = make_group(owner, unique("orphan"), "closed")
    gid = group["id"]
    newcomer = world.client("outsider")
    # Rescue: add someone, make them owner, and the original owner can be demoted.
    created = expect(admin.post(f"{API}/groups/{gid}/members",
                                json={"email": email_of(newcomer), "role": "owner"}), 201)
    assert created["role"] == "owner" and created["state"] == "member"
    expect(admin.patch(f"{API}/groups/{gid}/members/{uid_of(owner)}", json={"role": "member"}),
           200)
    expect(admin.delete(f"{API}/groups/{gid}/members/{uid_of(owner)}"), 204)
    listing = expect(admin.get(f"{API}/groups/{gid}/members"), 200)
    assert [m["user_id"] for m in listing["members"]] == [uid_of(newcomer)]
    # ... but still no reading of content, and no changing the group itself.
    root = group["root_folder_id"]
    expect_error(admin.get(f"{API}/folders/{root}"), 404)
    expect_error(admin.get(f"{API}/groups/{gid}/trash"), 403)
    expect_error(admin.patch(f"{API}/groups/{gid}", json={"name": "taken over"}), 403)
    assert expect(admin.get(f"{API}/groups/{gid}"), 200)["root_folder_id"] is None
    expect(newcomer.get(f"{API}/folders/{root}"), 200)
    expect(newcomer.delete(f"{API}/groups/{gid}/members/{uid_of(newcomer)}"), 409)


# -- regressions from peers' advisories ------------------------------------------------------

def test_reshare_wider_than_parent_is_refused(world: World) -> None:
    owner = world.client("owner")
    nested = world.make_folder_like("nested")  # inside a closed folder: viewer V, editor E
    before = expect(owner.get(f"{API}/folders/{nested.id}"), 200)["members"]
    attempts: list[list[tuple[Client, str]]] = [
        [(world.client("viewer"), "editor")],  # viewer only views the parent
        [(world.client("member"), "viewer")],  # member is not on the parent's list
        [(world.client("editor"), "editor"), (world.client("member"), "editor")],
    ]
    for grants in attempts:
        response = set_access(owner, nested.id, "closed", grants)
        expect_error(response, 422, "wider_than_parent")
    assert expect(owner.get(f"{API}/folders/{nested.id}"), 200)["members"] == before
    expect_error(world.client("member").get(f"{API}/folders/{nested.id}"), 404)
    expect_error(world.client("viewer").get(f"{API}/folders/{nested.id}"), 404)
    # The same, as wide as the parent, is fine.
    expect(set_access(owner, nested.id, "closed", [(world.client("viewer"), "viewer")]), 200)
    data = expect(world.client("viewer").get(f"{API}/folders/{nested.id}"), 200)
    assert data["my_role"] == "viewer"


def test_removed_member_loses_every_folder(world: World, tmp_path: Path) -> None:
    owner = world.client("owner")
    gid = world.groups["closed"].id
    leaver = world.server.client()
    try:
        leaver.sign_up("Leaver")
        add_member(owner, gid, leaver)
        listed = make_folder(owner, world.folders["root"].id, unique("listed"), "closed",
                             [(leaver, "editor")])
        readable = [world.folders["root"].id, world.folders["open_sub"].id, listed["id"]]
        for fid in readable:
            expect(leaver.get(f"{API}/folders/{fid}"), 200)
        expect(owner.delete(f"{API}/groups/{gid}/members/{uid_of(leaver)}"), 204)
        missing = leaver.get(f"{API}/folders/{missing_id()}")
        for fid in readable:
            response = leaver.get(f"{API}/folders/{fid}")
            expect_error(response, 404)
            assert response.json() == missing.json()
        expect_error(leaver.post(f"{API}/folders/{listed['id']}/folders", json={"name": "x"}),
                     404)
        # Coming back later does not silently restore the old folder listing.
        add_member(owner, gid, leaver)
        expect(leaver.get(f"{API}/folders/{world.folders['root'].id}"), 200)
        expect_error(leaver.get(f"{API}/folders/{listed['id']}"), 404)
    finally:
        leaver.close()


def test_narrowing_a_parent_narrows_its_subtree_at_once(world: World) -> None:
    owner, member, viewer = (world.client(r) for r in ("owner", "member", "viewer"))
    parent = make_folder(owner, world.folders["root"].id, unique("parent"), "open")
    child = make_folder(owner, parent["id"], unique("child"), "open")
    grandchild = make_folder(owner, child["id"], unique("grandchild"))
    for fid in (child["id"], grandchild["id"]):
        assert expect(member.get(f"{API}/folders/{fid}"), 200)["access"] == "open"
        expect(viewer.post(f"{API}/folders/{fid}/folders", json={"name": unique("x")}), 201)
    expect(set_access(owner, parent["id"], "closed", [(viewer, "viewer")]), 200)
    for fid in (parent["id"], child["id"], grandchild["id"]):
        expect_error(member.get(f"{API}/folders/{fid}"), 404)
        data = expect(viewer.get(f"{API}/folders/{fid}"), 200)
        assert data["access"] == "closed" and data["my_role"] == "viewer"
        expect_error(viewer.post(f"{API}/folders/{fid}/folders", json={"name": "x"}), 403)
    # Opening it again widens the subtree back, nothing stale was copied.
    expect(set_access(owner, parent["id"], "open"), 200)
    assert expect(member.get(f"{API}/folders/{grandchild['id']}"), 200)["my_role"] == "editor"


def test_page_rows_are_listed() -> None:
    """The page rows are part of the matrix; they run as soon as the routes exist."""
    page_cells = [key for key in (*GROUP_CELLS, *FOLDER_CELLS) if key[1].startswith("PAGE")]
    assert len(page_cells) == len(ROLES) * 16  # 9 rows + 7 of the trash confirmation


# Leaving with your data, beyond one group: importing a group archive is for site
# administrators (API and page); one's own data is for everyone signed in.
EXCHANGE_TABLE = """
path            object anon owner gadmin member viewer editor requester outsider siteadmin
POST import     archive 401  403   403    403    403    403    403       403      201
PAGE import     form    303  403   403    403    403    403    403       403      200
GET me/export   self    401  200   200    200    200    200    200       200      200
"""
EXCHANGE_CELLS = parse_table(EXCHANGE_TABLE)


@pytest.fixture(scope="module")
def group_archive(world: World) -> bytes:
    response = world.client("owner").get(f"{API}/groups/{world.groups['open'].id}/export")
    assert response.status_code == 200, describe(response)
    return response.content


@pytest.mark.parametrize(("role", "path", "obj", "expected"), _params(EXCHANGE_CELLS))
def test_exchange_matrix(world: World, group_archive: bytes, role: str, path: str, obj: str,
                         expected: str) -> None:
    client = world.client(role)
    if path == "POST import":
        response = client.post(f"{API}/groups/import",
                               files={"file": ("g.zip", group_archive, "application/zip")})
    elif path == "PAGE import":
        response = client.get("/admin/import")
    else:
        response = client.get(f"{API}/users/me/export")
    assert response.status_code == int(expected), f"{role}: {describe(response)}"
    if path != "PAGE import" and response.status_code >= 400:
        expect_error(response, int(expected))
    if path == "PAGE import" and expected == "303":
        assert response.headers["location"].startswith("/login")


# The audit log (issue 15): a group's for its owners and admins; a member reads none of it
# (403: they know the group), anyone else nothing (404, like a missing group); the site's for
# site administrators, who are operators, not readers of a group's log.
AUDIT_TABLE = """
path            object  anon owner gadmin member viewer editor requester outsider siteadmin
GET audit       open    401  200   200    403    403    403    404       404      404
GET audit       closed  401  200   200    403    403    403    404       404      404
GET audit       missing 401  404   404    404    404    404    404       404      404
GET site-audit  site    401  403   403    403    403    403    403       403      200
PAGE audit      open    303  200   200    403    403    403    404       404      404
PAGE audit      closed  303  200   200    403    403    403    404       404      404
PAGE audit      missing 303  404   404    404    404    404    404       404      404
CSV audit       open    303  200   200    403    403    403    404       404      404
CSV audit       closed  303  200   200    403    403    403    404       404      404
CSV audit       missing 303  404   404    404    404    404    404       404      404
PAGE site-audit site    303  403   403    403    403    403    403       403      200
CSV site-audit  site    303  403   403    403    403    403    403       403      200
"""
AUDIT_CELLS = parse_table(AUDIT_TABLE)


@pytest.mark.parametrize(("role", "path", "obj", "expected"), _params(AUDIT_CELLS))
def test_audit_matrix(world: World, role: str, path: str, obj: str, expected: str) -> None:
    client = world.client(role)
    method, template = PATHS[path]
    gid = world.groups[obj].id if obj != "site" else ""
    response = client.request(method, template.format(id=gid))
    assert response.status_code == int(expected), f"{role}: {describe(response)}"
    if path.startswith("GET") and response.status_code >= 400:
        expect_error(response, int(expected))
    elif response.status_code == 303:
        assert response.headers["location"].startswith("/login"), response.headers
    elif path.startswith("GET"):
        assert isinstance(response.json()["events"], list)
    elif path.startswith("CSV") and response.status_code == 200:
        assert response.headers["content-type"].startswith("text/csv")
        assert response.text.lstrip("\ufeff").startswith("id,at,action,actor_id,")
    elif path.startswith("PAGE") and response.status_code == 200:
        assert 'id="audit-csv"' in response.text
    elif response.status_code == 404 and obj != "missing":
        # Not readable ⇒ the very page a group that does not exist gets.
        other = client.get(template.format(id=world.groups["missing"].id))
        assert response.text.replace(gid, "ID") == \
            other.text.replace(world.groups["missing"].id, "ID")
