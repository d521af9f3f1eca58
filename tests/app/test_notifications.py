"""Notifications (API.md "Activity"): mentions (only of people who may read the document; the
author is told about the rest), replies to thread participants, followed activity, settings,
read marks, and e-mail through a local SMTP sink (aiosmtpd): immediate from the background
task, and the daily digest through ``send_digests``.

People: ``alice`` owns, ``bob`` is a member, ``carol`` is listed on the closed folder,
``dave`` is outside."""

from __future__ import annotations

import email
import email.policy
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from app.db import Database
from app.models import utcnow
from app.services.notifications import send_digests
from app.settings import Settings
from tests.app.helpers import (
    API,
    add_member,
    email_of,
    expect,
    expect_error,
    make_folder,
    make_group,
    make_team,
    set_access,
    uid_of,
    upload_id,
)
from tests.app.keyfile import keys_in
from tests.live import Client, free_port, running_server, unique
from tests.plugin import sign_up_all


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("notifications") / "data"
    with running_server(data_dir, {"PLEIN_COMMENTS_PER_MINUTE": "0"}) as server:
        people = sign_up_all(server, ("alice", "bob", "carol", "dave"))
        try:
            yield {**people, "server": server}
        finally:
            for client in people.values():
                client.close()


def team(world: dict[str, Any]) -> dict[str, Any]:
    return make_team(world["alice"], world["bob"], world["carol"], name="Zaak")


