"""The discussion panel, notifications and the activity dashboard as pages, without
JavaScript: post, reply, edit, resolve and delete with forms, escaping of everything people
typed, 404 for outsiders, 403 without the CSRF token, 400/429 re-rendered with the message,
the notification page and header badge, and the dashboard's activity with unread markers.
The live event stream needs a real server: test_discussion_stream.py.

People: alice owns the group, bob is a member, erin is outside."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from app.db_hooks import SessionHooks
from app.models import Base, Comment
from app.models.sealed import attach_keys
from tests.app.helpers import API, add_member, expect, make_group, uid_of
from tests.app.keyfile import keys_in
from tests.live import Client, unique
from tests.plugin import Site

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF_RE.search(page.text)
    assert found and found.group(1)
    return found.group(1)


def submit(person: Client, page: str, action: str, data: dict[str, Any] | None = None
           ) -> httpx.Response:
    """What a browser does: load the page, post its form with the page's token."""
    shown = person.http.get(page)
    assert shown.status_code == 200, shown.text[:300]
    return person.http.post(action, data={**(data or {}), "csrf_token": csrf_of(shown)})


def comment_ids(page: httpx.Response) -> list[str]:
    return re.findall(r'<article class="comment[^"]*" id="comment-([^"]+)"', page.text)


@pytest.fixture(scope="module")
def place(cast: Callable[[str], Client]) -> dict[str, Any]:
    alice, bob = cast("Alice"), cast("Bob")
    group = make_group(alice, unique("Overleg"))
    add_member(alice, group["id"], bob)
    note = expect(alice.post(f"{API}/folders/{group['root_folder_id']}/notes",
                             json={"title": "Notitie", "text": "Tekst"}), 201)
    files = {"file": ("brief.txt", b"Beste lezer,\n", "text/plain")}
    file = expect(alice.post(f"{API}/folders/{group['root_folder_id']}/files", files=files), 201)
    return {"group": group, "note": note["id"], "file": file["id"]}


@pytest.mark.parametrize("kind", ["note", "file"])
def test_post_reply_edit_resolve_delete_without_javascript(
        cast: Callable[[str], Client], place: dict[str, Any], kind: str) -> None:
    alice, bob = cast("Alice"), cast("Bob")
    doc = place[kind]
    page = f"/documents/{doc}"
    shown = bob.http.get(page)
    assert 'data-discussion' in shown.text and 'action="/documents/' in shown.text
    assert '<script src="/static/discussions.js" defer></script>' in shown.text

    posted = submit(bob, page, f"/documents/{doc}/comments", {"body": f"Vraag over **{kind}**"})
    assert posted.status_code == 303
    location = posted.headers["location"]
    assert location.startswith(page + "#comment-")
    root = location.split("#comment-")[1]
    shown = alice.http.get(page)
    assert f"<strong>{kind}</strong>" in shown.text  # the sanitized Markdown, inserted as is
    assert root in comment_ids(shown)

    replied = submit(alice, page, f"/documents/{doc}/comments",
                     {"body": "Antwoord", "parent_id": root})
    assert replied.status_code == 303
    reply = replied.headers["location"].split("#comment-")[1]
    listed = expect(alice.get(f"{API}/documents/{doc}/comments"), 200)["comments"]
    thread = next(c for c in listed if c["id"] == root)
    assert [r["id"] for r in thread["replies"]] == [reply]

    # Bob edits his own comment; the page marks it edited. Alice cannot edit it.
    edited = submit(bob, page, f"/comments/{root}/edit", {"body": "Vraag, aangepast"})
    assert edited.status_code == 303
    shown = bob.http.get(page)
    assert "Vraag, aangepast" in shown.text and "badge-edited" in shown.text
    assert f'action="/comments/{root}/edit"' not in alice.http.get(page).text
    refused = submit(alice, page, f"/comments/{root}/edit", {"body": "Niet van mij"})
    assert refused.status_code == 403

    # Resolve and reopen.
    assert submit(bob, page, f"/comments/{root}/resolve", {"resolved": "1"}).status_code == 303
    assert next(c for c in expect(bob.get(f"{API}/documents/{doc}/comments"), 200)["comments"]
                if c["id"] == root)["resolved"] is True
    assert "thread-resolved" in bob.http.get(page).text
    assert submit(bob, page, f"/comments/{root}/resolve", {"resolved": "0"}).status_code == 303
    assert "thread-resolved" not in bob.http.get(page).text

    # Bob deletes his thread's first comment: a placeholder stays while the reply lives.
    assert submit(bob, page, f"/comments/{root}/delete").status_code == 303
    shown = alice.http.get(page)
    assert root in comment_ids(shown) and "Vraag, aangepast" not in shown.text
    assert "comment-deleted" in shown.text
    # The owner moderates: deletes the reply; the thread disappears.
    assert submit(alice, page, f"/comments/{reply}/delete").status_code == 303
    shown = alice.http.get(page)
    assert root not in comment_ids(shown) and reply not in comment_ids(shown)


