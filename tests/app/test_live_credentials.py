"""A live channel does not outlive the credential that opened it (issue 9, item 2).

Every /sync socket and every discussion stream remembers the session or token it was opened
with. Signing out, a password change (which ends every session and every token), revoking a
token, and deactivating an account close exactly the channels of that credential, before the
request that ended it answers; a periodic re-check closes whatever no event announced.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from app.services.accounts import sha256_hex
from tests.app.helpers import API, expect, make_group, uid_of
from tests.js_client import JsClient, ws_base
from tests.live import Client, LiveServer, running_server, unique

pytestmark = pytest.mark.usefixtures("node_client_ready")

PASSWORD = "correct horse battery staple"


def new_note(owner: Client, text: str = "hello") -> str:
    group = make_group(owner, unique("live"))
    doc = expect(owner.post(f"{API}/folders/{group['root_folder_id']}/notes",
                            json={"title": unique("n"), "text": text}), 201)
    return str(doc["id"])


def token_of(person: Client) -> tuple[str, str]:
    made = expect(person.post(f"{API}/tokens", json={"name": unique("t")}), 201)
    return str(made["id"]), str(made["token"])


@contextmanager
def cookie_socket(server: LiveServer, doc_id: str, person: Client
                  ) -> Iterator[ClientConnection]:
    """A /sync socket opened with ``person``'s session cookie, as our own page opens it."""
    cookie = person.http.cookies.get("plein_session")
    assert cookie
    with connect(f"{ws_base(server)}/{doc_id}", open_timeout=5,
                 additional_headers={"Cookie": f"plein_session={cookie}",
                                     "Origin": server.url}) as ws:
        first = ws.recv(timeout=5)
        assert isinstance(first, bytes) and first[:2] == b"\x00\x00"
        yield ws


def closed_within(ws: ClientConnection, seconds: float) -> int | None:
    """The close code if the server closes the socket within ``seconds``, else None."""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else -1
    except TimeoutError:
        return None
    return None


def still_open(ws: ClientConnection, editor: JsClient, line: str) -> bool:
    """True if ``ws`` still receives what ``editor`` types (so it was not closed)."""
    editor.insert(line)
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline:
            frame = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(frame, bytes) and line.encode() in frame:
                return True
    except (ConnectionClosed, TimeoutError):
        return False
    return False


@pytest.fixture
def clients(server: LiveServer) -> Iterator[Callable[..., JsClient]]:
    opened: list[JsClient] = []

    def open_client(doc_id: str, token: str, name: str = "client") -> JsClient:
        client = JsClient(ws_base(server), doc_id, token, None, name)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


def test_revoking_a_token_closes_its_sockets_only(
        person: Callable[[str], Client], clients: Callable[..., JsClient]) -> None:
    alice = person("Alice")
    note = new_note(alice)
    (doomed_id, doomed), (_kept_id, kept) = token_of(alice), token_of(alice)
    a = clients(note, doomed, "doomed")
    b = clients(note, kept, "kept")
    a.wait_synced()
    b.wait_synced()
    mark = a.mark()
    expect(alice.delete(f"{API}/tokens/{doomed_id}"), 204)
    # Closed before the request answered; the event reaches the Node client right after.
    closed = a.wait_for(lambda e: e["event"] == "close", 1.0, mark)
    assert closed["code"] == 4403
    b.insert("the other token goes on")
    b.wait_text(contains="the other token goes on")
    assert not b.has(lambda e: e["event"] == "close")


@pytest.mark.parametrize("ending", ["sign_out", "sessions_list"])
def test_ending_a_session_closes_the_sockets_of_that_session_only(
        server: LiveServer, person: Callable[[str], Client],
        clients: Callable[..., JsClient], ending: str) -> None:
    """Signing out ends this browser's session; the sessions list ends another one."""
    alice = person("Alice")
    note = new_note(alice)
    second = server.client()
    try:
        assert second.sign_in(str(alice.user and alice.user["email"]), PASSWORD).status_code \
            == 200
        editor = clients(note, token_of(alice)[1], "editor")
        editor.wait_synced()
        with cookie_socket(server, note, alice) as mine, \
                cookie_socket(server, note, second) as theirs:
            if ending == "sign_out":
                expect(alice.delete(f"{API}/session"), 204)
                ended, kept = mine, theirs
            else:
                there = next(s for s in expect(second.get(f"{API}/users/me/sessions"), 200)
                             if s["current"])
                expect(alice.delete(f"{API}/users/me/sessions/{there['id']}"), 204)
                ended, kept = theirs, mine
            assert closed_within(ended, 1.0) == 4403
            # Another session of the same person, and a token socket, are not this session.
            assert still_open(kept, editor, "still reading")
            assert not editor.has(lambda e: e["event"] == "close")
    finally:
        second.close()


