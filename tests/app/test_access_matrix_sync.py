"""Access matrix of the live-sync credentials: sync tickets (``POST .../sync-ticket``, then
``/sync/{id}?ticket=``) and document-bound tokens (``POST /tokens`` with ``document_id``).

Roles: ``owner`` owns the group; ``editor`` and ``viewer`` are on the closed folder's list;
``member`` is in the group but not on that list; ``outsider`` is in no group. Objects: a note
in the closed folder, a file beside it, and a missing id. A document the caller may not read
gets the same 404 as a missing one; a readable file has no live channel (400 for tickets).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from websockets.sync.client import connect

from app.db import Database
from app.models import SyncTicket
from app.services.accounts import sha256_hex
from tests.app.helpers import (
    API,
    add_member,
    expect,
    expect_error,
    make_folder,
    make_group,
    missing_id,
    set_access,
)
from tests.js_client import ws_base
from tests.live import Client, LiveServer, unique

ROLES = ("anon", "owner", "editor", "viewer", "member", "outsider")

TABLE = """
path              object   anon owner editor viewer member outsider
POST sync-ticket  note     401  201   201    201    404    404
POST sync-ticket  file     401  400   400    400    404    404
POST sync-ticket  missing  401  404   404    404    404    404
POST bound-token  note     401  201   201    201    404    404
POST bound-token  file     401  201   201    201    404    404
POST bound-token  missing  401  404   404    404    404    404
"""


def parse(table: str) -> list[Any]:
    rows = [line.split() for line in table.strip().splitlines()[1:]]
    params = []
    for row in rows:
        path, obj, values = f"{row[0]} {row[1]}", row[2], row[3:]
        assert len(values) == len(ROLES), row
        for role, value in zip(ROLES, values, strict=True):
            params.append(pytest.param(role, path, obj, int(value),
                                       id=f"{path.replace(' ', '_')}-{obj}-{role}"))
    return params


@dataclass
class World:
    server: LiveServer
    people: dict[str, Client]
    note: str
    other_note: str
    file: str
    folder: str


@pytest.fixture(scope="module")
def world(server: LiveServer) -> Iterator[World]:
    people: dict[str, Client] = {"anon": server.client()}
    try:
        for role in ROLES[1:]:
            people[role] = server.client()
            people[role].sign_up(role.capitalize())
        owner = people["owner"]
        group = make_group(owner, unique("G_sync"), "closed")
        for role in ("editor", "viewer", "member"):
            add_member(owner, group["id"], people[role])
        folder = make_folder(owner, group["root_folder_id"], unique("closed"), "closed",
                             [(people["viewer"], "viewer"), (people["editor"], "editor")])
        note = expect(owner.post(f"{API}/folders/{folder['id']}/notes",
                                 json={"title": unique("note"), "text": "hello"}), 201)
        other = expect(owner.post(f"{API}/folders/{folder['id']}/notes",
                                  json={"title": unique("other"), "text": "other"}), 201)
        file = expect(owner.post(f"{API}/folders/{folder['id']}/files",
                                 files={"file": ("a.bin", os.urandom(100), "x/y")}), 201)
        yield World(server, people, note["id"], other["id"], file["id"], folder["id"])
    finally:
        for client in people.values():
            client.close()


def _target(world: World, obj: str) -> str:
    return {"note": world.note, "file": world.file, "missing": missing_id()}[obj]


@pytest.mark.parametrize(("role", "path", "obj", "expected"), parse(TABLE))
def test_sync_credentials_matrix(world: World, role: str, path: str, obj: str,
                                 expected: int) -> None:
    client = world.people[role]
    target = _target(world, obj)
    if path == "POST sync-ticket":
        response = client.post(f"{API}/documents/{target}/sync-ticket")
    else:
        response = client.post(f"{API}/tokens", json={"name": unique("bound"),
                                                       "document_id": target})
    if expected >= 400:
        error = expect_error(response, expected)
        if expected == 404:
            # Hidden and missing look alike.
            assert error["code"] == "not_found", error
        return
    body = expect(response, expected)
    if path == "POST sync-ticket":
        assert set(body) == {"ticket", "expires_at"}
        expires = datetime.fromisoformat(body["expires_at"])
        assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(seconds=61)
    else:
        assert body["document_id"] == target
        listed = expect(client.get(f"{API}/tokens"), 200)
        assert {"id": body["id"], "document_id": target} in [
            {"id": t["id"], "document_id": t["document_id"]} for t in listed]


# -- the sockets they open ----------------------------------------------------------------------


def sync_url(server: LiveServer, doc_id: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{ws_base(server)}/{doc_id}" + (f"?{query}" if query else "")


def opens(server: LiveServer, doc_id: str, **params: str) -> bool:
    """True if the handshake is accepted and the server sends its first sync message."""
    from websockets.exceptions import InvalidStatus

    try:
        with connect(sync_url(server, doc_id, **params), open_timeout=5) as ws:
            first = ws.recv(timeout=5)
            assert isinstance(first, bytes) and first[:2] == b"\x00\x00"
            return True
    except InvalidStatus as exc:
        assert exc.response.status_code == 403
        return False


def ticket(client: Client, doc_id: str) -> str:
    return str(expect(client.post(f"{API}/documents/{doc_id}/sync-ticket"), 201)["ticket"])


@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
def test_a_ticket_opens_one_socket_once(world: World, role: str) -> None:
    client = world.people[role]
    secret = ticket(client, world.note)
    assert opens(world.server, world.note, ticket=secret)
    assert not opens(world.server, world.note, ticket=secret)  # used


def test_a_ticket_is_for_its_document_only_and_spent_by_any_use(world: World) -> None:
    secret = ticket(world.people["editor"], world.note)
    assert not opens(world.server, world.other_note, ticket=secret)  # wrong document
    assert not opens(world.server, world.note, ticket=secret)  # and now spent


def test_made_up_and_expired_tickets_are_refused(world: World) -> None:
    assert not opens(world.server, world.note, ticket="plein-ticket_" + "A" * 43)
    assert not opens(world.server, world.note, ticket="")
    secret = ticket(world.people["viewer"], world.note)
    db = Database(f"sqlite:///{world.server.data_dir / 'plein.sqlite3'}")
    try:
        with db.write() as session:
            session.execute(update(SyncTicket)
                            .where(SyncTicket.ticket_hash == sha256_hex(secret))
                            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    finally:
        db.dispose()
    assert not opens(world.server, world.note, ticket=secret)


def test_a_ticket_is_stored_hashed(world: World) -> None:
    secret = ticket(world.people["owner"], world.note)
    raw = (world.server.data_dir / "plein.sqlite3").read_bytes()
    wal = world.server.data_dir / "plein.sqlite3-wal"
    raw += wal.read_bytes() if wal.exists() else b""
    assert secret.encode() not in raw


def test_a_ticket_dies_with_the_session_that_asked(server: LiveServer, person: Any) -> None:
    alice = person("Alice")
    group = make_group(alice, unique("G"))
    note = expect(alice.post(f"{API}/folders/{group['root_folder_id']}/notes",
                             json={"title": "n"}), 201)["id"]
    secret = ticket(alice, note)
    expect(alice.delete(f"{API}/session"), 204)
    assert not opens(server, note, ticket=secret)


def test_a_ticket_dies_with_the_token_that_asked(server: LiveServer, person: Any) -> None:
    alice = person("Alice")
    group = make_group(alice, unique("G"))
    note = expect(alice.post(f"{API}/folders/{group['root_folder_id']}/notes",
                             json={"title": "n"}), 201)["id"]
    made = expect(alice.post(f"{API}/tokens", json={"name": "t"}), 201)
    bearer = {"Authorization": f"Bearer {made['token']}"}
    # (A bearer token wins over the cookie the client also carries.)
    first = expect(alice.http.post(f"{API}/documents/{note}/sync-ticket", headers=bearer),
                   201)["ticket"]
    second = expect(alice.http.post(f"{API}/documents/{note}/sync-ticket", headers=bearer),
                    201)["ticket"]
    assert opens(server, note, ticket=first)
    expect(alice.delete(f"{API}/tokens/{made['id']}"), 204)
    assert not opens(server, note, ticket=second)


def test_a_cookie_ticket_request_needs_the_csrf_token(world: World) -> None:
    owner = world.people["owner"]
    response = owner.http.post(f"{API}/documents/{world.note}/sync-ticket")  # no X-CSRF-Token
    expect_error(response, 403)


def test_a_viewers_ticket_opens_read_only(world: World) -> None:
    from sync.protocol import SyncUpdate, decode_frame, encode

    secret = ticket(world.people["viewer"], world.note)
    with connect(sync_url(world.server, world.note, ticket=secret), open_timeout=5) as ws:
        ws.recv(timeout=5)
        ws.send(encode(SyncUpdate(b"\x01\x01\x05\x00\x04\x01\x01t\x01x\x00")))
        while True:  # the next auth message says no
            messages = decode_frame(ws.recv(timeout=5))
            if any(type(m).__name__ == "PermissionDenied" for m in messages):
                break


def test_bound_token_works_for_its_document_sync_only(world: World) -> None:
    viewer = world.people["viewer"]
    made = expect(viewer.post(f"{API}/tokens", json={"name": "bound",
                                                     "document_id": world.note}), 201)
    secret = made["token"]
    assert opens(world.server, world.note, token=secret)
    assert not opens(world.server, world.other_note, token=secret)
    bearer = {"Authorization": f"Bearer {secret}"}
    response = viewer.http.get(f"{API}/users/me", headers=bearer)
    expect_error(response, 401)
    # Neither can it ask for tickets (it is not the whole account).
    response = viewer.http.post(f"{API}/documents/{world.note}/sync-ticket", headers=bearer)
    expect_error(response, 401)


def test_bound_token_of_someone_who_lost_access_is_refused(world: World) -> None:
    owner, editor = world.people["owner"], world.people["editor"]
    group_root = expect(owner.get(f"{API}/folders/{world.folder}"), 200)["breadcrumbs"][0]["id"]
    folder = make_folder(owner, group_root, unique("f"), "closed", [(editor, "editor")])
    note = expect(owner.post(f"{API}/folders/{folder['id']}/notes",
                             json={"title": unique("n")}), 201)["id"]
    made = expect(editor.post(f"{API}/tokens", json={"name": "b", "document_id": note}), 201)
    assert opens(world.server, note, token=made["token"])
    expect(set_access(owner, folder["id"], "closed", []), 200)
    assert not opens(world.server, note, token=made["token"])


def test_profile_page_makes_and_lists_document_bound_tokens(world: World) -> None:
    from tests.app.test_pages import submit, text_of

    viewer, outsider = world.people["viewer"], world.people["outsider"]
    link = f"{world.server.url}/documents/{world.note}"
    created = submit(viewer.http, "/profile", "/profile/tokens",
                     {"name": unique("page-bound"), "document": link})
    assert created.status_code == 200, created.text
    secret = re.search(r'value="(plein_[^"]+)"', created.text)
    assert secret
    assert opens(world.server, world.note, token=secret.group(1))
    assert not opens(world.server, world.other_note, token=secret.group(1))
    listing = text_of(viewer.get("/profile"))
    title = expect(world.people["owner"].get(f"{API}/documents/{world.note}"), 200)["title"]
    assert f'href="/documents/{world.note}"' in listing and title in listing
    # A document the person cannot read: refused like a missing one, no token made.
    before = len(expect(outsider.get(f"{API}/tokens"), 200))
    refused = submit(outsider.http, "/profile", "/profile/tokens",
                     {"name": "nope", "document": world.note})
    assert refused.status_code == 404
    assert title not in text_of(refused)
    assert len(expect(outsider.get(f"{API}/tokens"), 200)) == before