def test_bob_cannot_delete_alices_comment_but_alice_may_delete_bobs(
        cast: Callable[[str], Client], place: dict[str, Any]) -> None:
    alice, bob = cast("Alice"), cast("Bob")
    doc = place["note"]
    mine = expect(alice.post(f"{API}/documents/{doc}/comments", json={"body": "Van Alice"}), 201)
    page = f"/documents/{doc}"
    assert f'action="/comments/{mine["id"]}/delete"' not in bob.http.get(page).text
    assert submit(bob, page, f"/comments/{mine['id']}/delete").status_code == 403
    theirs = expect(bob.post(f"{API}/documents/{doc}/comments", json={"body": "Van Bob"}), 201)
    assert f'action="/comments/{theirs["id"]}/delete"' in alice.http.get(page).text
    assert submit(alice, page, f"/comments/{theirs['id']}/delete").status_code == 303


def test_names_and_bodies_are_escaped(cast: Callable[[str], Client], site: Site,
                                      place: dict[str, Any]) -> None:
    alice = cast("Alice")
    mallory = site.client()
    mallory.sign_up('<img src=x onerror=alert(1)>"Mal',
                    email=f"mal-{uuid.uuid4().hex[:8]}@example.nl")
    add_member(alice, place["group"]["id"], mallory)
    doc = place["file"]
    body = '<script>alert(1)</script> [x](javascript:alert(1)) <b onclick="x()">b</b>'
    expect(mallory.post(f"{API}/documents/{doc}/comments", json={"body": body}), 201)
    shown = alice.http.get(f"/documents/{doc}")
    assert "<script>alert" not in shown.text
    assert 'href="javascript' not in shown.text.lower()
    assert "<b onclick" not in shown.text
    assert "<img src=x" not in shown.text
    assert "&lt;img src=x onerror=alert(1)&gt;&#34;Mal" in shown.text
    mallory.close()


def test_outsiders_get_404_and_forms_need_the_token(
        cast: Callable[[str], Client], place: dict[str, Any]) -> None:
    alice, erin = cast("Alice"), cast("Erin")
    doc = place["note"]
    comment = expect(alice.post(f"{API}/documents/{doc}/comments", json={"body": "Intern"}), 201)
    token = csrf_of(erin.http.get("/"))
    for action, data in ((f"/documents/{doc}/comments", {"body": "Hallo"}),
                         (f"/comments/{comment['id']}/edit", {"body": "x"}),
                         (f"/comments/{comment['id']}/resolve", {"resolved": "1"}),
                         (f"/comments/{comment['id']}/delete", {})):
        assert erin.http.post(action, data={**data, "csrf_token": token}).status_code == 404
    assert erin.http.get(f"/documents/{doc}/discussion").status_code == 404
    assert erin.http.get(f"/documents/{doc}/events").status_code == 404
    # Without the token: 403 and nothing stored.
    before = expect(alice.get(f"{API}/documents/{doc}/comments"), 200)["total"]
    assert alice.http.post(f"/documents/{doc}/comments", data={"body": "x"}).status_code == 403
    assert alice.http.post(f"/comments/{comment['id']}/delete", data={"x": "1"}).status_code == 403
    assert alice.http.post(f"/documents/{doc}/comments",
                           data={"body": "x", "csrf_token": "0" * 64}).status_code == 403
    assert expect(alice.get(f"{API}/documents/{doc}/comments"), 200)["total"] == before


