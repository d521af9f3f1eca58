"""Folders: create, browse, rename, move, trash, restore, purge, access lists — the flows and
every endpoint's negative cases; and a query-count guard on listing a folder.

Alice owns the group, Bob is an admin, Carol a member, Dave is outside."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from tests.app.helpers import (
    API,
    add_member,
    expect,
    expect_error,
    make_folder,
    make_group,
    missing_id,
    set_access,
    uid_of,
)
from tests.inprocess import InProcessServer
from tests.live import Client, unique
from tests.plugin import Site
from tests.queries import counted_queries

Cast = Callable[[str], Client]


@pytest.fixture
def group(alice: Client, bob: Client, carol: Client) -> dict[str, Any]:
    """A fresh closed group: Alice owns, Bob is admin, Carol is a member."""
    made = make_group(alice, unique("team"))
    add_member(alice, made["id"], bob, "admin")
    add_member(alice, made["id"], carol)
    return made


def get(client: Client, fid: str) -> dict[str, Any]:
    data: dict[str, Any] = expect(client.get(f"{API}/folders/{fid}"), 200)
    return data


def child_ids(client: Client, fid: str) -> list[str]:
    return [c["id"] for c in get(client, fid)["children"]]


# -- create and browse -----------------------------------------------------------------------

def test_create_and_browse(group: dict[str, Any], alice: Client, carol: Client) -> None:
    root = group["root_folder_id"]
    made = expect(carol.post(f"{API}/folders/{root}/folders", json={"name": " Notulen "}), 201)
    assert made["name"] == "Notulen" and made["parent_id"] == root
    assert made["group_id"] == group["id"] and made["kind"] == "folder"
    assert made["access"] == made["own_access"] == "open"  # default: inherit (open here)
    inner = make_folder(carol, made["id"], "2026")
    data = get(alice, inner["id"])
    assert [b["id"] for b in data["breadcrumbs"]] == [root, made["id"], inner["id"]]
    assert data["children"] == []
    b_first = make_folder(alice, root, "b-first")
    a_second = make_folder(alice, root, "A-second")
    names = [c["name"] for c in get(carol, root)["children"]]
    assert names == sorted(names, key=str.lower)
    assert {b_first["name"], a_second["name"], "Notulen"} <= set(names)


def test_sub_folder_of_a_closed_folder_inherits_closed(group: dict[str, Any], alice: Client,
                                                       carol: Client, bob: Client) -> None:
    closed = make_folder(alice, group["root_folder_id"], unique("dicht"), "closed",
                         [(carol, "editor")])
    inner = expect(carol.post(f"{API}/folders/{closed['id']}/folders", json={"name": "x"}), 201)
    assert (inner["access"], inner["own_access"]) == ("closed", "open")
    expect(bob.get(f"{API}/folders/{inner['id']}"), 200)  # admins manage every folder


@pytest.mark.parametrize(("body", "field"), [
    ({}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": "a\x00b"}, "name"),
    ({"name": "x", "access": "secret"}, "access"),
    ({"name": 3}, "name"),
    ({"name": "x", "parent_id": "y"}, "parent_id"),
])
def test_create_folder_bad_input(group: dict[str, Any], alice: Client, body: dict[str, Any],
                                 field: str) -> None:
    root = group["root_folder_id"]
    expect_error(alice.post(f"{API}/folders/{root}/folders", json=body), 400, field=field)
    assert get(alice, root)["children"] == []


def test_create_folder_refusals(site: Site, group: dict[str, Any], alice: Client,
                                carol: Client, dave: Client) -> None:
    root = group["root_folder_id"]
    url = f"{API}/folders/{root}/folders"
    # Only managers make closed folders (a member would make one nobody else may manage).
    expect_error(carol.post(url, json={"name": "geheim", "access": "closed"}), 403)
    expect_error(dave.post(url, json={"name": "x"}), 404)  # not a member: not even found
    expect_error(carol.post(f"{API}/folders/{missing_id()}/folders", json={"name": "x"}), 404)
    with site.http() as anonymous:
        expect_error(anonymous.post(url, json={"name": "x"}), 401)
        expect_error(anonymous.get(f"{API}/folders/{root}"), 401)
    assert get(alice, root)["children"] == []
    closed = expect(alice.post(url, json={"name": "geheim", "access": "closed"}), 201)
    assert closed["access"] == "closed"
    expect_error(carol.get(f"{API}/folders/{closed['id']}"), 404)
    assert closed["id"] not in child_ids(carol, root)


def test_folder_of_another_group_is_not_found(group: dict[str, Any], dave: Client) -> None:
    theirs = make_group(dave, unique("dave"))
    for fid in (group["root_folder_id"],):
        missing = dave.get(f"{API}/folders/{missing_id()}")
        response = dave.get(f"{API}/folders/{fid}")
        expect_error(response, 404)
        assert response.json() == missing.json()
    expect(dave.get(f"{API}/folders/{theirs['root_folder_id']}"), 200)


# -- rename and move -------------------------------------------------------------------------

def test_rename(group: dict[str, Any], alice: Client, carol: Client) -> None:
    root = group["root_folder_id"]
    sub = make_folder(carol, root, "oud")
    assert expect(carol.patch(f"{API}/folders/{sub['id']}", json={"name": "nieuw"}),
                  200)["name"] == "nieuw"
    expect_error(carol.patch(f"{API}/folders/{root}", json={"name": "x"}), 403)  # root: managers
    assert expect(alice.patch(f"{API}/folders/{root}", json={"name": "Start"}),
                  200)["name"] == "Start"
    expect_error(carol.patch(f"{API}/folders/{sub['id']}", json={"name": ""}), 400, field="name")
    expect_error(carol.patch(f"{API}/folders/{sub['id']}", json={"title": "x"}), 400,
                 field="title")
    expect_error(carol.patch(f"{API}/folders/{missing_id()}", json={"name": "x"}), 404)
    assert get(carol, sub["id"])["name"] == "nieuw"


def test_move(group: dict[str, Any], alice: Client, bob: Client, carol: Client) -> None:
    root = group["root_folder_id"]
    a = make_folder(alice, root, "a")
    b = make_folder(alice, a["id"], "b")
    c = make_folder(alice, b["id"], "c")
    target = make_folder(alice, root, "target")
    # Into its own subtree, or into itself: a cycle.
    for into in (b["id"], c["id"], a["id"]):
        expect_error(alice.patch(f"{API}/folders/{a['id']}", json={"parent_id": into}), 422,
                     "cycle")
    # The root stays where it is.
    expect_error(alice.patch(f"{API}/folders/{root}", json={"parent_id": a["id"]}), 422,
                 "root_folder")
    # Members may not move (it changes who reads a subtree).
    expect_error(carol.patch(f"{API}/folders/{b['id']}", json={"parent_id": target["id"]}), 403)
    expect_error(alice.patch(f"{API}/folders/{b['id']}", json={"parent_id": missing_id()}), 404,
                 field="parent_id")
    expect_error(alice.patch(f"{API}/folders/{b['id']}", json={"parent_id": "../x"}), 400,
                 field="parent_id")
    assert get(alice, b["id"])["parent_id"] == a["id"]
    moved = expect(bob.patch(f"{API}/folders/{b['id']}",
                             json={"parent_id": target["id"], "name": "b2"}), 200)
    assert (moved["parent_id"], moved["name"]) == (target["id"], "b2")
    assert child_ids(alice, a["id"]) == []
    assert child_ids(alice, target["id"]) == [b["id"]]
    assert [x["id"] for x in get(alice, c["id"])["breadcrumbs"]] == [
        root, target["id"], b["id"], c["id"]]


def test_move_into_another_group_or_an_unreadable_folder(group: dict[str, Any], alice: Client,
                                                         bob: Client) -> None:
    root = group["root_folder_id"]
    sub = make_folder(alice, root, "sub")
    other = make_group(alice, unique("other"))
    expect_error(alice.patch(f"{API}/folders/{sub['id']}",
                             json={"parent_id": other["root_folder_id"]}), 422, "other_group")
    # Bob (admin here) cannot even see the other group's folder.
    expect_error(bob.patch(f"{API}/folders/{sub['id']}",
                           json={"parent_id": other["root_folder_id"]}), 404, field="parent_id")
    trashed = make_folder(alice, root, "weg")
    expect(alice.delete(f"{API}/folders/{trashed['id']}"), 204)
    expect_error(alice.patch(f"{API}/folders/{sub['id']}", json={"parent_id": trashed["id"]}),
                 404, field="parent_id")
    assert get(alice, sub["id"])["parent_id"] == root


def test_moving_into_a_closed_folder_narrows_at_once(group: dict[str, Any], alice: Client,
                                                     carol: Client) -> None:
    root = group["root_folder_id"]
    closed = make_folder(alice, root, "dicht", "closed", [])
    sub = make_folder(carol, root, "mijn map")
    expect(alice.patch(f"{API}/folders/{sub['id']}", json={"parent_id": closed["id"]}), 200)
    expect_error(carol.get(f"{API}/folders/{sub['id']}"), 404)


# -- trash -----------------------------------------------------------------------------------

def test_trash_restore_purge(group: dict[str, Any], alice: Client, carol: Client,
                             dave: Client) -> None:
    root, gid = group["root_folder_id"], group["id"]
    sub = make_folder(carol, root, "weg")
    inner = make_folder(carol, sub["id"], "binnen")
    expect_error(alice.delete(f"{API}/folders/{root}"), 422, "root_folder")
    expect_error(carol.post(f"{API}/folders/{sub['id']}/restore"), 409, "not_in_trash")
    expect_error(alice.delete(f"{API}/folders/{sub['id']}/purge"), 409, "not_in_trash")

    expect(carol.delete(f"{API}/folders/{sub['id']}"), 204)
    assert sub["id"] not in child_ids(carol, root)
    missing = carol.get(f"{API}/folders/{missing_id()}")
    for fid in (sub["id"], inner["id"]):  # the subtree goes with it
        response = carol.get(f"{API}/folders/{fid}")
        expect_error(response, 404)
        assert response.json() == missing.json()
    expect_error(carol.delete(f"{API}/folders/{sub['id']}"), 404)
    expect_error(carol.post(f"{API}/folders/{sub['id']}/folders", json={"name": "x"}), 404)
    expect_error(carol.patch(f"{API}/folders/{sub['id']}", json={"name": "x"}), 404)
    trash = expect(carol.get(f"{API}/groups/{gid}/trash"), 200)
    assert [t["id"] for t in trash] == [sub["id"]]
    assert trash[0]["trashed_by"] == uid_of(carol) and trash[0]["trashed_at"]
    expect_error(dave.get(f"{API}/groups/{gid}/trash"), 403)
    expect_error(dave.post(f"{API}/folders/{sub['id']}/restore"), 404)

    restored = expect(carol.post(f"{API}/folders/{sub['id']}/restore"), 200)
    assert restored["id"] == sub["id"]
    assert sub["id"] in child_ids(carol, root)
    assert child_ids(carol, sub["id"]) == [inner["id"]]
    assert expect(carol.get(f"{API}/groups/{gid}/trash"), 200) == []

    expect(carol.delete(f"{API}/folders/{sub['id']}"), 204)
    expect_error(carol.delete(f"{API}/folders/{sub['id']}/purge"), 403)  # members do not purge
    expect(alice.delete(f"{API}/folders/{sub['id']}/purge"), 204)
    assert expect(alice.get(f"{API}/groups/{gid}/trash"), 200) == []
    expect_error(alice.post(f"{API}/folders/{sub['id']}/restore"), 404)
    expect_error(alice.get(f"{API}/folders/{inner['id']}"), 404)
    expect_error(alice.delete(f"{API}/folders/{sub['id']}/purge"), 404)


def test_restore_needs_the_parent_back_first(group: dict[str, Any], carol: Client) -> None:
    root = group["root_folder_id"]
    outer = make_folder(carol, root, "buiten")
    inner = make_folder(carol, outer["id"], "binnen")
    expect(carol.delete(f"{API}/folders/{inner['id']}"), 204)
    expect(carol.delete(f"{API}/folders/{outer['id']}"), 204)
    expect_error(carol.post(f"{API}/folders/{inner['id']}/restore"), 409, "parent_in_trash")
    expect(carol.post(f"{API}/folders/{outer['id']}/restore"), 200)
    expect(carol.post(f"{API}/folders/{inner['id']}/restore"), 200)
    assert child_ids(carol, outer["id"]) == [inner["id"]]


def test_trash_needs_write_access_on_the_parent(group: dict[str, Any], alice: Client,
                                                carol: Client) -> None:
    closed = make_folder(alice, group["root_folder_id"], "dicht", "closed",
                         [(carol, "viewer")])
    inner = make_folder(alice, closed["id"], "binnen", "closed", [(carol, "viewer")])
    expect_error(carol.delete(f"{API}/folders/{inner['id']}"), 403)
    expect_error(carol.delete(f"{API}/folders/{closed['id']}"), 403)
    assert get(alice, closed["id"])["children"][0]["id"] == inner["id"]


def test_trash_refuses_a_subtree_with_folders_the_trasher_cannot_change(
        group: dict[str, Any], alice: Client, carol: Client) -> None:
    """Issue 9, item 14: trashing a folder took closed sub-folders its trasher could not read,
    and the purge after PLEIN_TRASH_DAYS deleted them. Now the whole subtree is checked."""
    outer = make_folder(alice, group["root_folder_id"], "werk")  # open: Carol edits
    make_folder(carol, outer["id"], "van carol")
    hidden = make_folder(alice, outer["id"], "personeel", "closed", [])  # Carol is not listed
    deep = make_folder(alice, make_folder(alice, outer["id"], "gedeeld")["id"], "leesbaar",
                       "closed", [(carol, "viewer")])  # she reads it, but may not change it
    error = expect_error(carol.delete(f"{API}/folders/{outer['id']}"), 403,
                         "subfolders_not_allowed")
    assert "personeel" not in error["message"] and hidden["id"] not in error["message"]
    assert hidden["id"] in child_ids(alice, outer["id"])  # nothing moved to the trash
    expect(set_access(alice, hidden["id"], "closed", [(carol, "editor")]), 200)
    expect_error(carol.delete(f"{API}/folders/{outer['id']}"), 403, "subfolders_not_allowed")
    expect(set_access(alice, deep["id"], "closed", [(carol, "editor")]), 200)
    # Everything below is hers to change now, but it is Alice's work (issue 17): only an
    # owner or admin trashes it.
    expect_error(carol.delete(f"{API}/folders/{outer['id']}"), 403, "trash_not_allowed")
    expect(set_access(alice, hidden["id"], "closed", []), 200)
    expect(alice.delete(f"{API}/folders/{outer['id']}"), 204)  # the owner changes everything


# -- access lists ----------------------------------------------------------------------------

def test_set_access(group: dict[str, Any], alice: Client, bob: Client, carol: Client) -> None:
    sub = make_folder(alice, group["root_folder_id"], "sub")
    data = expect(set_access(bob, sub["id"], "closed", [(carol, "viewer")]), 200)
    assert data["own_access"] == "closed"
    assert [(m["user_id"], m["role"]) for m in data["members"]] == [(uid_of(carol), "viewer")]
    assert get(carol, sub["id"])["my_role"] == "viewer"
    expect_error(carol.post(f"{API}/folders/{sub['id']}/folders", json={"name": "x"}), 403)
    expect(set_access(alice, sub["id"], "closed", [(carol, "editor")]), 200)
    expect(carol.post(f"{API}/folders/{sub['id']}/folders", json={"name": "x"}), 201)
    reopened = expect(set_access(alice, sub["id"], "open"), 200)
    assert reopened["own_access"] == "open" and reopened["members"] == []


def test_a_folder_goes_to_the_trash_by_its_maker_only_while_all_in_it_is_theirs(
        group: dict[str, Any], alice: Client, bob: Client, carol: Client) -> None:
    """Issue 17: an editor trashed a whole folder of everyone's work with one click."""
    root = group["root_folder_id"]
    own = make_folder(carol, root, "van carol")
    make_folder(carol, own["id"], "ook van carol")
    expect(carol.post(f"{API}/folders/{own['id']}/files",
                      files={"file": ("a.txt", b"carol\n", "text/plain")}), 201)
    expect(carol.delete(f"{API}/folders/{own['id']}"), 204)  # all hers
    shared = make_folder(carol, root, "gedeeld")
    expect(alice.post(f"{API}/folders/{shared['id']}/files",
                      files={"file": ("b.txt", b"alice\n", "text/plain")}), 201)
    error = expect_error(carol.delete(f"{API}/folders/{shared['id']}"), 403, "trash_not_allowed")
    assert "b.txt" not in error["message"]
    nested = make_folder(carol, root, "genest")
    make_folder(alice, nested["id"], "van alice")
    expect_error(carol.delete(f"{API}/folders/{nested['id']}"), 403, "trash_not_allowed")
    expect(bob.delete(f"{API}/folders/{shared['id']}"), 204)  # an admin may
    expect_error(carol.delete(f"{API}/folders/{root}"), 422, "root_folder")


