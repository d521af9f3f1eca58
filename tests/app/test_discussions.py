"""Discussions beside a document (API.md "Discussions"): threads, replies, editing, resolving,
deleting, paging, mentions' autocomplete, following, limits, and every endpoint's negative
cases. Access per role is in ``test_access_matrix_discussions.py``.

People: ``alice`` owns the group, ``bob`` is a plain member, ``carol`` only reads the closed
folder, ``dave`` is outside. The module has an app of its own (in process) with the posting rate
limit off (one test starts one with a small limit to check the 429)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from app.db import Database
from app.models import Comment, Document, Folder, Group, Membership, User
from app.schemas.discussions import Anchor, CommentCreate
from app.services import discussions
from app.settings import Settings
from tests.app.helpers import (
    API,
    add_member,
    expect,
    expect_error,
    make_group,
    make_team,
    missing_id,
    uid_of,
    upload_id,
)
from tests.app.keyfile import keys_in
from tests.inprocess import running_in_process
from tests.live import Client, unique
from tests.plugin import signed_up
from tests.queries import counted_queries


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("discussions") / "data"
    with running_in_process(data_dir, comments_per_minute=0) as site, signed_up(site) as people:
        team = make_team(people["alice"], people["bob"], people["carol"], name="Overleg")
        yield {**people, "server": site, **team}


def comment(client: Client, doc_id: str, body: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = expect(client.post(f"{API}/documents/{doc_id}/comments",
                                             json={"body": body, **extra}), 201)
    return out


def listing(client: Client, doc_id: str, **params: Any) -> dict[str, Any]:
    out: dict[str, Any] = expect(client.get(f"{API}/documents/{doc_id}/comments",
                                            params=params), 200)
    return out


# -- flows ---------------------------------------------------------------------------------

def test_thread_reply_edit_resolve(world: dict[str, Any]) -> None:
    alice, bob = world["alice"], world["bob"]
    doc = upload_id(alice, world["open"])
    root = comment(alice, doc, "Is **dit** klaar?\n\n- ja\n- nee")
    assert root["body"] == "Is **dit** klaar?\n\n- ja\n- nee"  # stored as written
    assert "<strong>dit</strong>" in root["body_html"] and "<li>ja</li>" in root["body_html"]
    assert root["author"]["id"] == uid_of(alice) and root["thread_id"] == root["id"]
    assert root["parent_id"] is None and root["replies"] == [] and not root["deleted"]
    assert root["unnotified_mentions"] == []

    reply = comment(bob, doc, "Bijna.", parent_id=root["id"])
    assert reply["parent_id"] == root["id"] and reply["thread_id"] == root["id"]
    # A reply to a reply joins the thread of its root (one level deep).
    nested = comment(alice, doc, "Dank je.", parent_id=reply["id"])
    assert nested["parent_id"] == root["id"]

    page = listing(alice, doc)
    assert page["total"] == 1
    [thread] = page["comments"]
    assert [r["id"] for r in thread["replies"]] == [reply["id"], nested["id"]]
    assert thread["can_edit"] and thread["can_delete"]
    assert [r["can_edit"] for r in thread["replies"]] == [False, True]
    # Bob sees his own reply editable, Alice's comments not.
    [bobs_view] = listing(bob, doc)["comments"]
    assert not bobs_view["can_edit"] and bobs_view["replies"][0]["can_edit"]

    edited = expect(bob.patch(f"{API}/comments/{reply['id']}", json={"body": "Klaar!"}), 200)
    assert edited["body"] == "Klaar!" and edited["edited_at"] is not None
    assert edited["body_html"] == "<p>Klaar!</p>\n"

    resolved = expect(bob.patch(f"{API}/comments/{root['id']}", json={"resolved": True}), 200)
    assert resolved["resolved"] and resolved["resolved_by"]["id"] == uid_of(bob)
    assert len(resolved["replies"]) == 2  # a thread root comes back with its replies
    reopened = expect(alice.patch(f"{API}/comments/{root['id']}", json={"resolved": False}),
                      200)
    assert not reopened["resolved"] and reopened["resolved_at"] is None
    expect(alice.patch(f"{API}/comments/{root['id']}", json={"resolved": True}), 200)
    # A new reply reopens a resolved thread.
    comment(bob, doc, "Toch nog iets.", parent_id=root["id"])
    assert not expect(alice.get(f"{API}/comments/{root['id']}"), 200)["resolved"]
    # Only thread roots resolve.
    expect_error(alice.patch(f"{API}/comments/{reply['id']}", json={"resolved": True}), 422,
                 "not_a_thread")


def test_delete_leaves_a_placeholder_while_replies_remain(world: dict[str, Any]) -> None:
    alice, bob = world["alice"], world["bob"]
    doc = upload_id(alice, world["open"])
    root = comment(bob, doc, f"Geheim plan @[Alice](user:{uid_of(alice)})")
    reply = comment(alice, doc, "Goed plan.", parent_id=root["id"])
    lone = comment(bob, doc, "Los commentaar")

    expect(bob.delete(f"{API}/comments/{root['id']}"), 204)
    page = listing(alice, doc)
    assert page["total"] == 2
    placeholder = page["comments"][0]
    assert placeholder["id"] == root["id"] and placeholder["deleted"]
    assert placeholder["body"] is None and placeholder["body_html"] == ""
    assert not placeholder["can_edit"] and not placeholder["can_delete"]
    assert [r["id"] for r in placeholder["replies"]] == [reply["id"]]
    assert "Geheim" not in str(page)
    # The deleted comment is gone for every path: read, edit, delete, reply.
    expect_error(alice.get(f"{API}/comments/{root['id']}"), 404)
    expect_error(bob.patch(f"{API}/comments/{root['id']}", json={"body": "x"}), 404)
    expect_error(bob.delete(f"{API}/comments/{root['id']}"), 404)
    expect_error(alice.post(f"{API}/documents/{doc}/comments",
                            json={"body": "x", "parent_id": root["id"]}), 404,
                 field="parent_id")

    # The group owner moderates: she removes Bob's other comment; the last reply takes the
    # placeholder with it.
    expect(alice.delete(f"{API}/comments/{lone['id']}"), 204)
    expect(alice.delete(f"{API}/comments/{reply['id']}"), 204)
    assert listing(alice, doc) == {"total": 0, "limit": 50, "offset": 0, "comments": []}


def test_paging_by_thread(world: dict[str, Any]) -> None:
    alice = world["alice"]
    doc = upload_id(alice, world["open"])
    ids = [comment(alice, doc, f"Punt {i}")["id"] for i in range(5)]
    comment(alice, doc, "antwoord", parent_id=ids[0])
    first = listing(alice, doc, limit=2)
    assert first["total"] == 5 and [c["id"] for c in first["comments"]] == ids[:2]
    assert len(first["comments"][0]["replies"]) == 1
    last = listing(alice, doc, limit=2, offset=4)
    assert [c["id"] for c in last["comments"]] == ids[4:]
    expect_error(alice.get(f"{API}/documents/{doc}/comments", params={"limit": 0}), 400)
    expect_error(alice.get(f"{API}/documents/{doc}/comments", params={"offset": -1}), 400)


def test_viewers_may_discuss_but_not_resolve_others_threads(world: dict[str, Any]) -> None:
    alice, carol = world["alice"], world["carol"]
    doc = upload_id(alice, world["closed"])
    mine = comment(carol, doc, "Vraag van een lezer")
    theirs = comment(alice, doc, "Opmerking van de eigenaar")
    expect(carol.patch(f"{API}/comments/{mine['id']}", json={"resolved": True}), 200)
    expect_error(carol.patch(f"{API}/comments/{theirs['id']}", json={"resolved": True}), 403)
    expect_error(carol.delete(f"{API}/comments/{theirs['id']}"), 403)
    expect(carol.delete(f"{API}/comments/{mine['id']}"), 204)


def test_mention_candidates_are_the_readers(world: dict[str, Any]) -> None:
    alice, bob, carol, dave = world["alice"], world["bob"], world["carol"], world["dave"]
    closed_doc = upload_id(alice, world["closed"])
    open_doc = upload_id(alice, world["open"])

    def names(client: Client, doc: str, q: str = "") -> list[str]:
        rows = expect(client.get(f"{API}/documents/{doc}/mention-candidates",
                                 params={"q": q}), 200)
        for row in rows:
            assert row["mention"] == f"@[{row['name']}](user:{row['id']})"
        return [row["name"] for row in rows]

    assert names(alice, open_doc) == ["Bob", "Carol"]  # not oneself
    assert names(alice, closed_doc) == ["Carol"]  # Bob may not read it
    assert names(carol, closed_doc) == ["Alice"]
    assert names(alice, open_doc, "CAR") == ["Carol"]
    assert names(alice, open_doc, "%") == []  # LIKE wildcards are literal
    expect_error(bob.get(f"{API}/documents/{closed_doc}/mention-candidates"), 404)
    expect_error(dave.get(f"{API}/documents/{open_doc}/mention-candidates"), 404)
    expect_error(alice.get(f"{API}/documents/{open_doc}/mention-candidates",
                           params={"q": "x" * 101}), 400, field="q")


def test_following(world: dict[str, Any]) -> None:
    alice, bob = world["alice"], world["bob"]
    doc = upload_id(alice, world["open"])
    url = f"{API}/documents/{doc}/follow"
    assert expect(alice.get(url), 200) == {"following": True}  # the author follows
    assert expect(bob.get(url), 200) == {"following": False}
    comment(bob, doc, "Ik doe mee")  # commenters follow
    assert expect(bob.get(url), 200) == {"following": True}
    assert expect(bob.delete(url), 200) == {"following": False}
    assert expect(bob.put(url), 200) == {"following": True}
    expect_error(world["dave"].put(url), 404)


def test_purging_a_document_takes_its_discussion_along(world: dict[str, Any]) -> None:
    alice, bob = world["alice"], world["bob"]
    doc = upload_id(alice, world["open"])
    root = comment(alice, doc, f"Voor @[Bob](user:{uid_of(bob)})")
    comment(bob, doc, "Gelezen", parent_id=root["id"])
    expect(alice.delete(f"{API}/documents/{doc}"), 204)
    expect(alice.delete(f"{API}/documents/{doc}/purge"), 204)
    expect_error(alice.get(f"{API}/comments/{root['id']}"), 404)
    notes = expect(bob.get(f"{API}/notifications", params={"limit": 500}), 200)["items"]
    assert all(not n["document"] or n["document"]["id"] != doc for n in notes)
    items = expect(alice.get(f"{API}/activity", params={"limit": 500}), 200)["items"]
    assert all(not i["document"] or i["document"]["id"] != doc for i in items)


# -- negative cases ------------------------------------------------------------------------

def test_not_signed_in_is_401(world: dict[str, Any]) -> None:
    alice = world["alice"]
    doc = upload_id(alice, world["open"])
    cid = comment(alice, doc, "hallo")["id"]
    anonymous = world["server"].client()
    try:
        for method, path, body in [
            ("GET", f"/documents/{doc}/comments", None),
            ("POST", f"/documents/{doc}/comments", {"body": "x"}),
            ("GET", f"/comments/{cid}", None),
            ("PATCH", f"/comments/{cid}", {"body": "x"}),
            ("DELETE", f"/comments/{cid}", None),
            ("GET", f"/documents/{doc}/mention-candidates", None),
            ("GET", f"/documents/{doc}/follow", None),
            ("PUT", f"/documents/{doc}/follow", None),
        ]:
            expect_error(anonymous.request(method, API + path, json=body), 401, "not_signed_in")
    finally:
        anonymous.close()
    assert listing(alice, doc)["comments"][0]["body"] == "hallo"


def test_unknown_foreign_and_closed_are_404_alike(world: dict[str, Any]) -> None:
    alice, bob, dave = world["alice"], world["bob"], world["dave"]
    open_doc = upload_id(alice, world["open"])
    closed_doc = upload_id(alice, world["closed"])
    open_comment = comment(alice, open_doc, "open")["id"]
    closed_comment = comment(alice, closed_doc, "dicht")["id"]
    absent = expect_error(bob.get(f"{API}/comments/{missing_id()}"), 404)
    for client, cid in [(bob, closed_comment), (dave, open_comment), (dave, closed_comment)]:
        assert expect_error(client.get(f"{API}/comments/{cid}"), 404) == absent
        assert expect_error(client.patch(f"{API}/comments/{cid}", json={"body": "x"}),
                            404) == absent
        assert expect_error(client.delete(f"{API}/comments/{cid}"), 404) == absent
    absent_doc = expect_error(bob.get(f"{API}/documents/{missing_id()}/comments"), 404)
    for client, doc in [(bob, closed_doc), (dave, open_doc)]:
        assert expect_error(client.get(f"{API}/documents/{doc}/comments"), 404) == absent_doc
        assert expect_error(client.post(f"{API}/documents/{doc}/comments",
                                        json={"body": "x"}), 404) == absent_doc
    # A parent from another document is no parent here.
    expect_error(alice.post(f"{API}/documents/{open_doc}/comments",
                            json={"body": "x", "parent_id": closed_comment}), 404,
                 field="parent_id")


def test_bad_input_is_400(world: dict[str, Any]) -> None:
    alice = world["alice"]
    doc = upload_id(alice, world["open"])
    url = f"{API}/documents/{doc}/comments"
    expect_error(alice.post(url, json={}), 400, field="body")
    expect_error(alice.post(url, json={"body": "   \n"}), 400, field="body")
    expect_error(alice.post(url, json={"body": "x", "colour": "red"}), 400, field="colour")
    expect_error(alice.post(url, json={"body": "nul\x00byte"}), 400, field="body")
    expect_error(alice.post(url, json={"body": 12}), 400, field="body")
    expect_error(alice.post(url, json={"body": "x", "parent_id": "../x"}), 400,
                 field="parent_id")
    expect_error(alice.post(url, content=b"{nope", headers={"content-type": "application/json"}),
                 400, "malformed_json")
    too_long = expect_error(alice.post(url, json={"body": "x" * 10_001}), 400,
                            "comment_too_long", field="body")
    assert "10000" in too_long["message"]
    comment(alice, doc, "y" * 10_000)  # the limit itself is fine
    cid = comment(alice, doc, "kort")["id"]
    expect_error(alice.patch(f"{API}/comments/{cid}", json={}), 400)
    expect_error(alice.patch(f"{API}/comments/{cid}", json={"body": "x" * 10_001}), 400,
                 "comment_too_long", field="body")
    expect_error(alice.patch(f"{API}/comments/{cid}", json={"resolved": "ja"}), 400,
                 field="resolved")
    # Anchors belong to notes and to a thread's first comment.
    anchor = {"start": "AQID", "end": "BAUG", "quote": "tekst"}
    expect_error(alice.post(url, json={"body": "x", "anchor": anchor}), 422,
                 "anchor_not_supported", field="anchor")
    expect_error(alice.post(url, json={"body": "x", "parent_id": cid, "anchor": anchor}), 400,
                 field="anchor")
    expect_error(alice.post(url, json={"body": "x", "anchor": {"start": "<x>", "end": "A"}}),
                 400, field="anchor.start")
    expect_error(alice.patch(f"{API}/comments/{cid}", json={"detached": True}), 422,
                 "no_anchor")


def test_editing_someone_elses_comment_is_403(world: dict[str, Any]) -> None:
    alice, bob = world["alice"], world["bob"]
    doc = upload_id(alice, world["open"])
    cid = comment(bob, doc, "van Bob")["id"]
    expect_error(alice.patch(f"{API}/comments/{cid}", json={"body": "van Alice"}), 403)
    cid2 = comment(alice, doc, "van Alice")["id"]
    expect_error(bob.patch(f"{API}/comments/{cid2}", json={"body": "van Bob"}), 403)
    expect_error(bob.delete(f"{API}/comments/{cid2}"), 403)  # a member is no moderator
    assert expect(bob.get(f"{API}/comments/{cid2}"), 200)["body"] == "van Alice"


def test_rate_limit_is_429_with_retry_after(tmp_path: Path) -> None:
    with running_in_process(tmp_path / "data", comments_per_minute=3) as site, \
            signed_up(site, ("Alice", "Bob")) as people:
        alice, bob = people["alice"], people["bob"]
        group = make_group(alice, unique("Snel"))
        add_member(alice, group["id"], bob)
        doc = upload_id(alice, group["root_folder_id"])
        first = comment(alice, doc, "1")
        comment(alice, doc, "2")
        expect(alice.delete(f"{API}/comments/{first['id']}"), 204)  # still counts
        comment(alice, doc, "3")
        response = alice.post(f"{API}/documents/{doc}/comments", json={"body": "4"})
        expect_error(response, 429, "rate_limited")
        assert 1 <= int(response.headers["retry-after"]) <= 60
        comment(bob, doc, "Bob is someone else")  # the limit is per person
        assert listing(alice, doc)["total"] == 3


# -- in-process: anchors on notes, query counts ---------------------------------------------

def test_anchor_shape() -> None:
    Anchor(start="AQID", end="BAUG_-==", quote="")
    for bad in [{"start": "", "end": "A"}, {"start": "A" * 2049, "end": "A"},
                {"start": "A", "end": "A", "quote": "q" * 1001},
                {"start": "A", "end": "A", "extra": 1}, {"start": "A b", "end": "A"}]:
        with pytest.raises(ValidationError):
            Anchor.model_validate(bad)
    with pytest.raises(ValidationError):
        CommentCreate.model_validate({"body": "x", "anchor": "AQID"})


def test_anchored_comment_on_a_note(tmp_path: Path) -> None:
    """Notes arrive with co-editing; a note row is enough to show anchors are stored as given
    and that the listing stays a fixed number of queries."""
    from app.access import Access

    db = Database(f"sqlite:///{tmp_path / 'n.sqlite3'}", keys_in(tmp_path))
    db.migrate()
    settings = Settings(data_dir=tmp_path, comments_per_minute=0)
    try:
        with db.write() as session:
            users = [User(email=f"u{i}@example.nl", name=f"U{i}", password_hash="x")
                     for i in range(2)]
            session.add_all(users)
            session.flush()
            group = Group(name="G", access="closed")
            session.add(group)
            session.flush()
            folder = Folder(group_id=group.id, name="G")
            session.add(folder)
            session.flush()
            group.root_folder_id = folder.id
            session.add_all([Membership(group_id=group.id, user_id=u.id, role=r)
                             for u, r in zip(users, ["owner", "member"], strict=True)])
            note = Document(group_id=group.id, folder_id=folder.id, kind="note", title="N")
            session.add(note)
            session.flush()
            access = Access(session, users[1])
            anchor = {"start": "AQID", "end": "BAUG", "quote": "de zin"}
            posted = discussions.create_comment(session, access, settings, note, body="Hier",
                                                anchor=anchor)
            for i in range(30):
                root = discussions.create_comment(session, access, settings, note,
                                                  body=f"@[U0](user:{users[0].id}) {i}")
                discussions.create_comment(session, access, settings, note, body="re",
                                           parent_id=root.comment.id)
            note_id, comment_id = note.id, posted.comment.id
        with db.write() as session:
            stored = session.get_one(Comment, comment_id)
            assert stored.anchor == anchor and not stored.detached
            access = Access(session, session.scalar(select(User).where(User.name == "U0")))
            discussions.set_detached(access, stored, session.get_one(Document, note_id), True)
        with db.read() as session:
            assert session.get_one(Comment, comment_id).detached
            access = Access(session, session.scalar(select(User).where(User.name == "U0")))
            note = session.get_one(Document, note_id)
            with counted_queries(db.engine) as statements:
                total, threads = discussions.threads(session, access, note, limit=50, offset=0)
            assert total == 31 and sum(len(t.replies) for t in threads) == 30
            # access (membership, folder tree, folder lists), count, threads, replies
            assert len(statements) == 6, statements
    finally:
        db.dispose()