def test_an_empty_or_too_fast_comment_re_renders_with_the_message(
        cast: Callable[[str], Client], site: Site, place: dict[str, Any]) -> None:
    alice = cast("Alice")
    doc = place["note"]
    empty = submit(alice, f"/documents/{doc}", f"/documents/{doc}/comments", {"body": "   "})
    assert empty.status_code == 400
    assert 'id="comment-error"' in empty.text and 'aria-invalid="true"' in empty.text
    # A reply's error opens that reply box, and keeps what was typed.
    root = expect(alice.post(f"{API}/documents/{doc}/comments", json={"body": "Draad"}), 201)
    too_long = submit(alice, f"/documents/{doc}", f"/documents/{doc}/comments",
                      {"body": "x" * 10_001, "parent_id": root["id"]})
    assert too_long.status_code == 400
    assert f'id="reply-error-{root["id"]}"' in too_long.text

    hasty = site.client()
    hasty.sign_up("Haastig")
    add_member(alice, place["group"]["id"], hasty)
    for n in range(20):
        expect(hasty.post(f"{API}/documents/{doc}/comments", json={"body": f"#{n}"}), 201)
    slowed = submit(hasty, f"/documents/{doc}", f"/documents/{doc}/comments",
                    {"body": "Nog een"})
    assert slowed.status_code == 429
    assert "Nog een" in slowed.text and 'id="comment-error"' in slowed.text
    hasty.close()


def test_unnotified_mentions_are_reported(cast: Callable[[str], Client],
                                          place: dict[str, Any]) -> None:
    alice, bob, erin = cast("Alice"), cast("Bob"), cast("Erin")
    doc = place["note"]
    body = f"Zie @[Bob](user:{uid_of(bob)}) en @[Erin](user:{uid_of(erin)})"
    posted = submit(alice, f"/documents/{doc}", f"/documents/{doc}/comments", {"body": body})
    assert posted.status_code == 303 and "unnotified=" in posted.headers["location"]
    shown = alice.http.get(posted.headers["location"])
    notice = shown.text.split("data-unnotified", 1)[1].split("</div>", 1)[0]
    assert "Erin" in html.unescape(notice) and "Bob" not in notice


def test_the_publish_hook_fires_after_commit_only(tmp_path: Path) -> None:
    engine = create_engine("sqlite://")
    attach_keys(engine, keys_in(tmp_path))  # comment bodies are sealed columns
    Base.metadata.create_all(engine)
    doc_id = uuid.uuid4().hex
    heard: list[str] = []
    sessions = sessionmaker(engine)
    hub = SessionHooks()
    hub.install_on(sessions)
    unsubscribe = hub.discussions.subscribe_key(doc_id, heard.append)
    try:
        with sessions() as session:
            session.add(Comment(document_id=doc_id, group_id="g", author_id=None, body="x"))
            session.flush()
            assert heard == []
            session.rollback()
        assert heard == []
        with sessions() as session:
            session.add(Comment(document_id=doc_id, group_id="g", author_id=None, body="y"))
            session.flush()
            assert heard == []
            session.commit()
        assert heard == [doc_id]
    finally:
        unsubscribe()
        engine.dispose()
    assert hub.discussions.listeners(doc_id) == 0


def badge(person: Client, path: str = "/") -> int:
    found = re.search(r'class="nav-notifications" data-unread="(\d+)"', person.http.get(path).text)
    assert found, "no notification link in the header"
    return int(found.group(1))