def test_set_access_refusals(group: dict[str, Any], alice: Client, carol: Client,
                             dave: Client) -> None:
    root = group["root_folder_id"]
    sub = make_folder(alice, root, "sub")
    url = f"{API}/folders/{sub['id']}/access"
    expect_error(set_access(carol, sub["id"], "closed", [(carol, "editor")]), 403)
    expect_error(set_access(dave, sub["id"], "closed"), 404)
    expect_error(set_access(alice, root, "closed"), 422, "root_folder")
    expect_error(set_access(alice, sub["id"], "closed", [(dave, "viewer")]), 422, "not_a_member")
    expect_error(alice.put(url, json={"access": "closed", "members": [
        {"user_id": missing_id(), "role": "viewer"}]}), 422, "not_a_member")
    expect_error(set_access(alice, sub["id"], "closed", [(carol, "viewer"), (carol, "editor")]),
                 400, field="members.1.user_id")  # the same path style as pydantic's
    expect_error(alice.put(url, json={"access": "secret"}), 400, field="access")
    expect_error(alice.put(url, json={}), 400, field="access")
    expect_error(alice.put(url, json={"access": "closed", "members": [
        {"user_id": uid_of(carol), "role": "owner"}]}), 400, field="members.0.role")
    expect_error(alice.put(url, json={"access": "closed", "members": [
        {"user_id": uid_of(carol)}]}), 400, field="members.0.role")
    expect_error(alice.put(f"{API}/folders/{missing_id()}/access", json={"access": "open"}), 404)
    data = get(alice, sub["id"])
    assert data["own_access"] == "open" and data["members"] == []


