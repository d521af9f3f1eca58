"""Small helpers shared by the app tests (assertions on the API.md error shape, ids)."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.live import Client

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
    """Assert an API.md error: ``{"error": {"code", "message"[, "field"]}}`` and nothing else."""
    assert response.status_code == status, describe(response)
    assert response.headers["content-type"].startswith("application/json"), describe(response)
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= {"code", "message", "field"}, error
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
