"""Live co-editing end to end: stock Yjs + y-websocket clients (Node) against the real server.

Who may connect (tokens, cookies with and without our Origin, document-bound tokens), what a
viewer may do, access changes on open sockets, awareness, initial text, snapshots and restore,
and hostile frames from a raw socket.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pycrdt import Doc, XmlElement, XmlFragment, XmlText
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from app.db import Database
from app.models import User
from app.services import accounts
from sync.protocol import SyncUpdate, encode
from tests.app.helpers import (
    API,
    add_member,
    expect,
    make_folder,
    make_group,
    set_access,
    uid_of,
)
from tests.js_client import JsClient, ws_base
from tests.live import Client, LiveServer, unique
from tests.waiting import wait_until

# No skip: the test command installs Node packages, so a missing client is a failure.
pytestmark = pytest.mark.usefixtures("node_client_ready")

MARKDOWN = """# Meeting notes

Some **bold** words and a [link](https://example.org/x).

- first item
- second item
"""
MARKDOWN_TEXT = "Meeting notes\nSome bold words and a link.\nfirst item\nsecond item"


@dataclass
class Note:
    id: str
    folder_id: str
    group_id: str


def make_note(owner: Client, *, text: str | None = None, text_format: str = "markdown",
              members: list[tuple[Client, str]] | None = None) -> Note:
    """A note in a closed folder of a new closed group; ``members`` join the group and get
    the given folder role."""
    group = make_group(owner, unique("live"))
    for person, _role in members or []:
        add_member(owner, group["id"], person)
    folder = make_folder(owner, group["root_folder_id"], unique("f"), access="closed",
                         members=members or [])
    body: dict[str, Any] = {"title": unique("note"), "format": text_format}
    if text is not None:
        body["text"] = text
    doc = expect(owner.post(f"{API}/folders/{folder['id']}/notes", json=body), 201)
    return Note(doc["id"], folder["id"], group["id"])


def token_of(person: Client) -> str:
    """A fresh personal access token of ``person``."""
    created = expect(person.post(f"{API}/tokens", json={"name": unique("t")}), 201)
    return str(created["token"])


def server_text(reader: Client, doc_id: str) -> str:
    response = reader.get(f"{API}/documents/{doc_id}/content", params={"format": "text"})
    assert response.status_code == 200, response.text
    return response.text


def ws_url(server: LiveServer, doc_id: str, token: str | None = None) -> str:
    return f"{ws_base(server)}/{doc_id}" + (f"?token={token}" if token else "")


def handshake_status(server: LiveServer, doc_id: str, token: str | None = None,
                     headers: dict[str, str] | None = None) -> int:
    """The HTTP status of a WebSocket handshake (101 if accepted, then closed again)."""
    try:
        with connect(ws_url(server, doc_id, token), additional_headers=headers,
                     open_timeout=5) as ws:
            ws.close()
            return 101
    except InvalidStatus as exc:
        return int(exc.response.status_code)


@pytest.fixture
def clients(server: LiveServer) -> Iterator[Callable[..., JsClient]]:
    """``clients(doc_id, token, name=...)`` opens a Node client, closed at the end."""
    opened: list[JsClient] = []

    def open_client(doc_id: str, token: str | None = None, *, origin: str | None = None,
                    name: str = "client") -> JsClient:
        client = JsClient(ws_base(server), doc_id, token, origin, name)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


# -- editing together ----------------------------------------------------------------------


def test_two_editors_converge_after_concurrent_edits(
        cast: Callable[[str], Client], clients: Callable[..., JsClient]) -> None:
    alice, bob = cast("Alice"), cast("Bob")
    note = make_note(alice, text="start", members=[(bob, "editor")])
    a = clients(note.id, token_of(alice), name="alice")
    b = clients(note.id, token_of(bob), name="bob")
    a.wait_synced()
    b.wait_synced()
    b.wait_text(equals="start")
    for i in range(40):
        # Interleaved without waiting: new lines from both, and typing into the same
        # paragraph at the same spot.
        a.insert(f"a{i}")
        b.insert(f"b{i}")
        a.type(0, 0, "A")
        b.type(0, 0, "B")
    a.delete(0, 0, 3)
    b.type(0, 1, "xyz")
    a.wait_text(contains="xyz", timeout=30)  # b's last edit
    b.wait_text(contains="a39", timeout=30)
    # a's delete may still be on its way: equal in the end (the line length checks it).
    wait_until(lambda: a.text() == b.text() == server_text(alice, note.id), 30)
    lines = server_text(alice, note.id).splitlines()
    assert sorted(lines[1:]) == sorted([f"a{i}" for i in range(40)] + [f"b{i}" for i in range(40)])
    assert lines[0].endswith("start") and len(lines[0]) == 80 - 3 + 3 + len("start")
    assert a.state_vector() == b.state_vector()


def test_viewer_receives_updates_but_its_writes_reach_nobody(
        cast: Callable[[str], Client], clients: Callable[..., JsClient]) -> None:
    alice, carol = cast("Alice"), cast("Carol")
    note = make_note(alice, text="shared", members=[(carol, "viewer")])
    a = clients(note.id, token_of(alice), name="alice")
    c = clients(note.id, token_of(carol), name="carol")
    a.wait_synced()
    c.wait_synced()
    a.insert("from alice")
    c.wait_text(contains="from alice")
    mark = c.mark()
    c.insert("from carol")
    denied = c.wait_for(lambda e: e["event"] == "denied", 5, mark)
    assert denied["kind"] == 0 and "read-only" in denied["reason"]
    a.insert("after carol")  # ordering fence: alice's next line arrives after carol's attempt
    c.wait_text(contains="after carol")
    assert "from carol" not in server_text(alice, note.id)
    assert a.text_stays(absent="from carol", seconds=0.5)
    # A fresh editor gets the server's state: carol's line is nowhere.
    fresh = clients(note.id, token_of(alice), name="fresh")
    fresh.wait_synced()
    assert "from carol" not in fresh.text()
    assert "after carol" in fresh.text()


# -- who may connect ----------------------------------------------------------------------------


def test_outsider_and_anonymous_are_refused_before_any_byte(
        server: LiveServer, cast: Callable[[str], Client],
        clients: Callable[..., JsClient]) -> None:
    alice, dave = cast("Alice"), cast("Dave")
    note = make_note(alice, text="secret plans")
    dave_token = token_of(dave)
    assert handshake_status(server, note.id, dave_token) == 403
    assert handshake_status(server, note.id) == 403
    assert handshake_status(server, note.id, "plein_not-a-real-token") == 403
    # Same answer as for a document that does not exist.
    assert handshake_status(server, "no-such-document", dave_token) == 403
    # Control: the owner's token is accepted, so the 403s above are about access.
    assert handshake_status(server, note.id, token_of(alice)) == 101

    outsider = clients(note.id, dave_token, name="dave")
    anonymous = clients(note.id, None, name="anonymous")
    for client in (outsider, anonymous):
        client.wait_for(lambda e: e["event"] == "close", 5)
    control = clients(note.id, token_of(alice), name="alice")
    control.wait_synced()
    for client in (outsider, anonymous):
        assert not client.has(lambda e: e["event"] in ("sync", "remote-update", "awareness"))
        assert client.text() == ""


def test_cookie_needs_our_own_origin(server: LiveServer, cast: Callable[[str], Client]) -> None:
    alice = cast("Alice")
    note = make_note(alice, text="cookie")
    cookie = alice.http.cookies.get("plein_session")
    assert cookie
    headers = {"Cookie": f"plein_session={cookie}"}
    assert handshake_status(server, note.id, headers={**headers,
                                                      "Origin": "https://evil.example"}) == 403
    assert handshake_status(server, note.id, headers=headers) == 403  # no Origin at all
    assert handshake_status(server, note.id, headers={**headers, "Origin": server.url}) == 101
    with connect(ws_url(server, note.id), additional_headers={**headers, "Origin": server.url},
                 open_timeout=5) as ws:
        first = ws.recv(timeout=5)
        assert isinstance(first, bytes) and first[:2] == b"\x00\x00"  # our SyncStep1


def test_token_bound_to_another_document_is_refused(
        server: LiveServer, cast: Callable[[str], Client]) -> None:
    alice = cast("Alice")
    note = make_note(alice, text="one")
    other = make_note(alice, text="two")
    db = Database(f"sqlite:///{server.data_dir / 'plein.sqlite3'}")
    try:
        with db.write() as session:
            user = session.get_one(User, uid_of(alice))
            _, bound_to_other = accounts.create_token(session, user, "bound", other.id)
            _, bound_here = accounts.create_token(session, user, "bound", note.id)
    finally:
        db.dispose()
    assert handshake_status(server, note.id, bound_to_other) == 403
    assert handshake_status(server, other.id, bound_to_other) == 101
    assert handshake_status(server, note.id, bound_here) == 101


# -- access changes on open sockets -----------------------------------------------------------


def test_revoked_access_closes_the_socket_within_a_second(
        server: LiveServer, cast: Callable[[str], Client],
        clients: Callable[..., JsClient]) -> None:
    alice, bob = cast("Alice"), cast("Bob")
    note = make_note(alice, text="team", members=[(bob, "editor")])
    bob_token = token_of(bob)
    a = clients(note.id, token_of(alice), name="alice")
    b = clients(note.id, bob_token, name="bob")
    a.wait_synced()
    b.wait_synced()
    mark = b.mark()
    started = time.monotonic()
    response = set_access(alice, note.folder_id, "closed", [])
    assert response.status_code == 200, response.text
    closed = b.wait_for(lambda e: e["event"] == "close", 5, mark)
    elapsed = time.monotonic() - started
    assert closed["code"] == 4403
    assert elapsed < 1.0, f"socket closed after {elapsed:.2f} s"
    assert handshake_status(server, note.id, bob_token) == 403
    # The editor that keeps access is unaffected.
    a.insert("still here")
    wait_until(lambda: "still here" in server_text(alice, note.id))


def test_removed_group_member_is_closed(
        server: LiveServer, cast: Callable[[str], Client],
        clients: Callable[..., JsClient]) -> None:
    alice, bob = cast("Alice"), cast("Bob")
    note = make_note(alice, text="team", members=[(bob, "editor")])
    bob_token = token_of(bob)
    b = clients(note.id, bob_token, name="bob")
    b.wait_synced()
    mark = b.mark()
    started = time.monotonic()
    expect(alice.delete(f"{API}/groups/{note.group_id}/members/{uid_of(bob)}"), 204)
    b.wait_for(lambda e: e["event"] == "close", 5, mark)
    assert time.monotonic() - started < 1.0
    assert handshake_status(server, note.id, bob_token) == 403


def test_downgrade_to_viewer_drops_the_next_write(
        cast: Callable[[str], Client], clients: Callable[..., JsClient]) -> None:
    alice, bob = cast("Alice"), cast("Bob")
    note = make_note(alice, text="team", members=[(bob, "editor")])
    a = clients(note.id, token_of(alice), name="alice")
    b = clients(note.id, token_of(bob), name="bob")
    a.wait_synced()
    b.wait_synced()
    b.insert("while editor")
    a.wait_text(contains="while editor")
    expect(set_access(alice, note.folder_id, "closed", [(bob, "viewer")]), 200)
    # The change reaches the open socket right after the commit; the first write after it
    # must be refused.  Keep writing until the server says no (at most a second).
    deadline = time.monotonic() + 1.0
    n = 0
    while True:
        mark = b.mark()
        b.insert(f"after downgrade {n}")
        try:
            b.wait_for(lambda e: e["event"] == "denied", 0.1, mark)
            break
        except AssertionError:
            n += 1
            assert time.monotonic() < deadline, "writes still accepted a second after downgrade"
    a.insert("fence")
    b.wait_text(contains="fence")
    assert f"after downgrade {n}" not in server_text(alice, note.id)
    assert not b.has(lambda e: e["event"] == "close")  # downgraded, not disconnected
    a.insert("viewer still receives")
    b.wait_text(contains="viewer still receives")


def test_upgrade_to_editor_reconnects_with_write_access(
        cast: Callable[[str], Client], clients: Callable[..., JsClient]) -> None:
    alice, carol = cast("Alice"), cast("Carol")
    note = make_note(alice, text="team", members=[(carol, "viewer")])
    a = clients(note.id, token_of(alice), name="alice")
    c = clients(note.id, token_of(carol), name="carol")
    a.wait_synced()
    c.wait_synced()
    mark_a, mark_c = a.mark(), c.mark()
    expect(set_access(alice, note.folder_id, "closed", [(carol, "editor")]), 200)
    closed = c.wait_for(lambda e: e["event"] == "close", 2, mark_c)
    assert not 4400 <= closed["code"] < 4500  # the stock client gives up on those for good
    c.wait_synced(start=mark_c)  # it reconnected by itself, now as an editor
    c.insert("carol may write now")
    a.wait_text(contains="carol may write now")
    # The access change touched the whole group: editors who stay editors keep their socket.
    assert not any(e["event"] == "close" for e in a.history[mark_a:])


def test_an_edit_sent_right_after_revocation_never_reaches_the_revoked(
        server: LiveServer, cast: Callable[[str], Client],
        clients: Callable[..., JsClient]) -> None:
    """Issue 9, item 15: access is removed before the request that removes it answers, so an
    edit sent the moment it returned cannot reach the person who lost access."""
    alice, carol = cast("Alice"), cast("Carol")
    note = make_note(alice, text="start", members=[(carol, "viewer")])
    carol_token = token_of(carol)
    with connect(ws_url(server, note.id, token_of(alice)), open_timeout=5) as editor:
        editor.recv(timeout=5)  # the server's step 1: the socket is in the room
        for i in range(20):
            if i:
                expect(set_access(alice, note.folder_id, "closed", [(carol, "viewer")]), 200)
            c = clients(note.id, carol_token, name=f"carol{i}")
            c.wait_synced()
            mark = c.mark()
            secret = f"secret-{i}"
            update = _paragraph_update(secret)
            response = set_access(alice, note.folder_id, "closed", [])
            editor.send(encode(SyncUpdate(update)))  # at once, from an open socket
            assert response.status_code == 200, response.text
            c.wait_for(lambda e: e["event"] == "close", 5, mark)
            wait_until(lambda s=secret: s in server_text(alice, note.id))  # type: ignore[misc]
            assert not any(e["event"] == "remote-update" for e in c.history[mark:]), i
            assert secret not in c.text()
            c.close()


def _paragraph_update(text: str) -> bytes:
    """A CRDT update that adds one paragraph holding ``text`` (as a stock editor would)."""
    doc: Doc[Any] = Doc()
    fragment = doc.get("default", type=XmlFragment)
    paragraph = XmlElement("paragraph")
    fragment.children.append(paragraph)
    paragraph.children.append(XmlText(text))
    return doc.get_update()


# -- presence ---------------------------------------------------------------------------------


def test_awareness_newcomer_sees_peers_and_leavers_vanish(
        cast: Callable[[str], Client], clients: Callable[..., JsClient]) -> None:
    alice, bob, erin = cast("Alice"), cast("Bob"), cast("Erin")
    note = make_note(alice, members=[(bob, "editor"), (erin, "viewer")])
    a = clients(note.id, token_of(alice), name="alice")
    a.wait_synced()
    a.set_name("Alice")
    b = clients(note.id, token_of(bob), name="bob")
    b.wait_synced()
    # Stock clients renew awareness every 15 s; seeing Alice at once is the server's snapshot.
    assert b.wait_peers(lambda names: "Alice" in names, timeout=1.0) < 1.0
    b.set_name("Bob")
    a.wait_peers(lambda names: "Bob" in names, timeout=1.0)
    k = clients(note.id, token_of(erin), name="killed")
    k.wait_synced()
    k.set_name("Ghost")  # the server shows the person's own name, whatever the client says
    a.wait_peers(lambda names: "Erin" in names, timeout=2.0)
    assert "Ghost" not in a.peers()
    # A client that dies without saying goodbye: only the server can tell the others.
    k.proc.kill()
    assert a.wait_peers(lambda names: "Erin" not in names, timeout=2.0) < 2.0
    b.wait_peers(lambda names: "Erin" not in names, timeout=2.0)
    # A graceful close, too.
    b.close()
    assert a.wait_peers(lambda names: names == [], timeout=2.0) < 2.0


# -- content ----------------------------------------------------------------------------------


def test_initial_text_arrives_once_across_reconnects(
        cast: Callable[[str], Client], clients: Callable[..., JsClient]) -> None:
    alice = cast("Alice")
    note = make_note(alice, text=MARKDOWN)
    assert server_text(alice, note.id) == MARKDOWN_TEXT
    markdown = alice.get(f"{API}/documents/{note.id}/content",
                         params={"format": "markdown"}).text
    assert "# Meeting notes" in markdown and "**bold**" in markdown
    assert "[link](<https://example.org/x>)" in markdown and "- first item" in markdown
    assert markdown.count("Meeting notes") == 1
    token = token_of(alice)
    a = clients(note.id, token, name="alice")
    a.wait_synced()
    assert a.text() == MARKDOWN_TEXT
    for _ in range(3):
        mark = a.mark()
        a.call("disconnect")
        a.call("connect")
        a.wait_synced(start=mark)
        fresh = clients(note.id, token, name="fresh")
        fresh.wait_synced()
        assert fresh.text() == MARKDOWN_TEXT
        fresh.close()
    assert a.text() == MARKDOWN_TEXT
    assert server_text(alice, note.id) == MARKDOWN_TEXT


def test_named_snapshot_and_restore_reach_connected_clients(
        cast: Callable[[str], Client], clients: Callable[..., JsClient]) -> None:
    alice, bob = cast("Alice"), cast("Bob")
    note = make_note(alice, text="base", members=[(bob, "editor")])
    a = clients(note.id, token_of(alice), name="alice")
    b = clients(note.id, token_of(bob), name="bob")
    a.wait_synced()
    b.wait_synced()
    a.insert("first edit")
    wait_until(lambda: "first edit" in server_text(alice, note.id))
    v1 = expect(alice.post(f"{API}/documents/{note.id}/versions", json={"label": "v1"}), 201)
    assert v1["number"] == 1 and v1["label"] == "v1"
    b.insert("second edit")
    a.wait_text(contains="second edit")
    wait_until(lambda: "second edit" in server_text(alice, note.id))
    v2 = expect(alice.post(f"{API}/documents/{note.id}/versions", json={"label": "v2"}), 201)
    assert v2["number"] == 2

    restored = expect(alice.post(f"{API}/documents/{note.id}/versions/1/restore"), 201)
    assert restored["number"] == 3 and restored["restored_from"] == 1
    for client in (a, b):
        assert client.wait_text(equals="base\nfirst edit") == "base\nfirst edit"
    assert server_text(alice, note.id) == "base\nfirst edit"
    history = expect(alice.get(f"{API}/documents/{note.id}/versions"), 200)
    assert [(v["number"], v["label"], v["restored_from"]) for v in history] == [
        (3, None, 1), (2, "v2", None), (1, "v1", None)]
    # Editing goes on after the restore, on top of it.
    b.insert("after restore")
    a.wait_text(equals="base\nfirst edit\nafter restore")
    diff = expect(alice.get(f"{API}/documents/{note.id}/versions/1/diff", params={"to": 2}), 200)
    assert "+second edit" in diff["diff"]
    assert any(line.startswith("@@") for line in diff["diff"])


# -- hostile input ------------------------------------------------------------------------------


def _var_uint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


MALFORMED = {
    "random bytes": os.urandom(64),
    "unknown message type": b"\x09\x00\x01",
    "truncated sync update": b"\x00\x02" + _var_uint(50) + b"\x01\x02",
    "huge length claim": b"\x00\x02" + _var_uint(2**40) + b"\x00" * 16,
    "overlong varuint": b"\x00\x02" + b"\xff" * 12,
    "garbage inside a well-framed update": b"\x00\x02" + _var_uint(32) + os.urandom(32),
    "truncated awareness": b"\x01" + _var_uint(10) + b"\x01\x05",
}


def _closed_by_server(ws: ClientConnection, timeout: float = 5.0) -> int | None:
    """Read until the server closes the socket; return its close code."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None
    except TimeoutError:
        return None
    return None


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_frames_close_only_that_socket(
        name: str, server: LiveServer, cast: Callable[[str], Client],
        clients: Callable[..., JsClient]) -> None:
    alice = cast("Alice")
    note = make_note(alice, text="intact")
    token = token_of(alice)
    a = clients(note.id, token, name="alice")
    b = clients(note.id, token, name="bob")
    a.wait_synced()
    b.wait_synced()
    a.insert("before")
    b.wait_text(contains="before")
    wait_until(lambda: "before" in server_text(alice, note.id))
    before = server_text(alice, note.id)
    with connect(ws_url(server, note.id, token), open_timeout=5) as ws:
        ws.send(MALFORMED[name])
        code = _closed_by_server(ws)
    assert code in (1002, 1007, 1009), f"{name}: socket not closed by the server ({code})"
    assert server_text(alice, note.id) == before
    a.insert("after")
    b.wait_text(contains="after")
    assert not a.has(lambda e: e["event"] == "close")
    assert not b.has(lambda e: e["event"] == "close")
