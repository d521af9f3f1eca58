"""What people type besides note text is not readable at rest either (docs/security.md, "Data at
rest"): a canary typed in a comment, a document title, a file name, a folder name, a group name
and description and a version label -- and the activity that remembers a trashed title -- is
nowhere in the raw bytes of the data directory (SQLite and its WAL included), while the server
runs and after it stopped; and every one of them reads back."""

from __future__ import annotations

import secrets
from typing import Any

from tests.app.helpers import API, expect, make_folder
from tests.app.test_search_api import LETTERS, wait_found
from tests.canary import files_containing
from tests.live import LiveServer


def test_typed_names_and_comments_are_sealed_at_rest(fresh_server: LiveServer) -> None:
    server = fresh_server
    canary = "kanarie" + "".join(secrets.choice(LETTERS) for _ in range(16))
    needles = [canary.encode(), canary[:12].encode(), canary[-12:].encode(),
               canary.upper().encode(), canary.encode("utf-16-le")]
    owner = server.client()
    try:
        owner.sign_up("Owner")
        group = expect(owner.post(f"{API}/groups", json={
            "name": f"Groep {canary}", "description": f"Over {canary}", "access": "closed"}), 201)
        folder = make_folder(owner, group["root_folder_id"], f"Map {canary}")
        uploaded = expect(owner.post(f"{API}/folders/{folder['id']}/files", files={
            "file": (f"verslag-{canary}.txt", b"gewone inhoud\n", "text/plain")}), 201)
        note = expect(owner.post(f"{API}/folders/{folder['id']}/notes",
                                 json={"title": f"Notulen {canary}", "text": "tekst",
                                       "format": "text"}), 201)
        expect(owner.post(f"{API}/documents/{note['id']}/comments",
                          json={"body": f"Een reactie met {canary} erin"}), 201)
        expect(owner.post(f"{API}/documents/{note['id']}/versions",
                          json={"label": f"versie {canary}"}), 201)
        trashed = expect(owner.post(f"{API}/folders/{folder['id']}/notes",
                                    json={"title": f"Weg {canary}", "format": "text"}), 201)
        expect(owner.delete(f"{API}/documents/{trashed['id']}"), 204)
        wait_found(owner, canary, note["id"])  # indexed too: the index is encrypted as well

        # While the server runs: the WAL holds the latest pages.
        hits = files_containing(server.data_dir, needles)
        assert not hits, hits
        server.stop()
        hits = files_containing(server.data_dir, needles)
        hits += [f"server log: {n!r}" for n in needles if n in server.log_path.read_bytes()]
        assert not hits, hits

        # Control: everything reads back (so the grep looked where the words are kept).
        server.start()
        got: dict[str, Any] = expect(owner.get(f"{API}/groups/{group['id']}"), 200)
        assert got["name"] == f"Groep {canary}" and got["description"] == f"Over {canary}"
        assert expect(owner.get(f"{API}/folders/{folder['id']}"), 200)["name"] == f"Map {canary}"
        assert expect(owner.get(f"{API}/documents/{uploaded['id']}"), 200)["title"] == \
            f"verslag-{canary}.txt"
        versions = expect(owner.get(f"{API}/documents/{uploaded['id']}/versions"), 200)
        assert versions[0]["filename"] == f"verslag-{canary}.txt"
        assert expect(owner.get(f"{API}/documents/{note['id']}/versions"), 200)[0]["label"] == \
            f"versie {canary}"
        comments = expect(owner.get(f"{API}/documents/{note['id']}/comments"), 200)
        assert f"Een reactie met {canary} erin" in str(comments)
        activity = owner.get(f"{API}/groups/{group['id']}/activity")
        assert activity.status_code == 200 and f"Weg {canary}" in activity.text
    finally:
        owner.close()
