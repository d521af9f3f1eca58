"""Note content never reaches the disk in the clear: a canary word typed through a live client
is nowhere in the raw bytes of the data directory -- not in the update log while the room is
open, not in the snapshot after compaction, not in a named version, not in SQLite or its WAL,
not in the server's log."""

from __future__ import annotations

import json
import secrets

import pytest

from tests.app.helpers import API, expect, make_group
from tests.app.test_live_sync import server_text, token_of, wait_until
from tests.canary import files_containing
from tests.js_client import JsClient, ws_base
from tests.live import LiveServer, unique

# No skip: the test command installs Node packages, so a missing client is a failure.
pytestmark = pytest.mark.usefixtures("node_client_ready")


def test_typed_canary_is_encrypted_everywhere(fresh_server: LiveServer) -> None:
    server = fresh_server
    canary = "kanarie" + secrets.token_hex(8)
    # The word as typed, and pieces of it (a log record may hold a fragment of a word).
    needles = [canary.encode(), canary[:12].encode(), canary[-12:].encode(),
               canary.encode("utf-16-le")]
    owner = server.client()
    owner.sign_up("Owner")
    group = make_group(owner, unique("canary"))
    doc = expect(owner.post(f"{API}/folders/{group['root_folder_id']}/notes",
                            json={"title": "plain title", "text": "intro", "format": "text"}),
                 201)
    client = JsClient(ws_base(server), doc["id"], token_of(owner), name="typist")
    try:
        client.wait_synced()
        client.type(0, 5, f" {canary}")  # typed inside the existing paragraph
        client.insert(f"{canary} on a line of its own")
        wait_until(lambda: server_text(owner, doc["id"]).count(canary) == 2)
        # While the room is open: the update log holds the edits.
        assert not files_containing(server.data_dir, needles)
        version = expect(owner.post(f"{API}/documents/{doc['id']}/versions",
                                    json={"label": "with canary"}), 201)
        assert version["number"] == 1
    finally:
        client.close()
    # A graceful stop compacts every open room into a snapshot.
    server.stop()
    manifest = json.loads((server.data_dir / "notes" / "docs" / doc["id"] / "manifest.json")
                          .read_bytes())
    assert manifest["snapshot"] is not None, "stopping did not compact the note"
    hits = files_containing(server.data_dir, needles)
    hits += [f"server log: {n!r}" for n in needles if n in server.log_path.read_bytes()]
    assert not hits, hits
    # Control: the canary *is* stored (so the grep looked where it had to).
    server.start()
    assert server_text(owner, doc["id"]).count(canary) == 2
    versions = expect(owner.get(f"{API}/documents/{doc['id']}/versions"), 200)
    assert versions[0]["label"] == "with canary"
    v1 = owner.get(f"{API}/documents/{doc['id']}/versions/1/content", params={"format": "text"})
    assert canary in v1.text
    owner.close()