def post(client: Client, doc_id: str, body: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = expect(client.post(f"{API}/documents/{doc_id}/comments",
                                             json={"body": body, **extra}), 201)
    return out


def mention(client: Client) -> str:
    assert client.user is not None
    return f"@[{client.user['name']}](user:{uid_of(client)})"


def inbox(client: Client, doc_id: str | None = None, **params: Any) -> list[dict[str, Any]]:
    page = expect(client.get(f"{API}/notifications", params={"limit": 500, **params}), 200)
    items: list[dict[str, Any]] = page["items"]
    if doc_id is not None:
        items = [n for n in items if n["document"] and n["document"]["id"] == doc_id]
    return items


def kinds(client: Client, doc_id: str) -> list[str]:
    return [n["kind"] for n in inbox(client, doc_id)]


def unread(client: Client) -> int:
    count: int = expect(client.get(f"{API}/notifications/unread"), 200)["unread"]
    assert expect(client.get(f"{API}/notifications", params={"limit": 1}), 200)["unread"] == count
    return count


def test_mentions_notify_readers_and_tell_the_author_about_the_rest(
        world: dict[str, Any]) -> None:
    alice, bob, carol, dave = world["alice"], world["bob"], world["carol"], world["dave"]
    t = team(world)
    doc = upload_id(alice, t["closed"])
    out = post(alice, doc, f"{mention(carol)} en {mention(bob)}, kijk even. Ook "
                           f"@{email_of(dave)}, @{email_of(carol)}, @niemand@example.nl en "
                           f"{mention(alice)}; niet `{mention(bob)}`")
    # Bob is a member who may not read the closed folder; Dave is outside; the unknown
    # address reads exactly like them. Carol mentioned twice is told once; Alice not at all.
    assert out["unnotified_mentions"] == [mention(bob), f"@{email_of(dave)}",
                                          "@niemand@example.nl"]
    assert kinds(carol, doc) == ["mention"]
    assert inbox(bob, doc) == [] and inbox(dave) == [] and inbox(alice, doc) == []
    note = inbox(carol, doc)[0]
    assert note["actor"]["id"] == uid_of(alice) and note["comment"]["id"] == out["id"]
    assert note["document"]["id"] == doc and note["group"]["id"] == t["group"]["id"]
    assert note["comment"]["excerpt"].startswith("@Carol en @Bob")
    # The rendered text names members by their current name, and nobody else.
    assert f'data-user-id="{uid_of(carol)}">@Carol</span>' in out["body_html"]
    assert "@niemand@example.nl" in out["body_html"] and "Dave" not in out["body_html"]

    # Editing notifies only people newly mentioned.
    open_doc = upload_id(alice, t["open"])
    first = post(alice, open_doc, f"Hoi {mention(bob)}")
    edited = expect(alice.patch(f"{API}/comments/{first['id']}",
                                json={"body": f"Hoi {mention(bob)} en {mention(carol)}"}), 200)
    assert edited["unnotified_mentions"] == []
    assert kinds(bob, open_doc) == ["mention"] and kinds(carol, open_doc) == ["mention"]
    # Deleting the comment takes its notifications with it.
    expect(alice.delete(f"{API}/comments/{first['id']}"), 204)
    assert inbox(bob, open_doc) == [] and inbox(carol, open_doc) == []


def test_replies_and_followers(world: dict[str, Any]) -> None:
    alice, bob, carol = world["alice"], world["bob"], world["carol"]
    t = team(world)
    doc = upload_id(alice, t["open"])  # Alice follows as the author
    root = post(bob, doc, "Een vraag")  # Bob follows as a commenter
    assert kinds(alice, doc) == ["followed_activity"]
    post(carol, doc, "Antwoord", parent_id=root["id"])
    # Bob started the thread, Alice follows: each is told once, in the strongest way.
    assert kinds(bob, doc) == ["reply"]
    assert kinds(alice, doc) == ["followed_activity", "followed_activity"]
    post(alice, doc, f"Nog een antwoord voor {mention(carol)}", parent_id=root["id"])
    assert kinds(carol, doc) == ["mention"]
    assert kinds(bob, doc) == ["reply", "reply"]

    expect(carol.post(f"{API}/documents/{doc}/versions",
                      files={"file": ("v2.txt", os.urandom(32), "x/y")}), 201)
    newest = inbox(alice, doc)[0]
    assert newest["kind"] == "followed_activity" and newest["verb"] == "document.version"
    assert newest["comment"] is None and newest["actor"]["id"] == uid_of(carol)
    assert kinds(bob, doc)[0] == "followed_activity"
    assert kinds(carol, doc) == ["mention"]  # not told about what she did herself

    expect(bob.delete(f"{API}/documents/{doc}/follow"), 200)
    before = len(inbox(bob, doc))
    expect(carol.post(f"{API}/documents/{doc}/versions",
                      files={"file": ("v3.txt", os.urandom(32), "x/y")}), 201)
    assert len(inbox(bob, doc)) == before


def test_settings_switch_kinds_off(world: dict[str, Any]) -> None:
    alice, bob = world["alice"], world["bob"]
    url = f"{API}/users/me/notification-settings"
    assert expect(bob.get(url), 200) == {"mentions": True, "replies": True, "followed": True,
                                         "email": "daily", "email_available": False}
    changed = expect(bob.put(url, json={"mentions": False, "email": "immediate"}), 200)
    assert changed["mentions"] is False and changed["email"] == "immediate"
    assert changed["replies"] is True  # left out, left alone
    try:
        t = team(world)
        doc = upload_id(alice, t["open"])
        out = post(alice, doc, f"Hoi {mention(bob)}")
        assert out["unnotified_mentions"] == []  # his choice is not the author's business
        assert inbox(bob, doc) == []
    finally:
        expect(bob.put(url, json={"mentions": True, "email": "daily"}), 200)
    expect_error(bob.put(url, json={"email": "hourly"}), 400, field="email")
    expect_error(bob.put(url, json={"sms": True}), 400, field="sms")
    expect_error(bob.put(url, json={"mentions": "misschien"}), 400, field="mentions")


def test_read_marks_and_unread_count(world: dict[str, Any]) -> None:
    alice, carol = world["alice"], world["carol"]
    t = team(world)
    # Being added to the team's group is a notification too (issue 17): read it first.
    expect(carol.post(f"{API}/notifications/read", json={}), 200)
    assert unread(carol) == 0
    doc = upload_id(alice, t["open"])
    ids = [post(alice, doc, f"{mention(carol)} {i}")["id"] for i in range(3)]
    assert unread(carol) == 3
    notes = inbox(carol, doc)
    assert [n["comment"]["id"] for n in notes] == ids[::-1]  # newest first
    out = expect(carol.post(f"{API}/notifications/read", json={"ids": [notes[0]["id"]]}), 200)
    assert out == {"marked": 1, "unread": 2}
    assert [n["id"] for n in inbox(carol, unread="true")] == [n["id"] for n in notes[1:]]
    # Someone else's ids mark nothing.
    assert expect(alice.post(f"{API}/notifications/read", json={"ids": [notes[1]["id"]]}),
                  200)["marked"] == 0
    assert expect(carol.post(f"{API}/notifications/read"), 200) == {"marked": 2, "unread": 0}
    assert all(n["read"] and n["read_at"] for n in inbox(carol, doc))
    expect_error(carol.post(f"{API}/notifications/read", json={"ids": ["../x"]}), 400)
    expect_error(carol.post(f"{API}/notifications/read", json={"ids": ["a"] * 501}), 400)
    anonymous = world["server"].client()
    try:
        expect_error(anonymous.get(f"{API}/notifications"), 401)
        expect_error(anonymous.post(f"{API}/notifications/read", json={}), 401)
        expect_error(anonymous.get(f"{API}/users/me/notification-settings"), 401)
    finally:
        anonymous.close()


def test_mark_all_read_leaves_what_the_list_hides(world: dict[str, Any]) -> None:
    """Issue 9, item 6: "mark all read" counted and changed notifications about a document the
    caller can no longer read; the count told her something happened in the closed folder."""
    alice, carol = world["alice"], world["carol"]
    t = team(world)
    hidden = upload_id(alice, t["closed"])
    post(alice, hidden, f"{mention(carol)} in de dichte map")
    expect(carol.post(f"{API}/notifications/read", json={}), 200)  # a clean start
    post(alice, hidden, f"{mention(carol)} nog een keer")
    known = [n["id"] for n in inbox(carol, hidden) if not n["read"]]
    assert len(known) == 1
    expect(set_access(alice, t["closed"], "closed", []), 200)  # Carol loses the folder
    assert inbox(carol, hidden) == [] and unread(carol) == 0
    assert expect(carol.post(f"{API}/notifications/read"), 200) == {"marked": 0, "unread": 0}
    # Naming the id she saw before changes nothing either.
    assert expect(carol.post(f"{API}/notifications/read", json={"ids": known}),
                  200) == {"marked": 0, "unread": 0}
    # Given the folder back, she finds it still unread: the blanket mark never touched it.
    expect(set_access(alice, t["closed"], "closed", [(carol, "viewer")]), 200)
    assert unread(carol) == 1
    assert [n["read"] for n in inbox(carol, hidden)] == [False, True]


# -- e-mail --------------------------------------------------------------------------------

class Sink:
    """An SMTP server on loopback that keeps what it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"only {len(self.messages)} messages arrived"
            time.sleep(0.05)  # polling for a condition, not a fixed wait


@pytest.fixture
def sink() -> Iterator[Sink]:
    found = Sink()
    found.controller.start()
    try:
        yield found
    finally:
        found.controller.stop()


def text_of(message: EmailMessage) -> str:
    return str(message.get_content())


def test_immediate_mail_is_sent_by_the_background_task(tmp_path: Path, sink: Sink) -> None:
    # Accounts here need no proven address (test_account_mail.py covers that).
    env = {"PLEIN_SMTP_URL": sink.url, "PLEIN_MAIL_INTERVAL_SECONDS": "1",
           "PLEIN_REQUIRE_EMAIL_VERIFICATION": "off",
           "PLEIN_MAIL_FROM": "Plein <plein@example.nl>"}
    with running_server(tmp_path / "data", env) as server:
        people = sign_up_all(server, ("alice", "bob", "carol"))
        try:
            alice, bob, carol = people["alice"], people["bob"], people["carol"]
            settings = expect(bob.put(f"{API}/users/me/notification-settings",
                                      json={"email": "immediate"}), 200)
            assert settings["email_available"] is True
            expect(carol.put(f"{API}/users/me/notification-settings", json={"email": "off"}),
                   200)
            group = make_group(alice, unique("Post"))
            add_member(alice, group["id"], bob)
            add_member(alice, group["id"], carol)
            # Being added is a notification of its own (issue 17), read here in the app.
            expect(bob.post(f"{API}/notifications/read", json={}), 200)
            doc = upload_id(alice, group["root_folder_id"], "Begroting 2027")
            post(alice, doc, f"{mention(bob)} {mention(carol)} CANARY-7f3a in de tekst")
            sink.wait_for(1)
            recipients, message = sink.messages[0]
            assert recipients == [email_of(bob)]
            assert message["From"] == "Plein <plein@example.nl>"
            assert message["Subject"] == "Alice mentioned you in “Begroting 2027”"
            body = text_of(message)
            assert f"/documents/{doc}#comment-" in body and "Hello Bob" in body
            assert "CANARY" not in body  # comment text never leaves by mail
            assert all(r != [email_of(carol)] for r, _ in sink.messages)  # she chose off
            # Read in the app before the next round: not mailed any more.
            post(alice, doc, f"{mention(bob)} tweede")
            expect(bob.post(f"{API}/notifications/read", json={}), 200)
            post(alice, doc, f"{mention(bob)} derde")
            sink.wait_for(2)
            subjects = [m["Subject"] for r, m in sink.messages if r == [email_of(bob)]]
            assert len(subjects) in (2, 3)  # the second may have gone before it was read
        finally:
            for client in people.values():
                client.close()


def test_daily_digest(tmp_path: Path, sink: Sink) -> None:
    data_dir = tmp_path / "data"
    # The server's own mail task runs hourly here, so only this test sends digests.
    env = {"PLEIN_SMTP_URL": sink.url, "PLEIN_MAIL_INTERVAL_SECONDS": "3600",
           "PLEIN_REQUIRE_EMAIL_VERIFICATION": "off"}
    with running_server(data_dir, env) as server:
        people = sign_up_all(server, ("alice", "bob", "carol"))
        try:
            alice, bob, carol = people["alice"], people["bob"], people["carol"]
            group = make_group(alice, unique("Dagelijks"))
            add_member(alice, group["id"], bob)
            add_member(alice, group["id"], carol)
            # Being added is a notification of its own (issue 17), read here in the app.
            expect(bob.post(f"{API}/notifications/read", json={}), 200)
            root = group["root_folder_id"]
            closed = make_folder(alice, root, unique("dicht"), "closed", [(bob, "viewer")])
            open_doc = upload_id(alice, root, "Notulen")
            closed_doc = upload_id(alice, closed["id"], "Vertrouwelijk")
            post(alice, open_doc, f"{mention(bob)} {mention(carol)} een")
            post(alice, closed_doc, f"{mention(bob)} twee")
            post(alice, open_doc, f"{mention(carol)} drie")
            expect(carol.post(f"{API}/notifications/read", json={}), 200)
            # Bob loses access to the closed folder before the digest goes out.
            expect(alice.put(f"{API}/folders/{closed['id']}/access",
                             json={"access": "closed", "members": []}), 200)

            settings = Settings(data_dir=data_dir, smtp_url=sink.url,
                                base_url="https://plein.example.nl")
            db = Database(settings.resolved_database_url, keys_in(data_dir))
            try:
                now = utcnow()
                assert send_digests(db, settings, now) == 1
                sink.wait_for(1)
                recipients, message = sink.messages[0]
                assert recipients == [email_of(bob)]  # Carol read hers in the app
                assert message["Subject"] == "Alice mentioned you in “Notulen”"
                body = text_of(message)
                assert "Vertrouwelijk" not in body and "twee" not in body
                assert f"https://plein.example.nl/documents/{open_doc}#comment-" in body
                # Once a day: nothing more now, even with something new.
                post(alice, open_doc, f"{mention(bob)} vier")
                post(alice, open_doc, f"{mention(bob)} vijf")
                assert send_digests(db, settings, now + timedelta(hours=1)) == 0
                assert send_digests(db, settings, now + timedelta(hours=25)) == 1
                sink.wait_for(2)
                recipients, message = sink.messages[1]
                assert recipients == [email_of(bob)]
                assert message["Subject"] == "Plein: your daily overview (2 notifications)"
                assert text_of(message).count("Alice mentioned you in “Notulen”") == 2
                assert send_digests(db, settings, now + timedelta(hours=50)) == 0
            finally:
                db.dispose()
        finally:
            for client in people.values():
                client.close()


def test_unreachable_mail_server_gives_the_notifications_back(tmp_path: Path) -> None:
    """A dead mail server loses nothing: the claimed notifications are released again."""
    from sqlalchemy import select

    from app.models import Notification

    data_dir = tmp_path / "data"
    with running_server(data_dir, {"PLEIN_MAIL_INTERVAL_SECONDS": "3600",
                                   "PLEIN_REQUIRE_EMAIL_VERIFICATION": "off",
                                   "PLEIN_SMTP_URL": f"smtp://127.0.0.1:{free_port()}"}
                        ) as server:
        people = sign_up_all(server, ("alice", "bob"))
        try:
            alice, bob = people["alice"], people["bob"]
            group = make_group(alice, unique("Stil"))
            add_member(alice, group["id"], bob)
            doc = upload_id(alice, group["root_folder_id"])
            post(alice, doc, f"{mention(bob)} hallo")
        finally:
            for client in people.values():
                client.close()
    settings = Settings(data_dir=data_dir, smtp_url=f"smtp://127.0.0.1:{free_port()}")
    db = Database(settings.resolved_database_url, keys_in(data_dir))
    try:
        assert send_digests(db, settings, utcnow()) == 0
        with db.read() as session:
            # Both Bob's (being added, issue 17, and the mention) are given back.
            assert [n.emailed_at for n in session.scalars(select(Notification))] == [None, None]
    finally:
        db.dispose()


def test_group_level_notifications_are_mailed_with_their_links(tmp_path: Path,
                                                               sink: Sink) -> None:
    """Issue 17: being added to a group and, for an owner, a folder trashed reach the digest
    too, with who did it and a link (to the group, to its trash); no document involved."""
    data_dir = tmp_path / "data"
    env = {"PLEIN_SMTP_URL": sink.url, "PLEIN_MAIL_INTERVAL_SECONDS": "3600",
           "PLEIN_REQUIRE_EMAIL_VERIFICATION": "off"}
    with running_server(data_dir, env) as server:
        people = sign_up_all(server, ("alice", "bob"))
        try:
            alice, bob = people["alice"], people["bob"]
            group = make_group(alice, unique("Buurt"))
            add_member(alice, group["id"], bob)
            folder = make_folder(bob, group["root_folder_id"], "Oude stukken")
            expect(bob.delete(f"{API}/folders/{folder['id']}"), 204)
        finally:
            for client in people.values():
                client.close()
    settings = Settings(data_dir=data_dir, smtp_url=sink.url, base_url="https://plein.example.nl")
    db = Database(settings.resolved_database_url, keys_in(data_dir))
    try:
        assert send_digests(db, settings, utcnow()) == 2
        sink.wait_for(2)
        by_to = {tuple(r): text_of(m) for r, m in sink.messages[-2:]}
        to_bob, to_alice = by_to[(email_of(bob),)], by_to[(email_of(alice),)]
        assert f"Alice added you to the group “{group['name']}”" in to_bob
        assert f"https://plein.example.nl/groups/{group['id']}\r\n" in to_bob
        assert f"Bob moved the folder “Oude stukken” of “{group['name']}” to the trash" \
            in to_alice
        assert f"https://plein.example.nl/groups/{group['id']}/trash" in to_alice
    finally:
        db.dispose()