def test_notifications_page_badge_and_open(site: Site,
                                           cast: Callable[[str], Client],
                                           place: dict[str, Any]) -> None:
    alice = cast("Alice")
    frank = site.client()
    frank.sign_up("Frank")
    add_member(alice, place["group"]["id"], frank)
    doc = place["note"]
    assert badge(frank) == 1  # who added him to the group (issue 17), read here in the app
    expect(frank.post(f"{API}/notifications/read", json={}), 200)
    assert badge(frank) == 0
    posted = expect(alice.post(f"{API}/documents/{doc}/comments",
                               json={"body": f"Graag @[Frank](user:{uid_of(frank)}) <i>"}), 201)
    assert badge(frank) == 1
    assert badge(frank, f"/documents/{doc}") == 1  # on every page
    shown = frank.http.get("/notifications")
    assert shown.status_code == 200
    assert "notification unread" in shown.text and "Notitie" in shown.text
    assert "&lt;i&gt;" in shown.text  # the excerpt is text
    found = re.search(r'action="(/notifications/[^"/]+/open)"', shown.text)
    assert found
    opened = frank.http.post(found.group(1), data={"csrf_token": csrf_of(shown)})
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/documents/{doc}#comment-{posted['id']}"
    assert badge(frank) == 0
    assert "notification unread" not in frank.http.get("/notifications").text

    # Mark all read; and someone else's notification cannot be opened.
    expect(alice.post(f"{API}/documents/{doc}/comments",
                      json={"body": f"Nog eens @[Frank](user:{uid_of(frank)})"}), 201)
    assert badge(frank) == 1
    assert submit(frank, "/notifications", "/notifications/read", {"x": "1"}).status_code == 303
    assert badge(frank) == 0
    bob = cast("Bob")
    token = csrf_of(bob.http.get("/"))
    assert bob.http.post(found.group(1), data={"csrf_token": token}).status_code == 404
    frank.close()


def test_notification_settings_on_the_profile_page(site: Site) -> None:
    gina = site.client()
    gina.sign_up("Gina")
    shown = gina.http.get("/profile")
    assert 'action="/profile/notifications"' in shown.text
    saved = submit(gina, "/profile", "/profile/notifications",
                   {"mentions": "1", "email": "immediate"})
    assert saved.status_code == 303
    settings = expect(gina.get(f"{API}/users/me/notification-settings"), 200)
    assert settings["mentions"] is True and settings["replies"] is False
    assert settings["followed"] is False and settings["email"] == "immediate"
    bad = submit(gina, "/profile", "/profile/notifications", {"email": "hourly"})
    assert bad.status_code == 400 and 'id="notifications-error"' in bad.text
    gina.close()


def test_dashboard_and_group_activity_with_unread_markers(
        site: Site, cast: Callable[[str], Client]) -> None:
    alice = cast("Alice")
    hank = site.client()
    hank.sign_up("Hank")
    group = make_group(alice, unique("Activiteit"))
    add_member(alice, group["id"], hank)
    closed = expect(alice.post(f"{API}/folders/{group['root_folder_id']}/folders",
                               json={"name": "Geheim", "access": "closed"}), 201)
    expect(alice.post(f"{API}/folders/{closed['id']}/notes", json={"title": "Verborgen"}), 201)
    note = expect(alice.post(f"{API}/folders/{group['root_folder_id']}/notes",
                             json={"title": "<b>Zichtbaar</b>"}), 201)
    dash = hank.http.get("/")
    assert "&lt;b&gt;Zichtbaar&lt;/b&gt;" in dash.text and "<b>Zichtbaar" not in dash.text
    assert "Verborgen" not in dash.text  # through the access-filtered feed
    assert "activity-item unread" in dash.text
    assert submit(hank, "/", "/activity/seen", {"next": "/#activity"}).status_code == 303
    dash = hank.http.get("/")
    assert "activity-item unread" not in dash.text and "Zichtbaar" in dash.text
    # Something new after the mark is marked again.
    expect(alice.post(f"{API}/documents/{note['id']}/comments", json={"body": "Nieuw"}), 201)
    assert "activity-item unread" in hank.http.get("/").text

    page = hank.http.get(f"/groups/{group['id']}/activity")
    assert page.status_code == 200 and "Zichtbaar" in page.text and "Verborgen" not in page.text
    assert f'href="/documents/{note["id"]}#comment-' in page.text
    erin = cast("Erin")
    assert erin.http.get(f"/groups/{group['id']}/activity").status_code in (403, 404)
    hank.close()
