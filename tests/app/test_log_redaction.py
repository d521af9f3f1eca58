"""No secret reaches a log line (issue 9, item 3): a real server with uvicorn's access log on,
at info and at debug level, is handed tokens, tickets and session cookies in every place a
client puts them; the log file must hold none of them."""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.sync.client import connect

from app.log_redact import redact
from tests.app.helpers import API, expect, make_group
from tests.js_client import ws_base
from tests.live import running_server, unique


def test_redact_known_shapes() -> None:
    token = "plein_abcDEF123_" + "x" * 43
    assert redact(f'GET /sync/d?token={token} HTTP/1.1') == \
        "GET /sync/d?token=[redacted] HTTP/1.1"
    assert redact("/sync/d?x=1&ticket=plein-ticket_abcdefghijklmnopqrstuvwxyz&y=2") == \
        "/sync/d?x=1&ticket=[redacted]&y=2"
    assert redact("/reset?reset_token=abc&lang=nl") == "/reset?reset_token=[redacted]&lang=nl"
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer [redacted]"
    assert redact("Cookie: plein_lang=nl; plein_session=s3cr3t") == \
        "Cookie: plein_lang=nl; plein_session=[redacted]"
    assert token not in redact(f"pasted somewhere: {token}.")
    assert redact("/search?q=token&page=2") == "/search?q=token&page=2"
    assert redact('"GET /password/reset/Abc_defGHIjkl-mnop123 HTTP/1.1"') == \
        '"GET /password/reset/[redacted] HTTP/1.1"'
    assert redact("/verify/AbcdefGHIJKLmnopQRST") == "/verify/[redacted]"
    assert redact("/invitations/AbcdefGHIJKLmnop/accept") == "/invitations/[redacted]/accept"
    assert redact("/documents/AbcdefGHIJKLmnop") == "/documents/AbcdefGHIJKLmnop"


@pytest.mark.parametrize("level", ["info", "debug"])
def test_no_secret_in_the_server_log(tmp_path: Path, level: str) -> None:
    with running_server(tmp_path / "data", {"PLEIN_LOG_LEVEL": level}) as server:
        alice = server.client()
        try:
            alice.sign_up("Alice")
            group = make_group(alice, unique("G"))
            note = expect(alice.post(f"{API}/folders/{group['root_folder_id']}/notes",
                                     json={"title": "n", "text": "x"}), 201)["id"]
            token = expect(alice.post(f"{API}/tokens", json={"name": "t"}), 201)["token"]
            ticket = expect(alice.post(f"{API}/documents/{note}/sync-ticket"), 201)["ticket"]
            used = expect(alice.post(f"{API}/documents/{note}/sync-ticket"), 201)["ticket"]
            cookie = str(alice.http.cookies.get("plein_session"))
            base = f"{ws_base(server)}/{note}"
            for url in (f"{base}?token={token}", f"{base}?ticket={ticket}"):
                with connect(url, open_timeout=5) as ws:
                    assert ws.recv(timeout=5)[:2] == b"\x00\x00"
            with connect(f"{base}?ticket={used}", open_timeout=5) as ws:
                ws.recv(timeout=5)
            with connect(base, open_timeout=5, additional_headers={
                    "Cookie": f"plein_session={cookie}", "Origin": server.url}) as ws:
                ws.recv(timeout=5)
            # Refused attempts are logged too: a spent ticket, a token in a plain page URL.
            with pytest.raises(Exception):  # noqa: B017,PT011 - any refusal will do
                with connect(f"{base}?ticket={used}", open_timeout=5) as ws:
                    ws.recv(timeout=5)
            alice.get(f"{API}/users/me?token={token}")
            alice.http.get(f"{API}/users/me", headers={"Authorization": f"Bearer {token}"})
        finally:
            alice.close()
    log = server.log()
    # The access log was on, so the lines were written (with the values redacted).
    assert "token=[redacted]" in log and "ticket=[redacted]" in log, log[-3000:]
    for secret in (token, ticket, used, cookie):
        assert secret not in log
    assert "plein_" + token.split("_")[1] not in log
