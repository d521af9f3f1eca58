"""Group listing (API.md: mine and the open ones) and the bookkeeping of session/token use."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.live import Client, LiveServer, running_server


def test_closed_groups_are_listed_to_members_only(person: Callable[[str], Client]) -> None:
    alice, dave = person("Alice"), person("Dave")
    closed = alice.post("/api/v1/groups", json={"name": "Dossier X", "access": "closed"}).json()
    opened = alice.post("/api/v1/groups", json={"name": "Open plein", "access": "open"}).json()
    seen_by_dave = {g["id"] for g in dave.get("/api/v1/groups?limit=500").json()}
    assert opened["id"] in seen_by_dave
    assert closed["id"] not in seen_by_dave
    # With the link, Dave still sees the name and may ask to join; then it is listed as his.
    assert dave.get(f"/api/v1/groups/{closed['id']}").status_code == 200
    assert dave.post(f"/api/v1/groups/{closed['id']}/join").json() == {"state": "requested"}
    mine = {g["id"]: g for g in dave.get("/api/v1/groups?limit=500").json()}
    assert mine[closed["id"]]["my_state"] == "requested"
    assert mine[closed["id"]]["root_folder_id"] is None


def test_site_admin_lists_every_group(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as server:
        admin, alice = server.client(), server.client()
        admin.sign_up("Admin")
        alice.sign_up("Alice")
        closed = alice.post("/api/v1/groups", json={"name": "Dicht", "access": "closed"}).json()
        assert closed["id"] in {g["id"] for g in admin.get("/api/v1/groups").json()}
        admin.close()
        alice.close()


@contextmanager
def _db(server: LiveServer) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(server.data_dir / "plein.sqlite3")
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def test_session_slides_and_token_use_is_noted(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as server:
        alice = server.client()
        alice.sign_up("Alice")
        token = alice.post("/api/v1/tokens", json={"name": "script"}).json()
        with _db(server) as db:
            # Pretend both were last used two hours ago.
            db.execute("UPDATE web_sessions SET last_seen_at = datetime('now', '-2 hours'), "
                       "expires_at = datetime('now', '+1 hours')")
        assert alice.get("/api/v1/users/me").status_code == 200
        bearer = server.client()
        bearer.http.headers["Authorization"] = f"Bearer {token['token']}"
        assert bearer.get("/api/v1/users/me").status_code == 200
        with _db(server) as db:
            (expires,) = db.execute("SELECT expires_at FROM web_sessions").fetchone()
            (used,) = db.execute("SELECT last_used_at FROM api_tokens").fetchone()
            (days_left,) = db.execute("SELECT julianday(?) - julianday('now')",
                                      (expires,)).fetchone()
        assert days_left > 13  # slid forward to the full session lifetime again
        assert used is not None
        alice.close()
        bearer.close()