# -- query count ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def inproc(app_server: InProcessServer) -> Any:
    """The app in this process, to count the SQL a folder listing makes."""
    return app_server.runtime


def test_listing_a_folder_is_a_fixed_number_of_queries(inproc: Any) -> None:
    from app.access import Access
    from app.models import User
    from app.routes.api.folders import folder_out
    from app.services import accounts, folders, groups

    db = inproc.db
    with db.write() as session:
        owner = accounts.register(session, inproc.settings, inproc.passwords,
                                  email=f"{unique('q')}@example.nl", name="Q",
                                  password="correct horse battery staple").user
        member = accounts.register(session, inproc.settings, inproc.passwords,
                                   email=f"{unique('m')}@example.nl", name="M",
                                   password="correct horse battery staple").user
        assert owner is not None and member is not None
        access = Access(session, owner)
        group = groups.create_group(session, access, name="Q", description="",
                                    group_access="closed")
        groups.add_member(session, access, group, email=member.email, role="member")
        assert group.root_folder_id is not None
        root = folders.get_folder(session, access, group.root_folder_id)
        small = folders.create_folder(session, access, root, name="small", folder_access=None)
        big = folders.create_folder(session, access, root, name="big", folder_access=None)
        for index in range(200):
            parent = small if index < 20 else big
            made = folders.create_folder(session, access, parent, name=f"f{index}",
                                         folder_access="closed" if index % 3 else None)
            if index % 3 == 1:
                folders.set_access(session, access, made, folder_access="closed",
                                   grants=[folders.FolderGrant(member.id, "viewer")])
        ids = {"owner": owner.id, "member": member.id, "small": small.id, "big": big.id}

    def listing(user_key: str, folder_key: str) -> tuple[list[str], int]:
        with db.read() as session:
            user = session.get(User, ids[user_key])
            ctx = SimpleNamespace(db=session, access=Access(session, user))
            with counted_queries(db.engine) as statements:
                folder = folders.get_folder(session, ctx.access, ids[folder_key])
                out = folder_out(ctx, folder)  # type: ignore[arg-type]
            return statements, len(out.children)

    for user_key, visible in (("owner", (20, 180)), ("member", (14, 120))):
        few, few_children = listing(user_key, "small")
        many, many_children = listing(user_key, "big")
        assert (few_children, many_children) == visible
        assert len(many) == len(few), \
            f"{user_key}: {len(few)} queries for 20 children, {len(many)} for 180"
        assert len(few) <= 10, few
