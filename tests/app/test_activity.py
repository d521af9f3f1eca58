"""Activity (API.md "Activity"): what the existing services record, the feeds of mine and of
one group, paging, the read-time access filter (trash, folders closed later), and the
coalescing of edits. Access per role is in ``test_access_matrix_discussions.py``.

People: ``alice`` owns, ``bob`` is a member, ``carol`` is listed on the closed folder,
``dave`` is outside."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from app.db import Database
from app.models import Activity, Document, Folder, Group, User, utcnow
from app.services import activity
from tests.app.helpers import (
    API,
    expect,
    expect_error,
    make_team,
    missing_id,
    set_access,
    uid_of,
    upload_id,
)
from tests.app.keyfile import keys_in
from tests.inprocess import running_in_process
from tests.live import Client
from tests.plugin import signed_up


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("activity") / "data"
    with running_in_process(data_dir, comments_per_minute=0) as site, signed_up(site) as people:
        yield {**people, "server": site}


def team(world: dict[str, Any]) -> dict[str, Any]:
    """A fresh closed group: Bob and Carol members, an open and a closed (Carol) folder."""
    return make_team(world["alice"], world["bob"], world["carol"], carol_on_closed="editor",
                     name="Dossier")


def feed(client: Client, group_id: str | None = None, **params: Any) -> list[dict[str, Any]]:
    path = f"{API}/groups/{group_id}/activity" if group_id else f"{API}/activity"
    page = expect(client.get(path, params={"limit": 500, **params}), 200)
    assert page["total"] >= len(page["items"])
    items: list[dict[str, Any]] = page["items"]
    return items


def about(items: list[dict[str, Any]], doc_id: str) -> list[str]:
    return [i["verb"] for i in items if i["document"] and i["document"]["id"] == doc_id]


def test_existing_services_record_their_events(world: dict[str, Any]) -> None:
    alice, bob = world["alice"], world["bob"]
    t = team(world)
    gid = t["group"]["id"]
    doc = upload_id(alice, t["open"], "verslag.txt")
    expect(bob.post(f"{API}/documents/{doc}/versions",
                    files={"file": ("v2.txt", os.urandom(32), "x/y")}), 201)
    expect(alice.post(f"{API}/documents/{doc}/versions/1/restore"), 201)
    expect(alice.post(f"{API}/documents/{doc}/comments", json={"body": "Goed zo"}), 201)
    expect(alice.patch(f"{API}/documents/{doc}", json={"folder_id": t["closed"]}), 200)
    expect(alice.patch(f"{API}/groups/{gid}/members/{uid_of(bob)}", json={"role": "admin"}),
           200)
    set_access(alice, t["closed"], "closed", [(world["carol"], "viewer")])

    items = feed(alice, gid)
    assert about(items, doc) == ["document.moved", "document.commented", "document.version",
                                 "document.version", "document.created"]
    by_verb = {i["verb"]: i for i in items}
    created = by_verb["document.created"]
    assert created["actor"]["id"] == uid_of(alice) and created["group"]["id"] == gid
    assert created["document"] == {"id": doc, "title": "verslag.txt", "kind": "file"}
    # A document's folder is where it is now.
    assert created["folder"]["id"] == t["closed"]
    versions = [i for i in items if i["verb"] == "document.version"]
    assert versions[0]["data"] == {"version": 3, "restored_from": 1}
    assert versions[1]["data"] == {"version": 2} and versions[1]["actor"]["id"] == uid_of(bob)
    assert by_verb["document.commented"]["comment"]["excerpt"] == "Goed zo"
    assert by_verb["member.role"]["subject"]["id"] == uid_of(bob)
    assert by_verb["member.role"]["data"]["role"] == "admin"
    assert by_verb["folder.access"]["folder"]["id"] == t["closed"]
    assert by_verb["folder.access"]["data"] == {"access": "closed"}
    joined = [i["subject"]["name"] for i in items if i["verb"] == "member.joined"]
    assert sorted(joined) == ["Bob", "Carol"]
    # Newest first.
    times = [i["created_at"] for i in items]
    assert times == sorted(times, reverse=True)

    expect(alice.delete(f"{API}/groups/{gid}/members/{uid_of(bob)}"), 204)
    left = feed(alice, gid)[0]
    assert left["verb"] == "member.left" and left["subject"]["id"] == uid_of(bob)


def test_my_feed_spans_my_groups_and_pages(world: dict[str, Any]) -> None:
    alice, bob = world["alice"], world["bob"]
    first, second = team(world), team(world)
    docs = [upload_id(alice, first["open"], "a.txt"), upload_id(alice, second["open"], "b.txt")]
    mine = feed(bob)
    assert {i["group"]["id"] for i in mine} >= {first["group"]["id"], second["group"]["id"]}
    assert all(about(mine, d) == ["document.created"] for d in docs)
    only_second = feed(bob, second["group"]["id"])
    assert {i["group"]["id"] for i in only_second} == {second["group"]["id"]}
    one_doc = feed(bob, document_id=docs[0])
    assert [i["verb"] for i in one_doc] == ["document.created"]

    page = expect(bob.get(f"{API}/activity", params={"limit": 2}), 200)
    assert len(page["items"]) == 2 and page["total"] > 2
    rest = expect(bob.get(f"{API}/activity", params={"limit": 2, "offset": 2}), 200)
    assert {i["id"] for i in page["items"]}.isdisjoint(i["id"] for i in rest["items"])
    expect_error(bob.get(f"{API}/activity", params={"limit": 501}), 400, field="limit")


def test_group_feed_is_for_members(world: dict[str, Any]) -> None:
    t = team(world)
    gid = t["group"]["id"]
    expect_error(world["dave"].get(f"{API}/groups/{gid}/activity"), 403)
    expect_error(world["dave"].get(f"{API}/groups/{missing_id()}/activity"), 404)
    assert feed(world["dave"]) == [] or all(i["group"]["id"] != gid for i in feed(world["dave"]))
    anonymous = world["server"].client()
    try:
        expect_error(anonymous.get(f"{API}/groups/{gid}/activity"), 401)
        expect_error(anonymous.get(f"{API}/activity"), 401)
    finally:
        anonymous.close()


def test_closed_folders_and_trash_filter_at_read_time(world: dict[str, Any]) -> None:
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    t = team(world)
    gid = t["group"]["id"]
    secret = upload_id(alice, t["closed"], "geheim.txt")
    visible = upload_id(alice, t["open"], "open.txt")
    assert about(feed(bob, gid), secret) == []
    assert about(feed(carol, gid), secret) == ["document.created"]

    # Moving a readable document into the closed folder hides its whole history from Bob.
    expect(alice.patch(f"{API}/documents/{visible}", json={"folder_id": t["closed"]}), 200)
    assert about(feed(bob, gid), visible) == []
    expect(alice.patch(f"{API}/documents/{visible}", json={"folder_id": t["open"]}), 200)
    assert about(feed(bob, gid), visible) == ["document.moved", "document.moved",
                                              "document.created"]

    # In the trash a document's activity is gone for everyone; the trash event itself shows
    # to whoever may read the folder it left, with the title it had then.
    expect(alice.delete(f"{API}/documents/{visible}"), 204)
    for client in (alice, bob):
        assert about(feed(client, gid), visible) == ["document.trashed"]
    trashed = next(i for i in feed(bob, gid) if i["verb"] == "document.trashed")
    assert trashed["document"]["title"] == "open.txt" and trashed["folder"]["id"] == t["open"]
    expect(alice.post(f"{API}/documents/{visible}/restore"), 200)
    expect(alice.patch(f"{API}/documents/{visible}", json={"title": "nieuw geheim"}), 200)
    expect(alice.patch(f"{API}/documents/{visible}", json={"folder_id": t["closed"]}), 200)
    bobs = feed(bob, gid)
    assert about(bobs, visible) == ["document.trashed"]
    assert "nieuw geheim" not in str(bobs)

    # Closing the open folder later hides what happened in it before.
    set_access(alice, t["open"], "closed", [(carol, "viewer")])
    assert [i for i in feed(bob, gid) if i["folder"] and i["folder"]["id"] == t["open"]] == []


def test_edits_coalesce_per_person_per_document_per_hour(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'a.sqlite3'}", keys_in(tmp_path))
    db.migrate()
    try:
        with db.write() as session:
            people = [User(email=f"p{i}@example.nl", name=f"P{i}", password_hash="x")
                      for i in range(2)]
            group = Group(name="G", access="open")
            session.add_all([*people, group])
            session.flush()
            folder = Folder(group_id=group.id, name="G")
            session.add(folder)
            session.flush()
            doc = Document(group_id=group.id, folder_id=folder.id, kind="note", title="N")
            session.add(doc)
            session.flush()
            start = utcnow()
            for minutes in (0, 10, 59):
                activity.record(session, "document.edited", actor_id=people[0].id,
                                document=doc, now=start + timedelta(minutes=minutes))
            activity.record(session, "document.edited", actor_id=people[1].id, document=doc,
                            now=start + timedelta(minutes=5))
            # More than an hour after the last one: a new row.
            activity.record(session, "document.edited", actor_id=people[0].id, document=doc,
                            now=start + timedelta(minutes=59 + 61))
            rows = list(session.scalars(select(Activity).where(Activity.actor_id == people[0].id)
                                        .order_by(Activity.created_at)))
            assert [r.data.get("count", 1) for r in rows] == [3, 1]
            assert rows[0].created_at == start + timedelta(minutes=59)
            assert session.scalar(select(func.count()).select_from(Activity)) == 3
            # Editing makes you follow.
            assert activity.is_following(session, people[1].id, doc.id)
            with pytest.raises(ValueError, match="unknown activity verb"):
                activity.record(session, "document.exploded", actor_id=None, document=doc)
    finally:
        db.dispose()