def test_password_change_closes_every_session_and_token_socket(
        server: LiveServer, person: Callable[[str], Client],
        clients: Callable[..., JsClient]) -> None:
    alice = person("Alice")
    note = new_note(alice)
    other_browser = server.client()
    try:
        assert other_browser.sign_in(str(alice.user and alice.user["email"]),
                                     PASSWORD).status_code == 200
        token_client = clients(note, token_of(alice)[1], "token")
        token_client.wait_synced()
        mark = token_client.mark()
        with cookie_socket(server, note, alice) as here, \
                cookie_socket(server, note, other_browser) as there:
            expect(alice.post(f"{API}/users/me/password",
                              json={"current_password": PASSWORD,
                                    "new_password": "another long passphrase"}), 204)
            assert closed_within(there, 1.0) == 4403
            # This browser's old session ended too (it got a fresh one for its pages).
            assert closed_within(here, 1.0) == 4403
            # The chosen policy: a password change ends the person's API tokens as well.
            token_client.wait_for(lambda e: e["event"] == "close", 1.0, mark)
            assert expect(alice.get(f"{API}/tokens"), 200) == []
    finally:
        other_browser.close()


def test_a_ticket_socket_closes_with_the_session_that_asked(
        server: LiveServer, person: Callable[[str], Client]) -> None:
    alice = person("Alice")
    note = new_note(alice)
    ticket = expect(alice.post(f"{API}/documents/{note}/sync-ticket"), 201)["ticket"]
    with connect(f"{ws_base(server)}/{note}?ticket={ticket}", open_timeout=5) as ws:
        assert ws.recv(timeout=5)[:2] == b"\x00\x00"
        expect(alice.delete(f"{API}/session"), 204)
        assert closed_within(ws, 1.0) == 4403


def _events(http: httpx.Client, path: str, out: queue.Queue[str]) -> None:
    try:
        with http.stream("GET", path, timeout=60) as response:
            out.put(f"status {response.status_code}")
            for line in response.iter_lines():
                if line.startswith("event: "):
                    out.put(line[7:])
        out.put("end")
    except httpx.HTTPError as exc:
        out.put(f"error {exc}")


def test_a_discussion_stream_ends_when_its_session_ends(
        server: LiveServer, person: Callable[[str], Client]) -> None:
    alice = person("Alice")
    note = new_note(alice)
    cookie = alice.http.cookies.get("plein_session")
    received: queue.Queue[str] = queue.Queue()
    with httpx.Client(base_url=server.url, cookies={"plein_session": str(cookie)}) as http:
        reader = threading.Thread(target=_events, daemon=True,
                                  args=(http, f"/documents/{note}/events", received))
        reader.start()
        assert received.get(timeout=10) == "status 200"
        assert received.get(timeout=10) == "ready"
        expect(alice.delete(f"{API}/session"), 204)
        # Without the credential event the stream would only notice at its next keep-alive
        # (20 s).
        assert received.get(timeout=2) == "gone"
        assert received.get(timeout=2) == "end"
        reader.join(timeout=5)


# -- the safety net ------------------------------------------------------------------------------


@pytest.fixture
def checking_server(tmp_path: Path) -> Iterator[LiveServer]:
    with running_server(tmp_path / "data", {"PLEIN_LIVE_CHECK_SECONDS": "1"}) as live:
        yield live


def _sql(server: LiveServer, statement: str, *args: Any) -> None:
    """A change made behind the server's back (another process, raw SQL): no event."""
    with sqlite3.connect(server.data_dir / "plein.sqlite3", timeout=30) as conn:
        conn.execute(statement, args)


def test_the_periodic_check_closes_what_no_event_announced(checking_server: LiveServer) -> None:
    server = checking_server
    alice = server.client()
    bob = server.client()
    try:
        alice.sign_up("Alice")
        bob.sign_up("Bob")
        note = new_note(alice)
        bob_note = new_note(bob)
        _id, bob_token = token_of(bob)
        with cookie_socket(server, note, alice) as session_socket, \
                connect(f"{ws_base(server)}/{bob_note}?token={bob_token}",
                        open_timeout=5) as ws:
            assert ws.recv(timeout=5)[:2] == b"\x00\x00"
            cookie = str(alice.http.cookies.get("plein_session"))
            _sql(server, "DELETE FROM web_sessions WHERE token_hash = ?", sha256_hex(cookie))
            _sql(server, "UPDATE users SET is_active = 0 WHERE id = ?", uid_of(bob))
            assert closed_within(session_socket, 10) == 4403
            assert closed_within(ws, 10) == 4403
    finally:
        alice.close()
        bob.close()
