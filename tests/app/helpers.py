"""Small helpers shared by the app tests: assertions on the API.md error shape, ids, groups,
folders, the usual team, uploads.  The people and servers are fixtures (tests/plugin.py)."""

from __future__ import annotations

import os
import secrets
from typing import Any

import httpx

from tests.live import Client, unique

API = "/api/v1"


def missing_id() -> str:
    """An id shaped like real ones (``secrets.token_urlsafe(12)``) that names nothing."""
    return secrets.token_urlsafe(12)


def describe(response: httpx.Response) -> str:
    return f"{response.request.method} {response.request.url.path} → {response.status_code} " \
           f"{response.text[:300]}"


def expect(response: httpx.Response, status: int) -> Any:
    """Assert the status; return the JSON body (or None for an empty answer)."""
    assert response.status_code == status, describe(response)
    return response.json() if response.content else None


def expect_error(response: httpx.Response, status: int, code: str | None = None,
                 field: str | None = None) -> dict[str, Any]:
    """Assert an API.md error: ``{"error": {"code", "message"[, "field"]}}`` plus only the
    documented facts a client acts on (``limit`` of a too-long name, ``retry_after``)."""
    assert response.status_code == status, describe(response)
    assert response.headers["content-type"].startswith("application/json"), describe(response)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= {"code", "message", "field", "limit", "retry_after"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert error["code"].replace("_", "").isalnum() and error["code"].islower(), error
    assert isinstance(error["message"], str) and error["message"], error
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert error.get("field") == field, error
    return dict(error)


def email_of(client: Client) -> str:
    assert client.user is not None
    return str(client.user["email"])


def uid_of(client: Client) -> str:
    assert client.user is not None
    return str(client.user["id"])


def make_group(owner: Client, name: str, access: str = "closed") -> dict[str, Any]:
    group: dict[str, Any] = expect(owner.post(f"{API}/groups",
                                              json={"name": name, "access": access}), 201)
    return group


def add_member(owner: Client, group_id: str, person: Client, role: str = "member") -> None:
    expect(owner.post(f"{API}/groups/{group_id}/members",
                      json={"email": email_of(person), "role": role}), 201)


def make_folder(owner: Client, parent_id: str, name: str, access: str | None = None,
                members: list[tuple[Client, str]] | None = None) -> dict[str, Any]:
    """A sub-folder; ``members`` (closed folders) as (person, "viewer"|"editor") pairs."""
    body: dict[str, Any] = {"name": name}
    if access is not None:
        body["access"] = access
    folder: dict[str, Any] = expect(owner.post(f"{API}/folders/{parent_id}/folders", json=body),
                                    201)
    if members is not None:
        set_access(owner, folder["id"], "closed", members)
    return folder


def set_access(owner: Client, folder_id: str, access: str,
               members: list[tuple[Client, str]] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"access": access}
    if members is not None:
        body["members"] = [{"user_id": uid_of(p), "role": role} for p, role in members]
    response = owner.put(f"{API}/folders/{folder_id}/access", json=body)
    return response


def make_team(alice: Client, bob: Client, carol: Client, *, carol_on_closed: str = "viewer",
              name: str = "Team") -> dict[str, Any]:
    """A fresh closed group of Alice's, Bob and Carol members, with an open sub-folder and a
    closed one on which only Carol is listed (``carol_on_closed``: "viewer" or "editor").
    Returns ``{"group": {...}, "open": folder id, "closed": folder id}``."""
    group = make_group(alice, unique(name))
    add_member(alice, group["id"], bob)
    add_member(alice, group["id"], carol)
    root = group["root_folder_id"]
    return {"group": group,
            "open": make_folder(alice, root, unique("open"), "open")["id"],
            "closed": make_folder(alice, root, unique("closed"), "closed",
                                  [(carol, carol_on_closed)])["id"]}


def upload(client: Client, folder_id: str, name: str, data: bytes,
           content_type: str = "application/octet-stream") -> httpx.Response:
    """Upload one file through the API (the answer, whatever it is)."""
    return client.post(f"{API}/folders/{folder_id}/files",
                       files={"file": (name, data, content_type)})


def uploaded(client: Client, folder_id: str, name: str, data: bytes,
             content_type: str = "application/octet-stream") -> dict[str, Any]:
    """Upload a file that must be accepted; the new document (the 201 body)."""
    doc: dict[str, Any] = expect(upload(client, folder_id, name, data, content_type), 201)
    return doc


def upload_id(client: Client, folder_id: str, name: str = "stuk.txt",
              data: bytes | None = None) -> str:
    """Upload a file (random bytes unless given) that must be accepted; its document id."""
    doc = expect(upload(client, folder_id, name, os.urandom(32) if data is None else data), 201)
    return str(doc["id"])


def new_version(client: Client, doc_id: str, data: bytes, name: str = "v.bin") -> httpx.Response:
    return client.post(f"{API}/documents/{doc_id}/versions",
                       files={"file": (name, data, "application/octet-stream")})
