"""The discussion panel's live event stream (server-sent events): an open stream, which only a
real server sends as it goes (the in-process transport answers whole bodies)."""

from __future__ import annotations

import json

from tests.app.helpers import API, add_member, expect, make_group
from tests.live import LiveServer, unique
from tests.plugin import signed_up


def test_live_stream_announces_a_new_comment(server: LiveServer) -> None:
    with signed_up(server, ("Alice", "Bob")) as people:
        alice, bob = people["alice"], people["bob"]
        group = make_group(alice, unique("Overleg"))
        add_member(alice, group["id"], bob)
        files = {"file": ("brief.txt", b"Beste lezer,\n", "text/plain")}
        doc = expect(alice.post(f"{API}/folders/{group['root_folder_id']}/files", files=files),
                     201)["id"]
        with alice.http.stream("GET", f"/documents/{doc}/events", timeout=15) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            seen: list[str] = []
            for line in lines:
                seen.append(line)
                if line.startswith("data:") and "event: ready" in seen:
                    break
            expect(bob.post(f"{API}/documents/{doc}/comments", json={"body": "Live!"}), 201)
            for line in lines:
                if line == "event: comments":
                    data = json.loads(next(lines).removeprefix("data: "))
                    assert data == {"document_id": doc}
                    break
        fragment = alice.http.get(f"/documents/{doc}/discussion")
        assert fragment.status_code == 200 and "Live!" in fragment.text
        assert "<html" not in fragment.text
