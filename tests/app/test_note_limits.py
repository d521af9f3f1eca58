"""Notes against the server's limits (issue 9, item 17): note storage counts toward the group
quota and live edits past it are refused; a note nested 3,000 levels deep (any client can
write one) renders everywhere instead of failing with a RecursionError.

People: ``alice`` owns the groups and edits over a raw y-websocket connection."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pycrdt import Doc, XmlElement, XmlFragment, XmlText
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from sync.protocol import SyncUpdate, encode
from tests.app.helpers import API, expect, expect_error, make_folder, make_group
from tests.js_client import ws_base
from tests.live import Client, LiveServer, running_server, unique
from tests.waiting import wait_until

QUOTA = 400_000


def token_of(person: Client) -> str:
    return str(expect(person.post(f"{API}/tokens", json={"name": unique("t")}), 201)["token"])


def make_note(owner: Client) -> tuple[dict[str, Any], str]:
    group = make_group(owner, unique("Notities"))
    folder = make_folder(owner, group["root_folder_id"], unique("map"))
    doc = expect(owner.post(f"{API}/folders/{folder['id']}/notes",
                            json={"title": unique("notitie"), "text": "begin"}), 201)
    return doc, folder["id"]


def text_of(person: Client, doc_id: str, fmt: str = "text") -> str:
    response = person.get(f"{API}/documents/{doc_id}/content", params={"format": fmt})
    assert response.status_code == 200, response.text[:300]
    return response.text


def closed_by_server(ws: ClientConnection, timeout: float = 10.0) -> tuple[int, str] | None:
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    except ConnectionClosed as exc:
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd is not None else None
    except TimeoutError:
        return None
    return None


# -- the quota ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose groups may store QUOTA bytes."""
    data_dir = tmp_path_factory.mktemp("quota") / "data"
    with running_server(data_dir, {"PLEIN_GROUP_QUOTA_BYTES": str(QUOTA)}) as server:
        yield server


def test_live_note_edits_count_toward_the_group_quota(small: LiveServer) -> None:
    alice = small.client()
    alice.sign_up("Alice")
    try:
        doc, folder = make_note(alice)
        url = f"{ws_base(small)}/{doc['id']}?token={token_of(alice)}"
        writer: Doc[Any] = Doc()
        paragraph = writer.get("default", type=XmlFragment).children.append(
            XmlElement("paragraph"))
        text = paragraph.children.append(XmlText())
        sent = 0
        with connect(url, open_timeout=5, max_size=None) as ws:
            closed = None
            before: bytes | None = None  # the first update carries the paragraph too
            for _ in range(2 * QUOTA // 50_000):  # twice the quota, 50 kB at a time
                text.insert(len(text), os.urandom(25_000).hex())
                update = writer.get_update() if before is None else writer.get_update(before)
                before = writer.get_state()
                ws.send(encode(SyncUpdate(update)))
                sent += 50_000
                closed = closed_by_server(ws, timeout=0.5)
                if closed is not None:
                    break
            assert closed == (4413, "group storage quota exceeded"), closed
        assert sent <= QUOTA + 50_000  # refused at the quota, not after it
        stored = len(text_of(alice, doc["id"]))
        assert stored < QUOTA
        # The notes fill the group: a file no longer fits either.
        response = alice.post(f"{API}/folders/{folder}/files",
                              files={"file": ("f.bin", os.urandom(QUOTA - stored // 2),
                                              "application/octet-stream")})
        expect_error(response, 413, "quota_exceeded")
        # A reconnecting editor is measured afresh: an edit past what is left is refused.
        with connect(url, open_timeout=5, max_size=None) as ws:
            before = writer.get_state()
            text.insert(len(text), os.urandom(QUOTA * 3 // 8).hex())  # fits only if notes are free
            ws.send(encode(SyncUpdate(writer.get_update(before))))
            assert closed_by_server(ws) == (4413, "group storage quota exceeded")
        assert len(text_of(alice, doc["id"])) == stored
    finally:
        alice.close()


# -- nesting depth --------------------------------------------------------------------------

def deep_update(levels: int) -> bytes:
    writer: Doc[Any] = Doc()
    node: Any = writer.get("default", type=XmlFragment)
    with writer.transaction():
        for _ in range(levels):
            node = node.children.append(XmlElement("blockquote"))
        paragraph = node.children.append(XmlElement("paragraph"))
        paragraph.children.append(XmlText("heel diep <b>"))
    return writer.get_update()


def test_a_deeply_nested_note_renders_everywhere(server: LiveServer,
                                                 cast: Callable[[str], Client]) -> None:
    alice = cast("Alice")
    doc, _folder = make_note(alice)
    url = f"{ws_base(server)}/{doc['id']}?token={token_of(alice)}"
    with connect(url, open_timeout=5) as ws:
        ws.send(encode(SyncUpdate(deep_update(3000))))
        wait_until(lambda: "heel diep" in text_of(alice, doc["id"]))
    html = text_of(alice, doc["id"], "html")
    assert "heel diep &lt;b&gt;" in html and html.count("<blockquote>") <= 200
    assert "heel diep" in text_of(alice, doc["id"], "markdown")
    page = alice.http.get(f"/documents/{doc['id']}")
    assert page.status_code == 200 and "heel diep" in page.text
    # Versions of it: snapshot, diff, view and restore all walk the tree.
    expect(alice.post(f"{API}/documents/{doc['id']}/versions", json={"label": "diep"}), 201)
    versions = expect(alice.get(f"{API}/documents/{doc['id']}/versions"), 200)
    newest = versions[0]["number"]
    assert newest >= 1
    if newest > 1:
        expect(alice.get(f"{API}/documents/{doc['id']}/versions/1/diff",
                         params={"to": newest}), 200)
    assert alice.http.get(f"/documents/{doc['id']}/versions/{newest}").status_code == 200
    expect(alice.post(f"{API}/documents/{doc['id']}/versions/{newest}/restore"), 201)
    assert "heel diep" in text_of(alice, doc["id"])


def test_markdown_import_keeps_the_text_of_deep_nesting(cast: Callable[[str], Client]) -> None:
    """Past markdown-it's nesting cap (20) the import keeps the text, as plain paragraphs:
    nothing is dropped and nothing recurses deeply. Below it the structure stays."""
    alice = cast("Alice")
    group = make_group(alice, unique("Import"))

    def imported(text: str) -> str:
        doc = expect(alice.post(f"{API}/folders/{group['root_folder_id']}/notes",
                                json={"title": "import", "text": text, "format": "markdown"}),
                     201)
        return text_of(alice, doc["id"], "html")

    html = imported("> " * 3000 + "diep\n\n**vet**\n")
    assert "<blockquote>" not in html and "diep" in html and "**vet**" in html
    html = imported("*" * 3000 + "x" + "*" * 3000 + "\n\n> > ondiep\n")
    assert "x" in html and html.count("<blockquote>") == 2
    html = imported("> " * 5 + "vijf\n")
    assert html.count("<blockquote>") == 5 and "vijf" in html
