"""The group page's Export button in headless Chromium: a member clicks it and gets a zip of
exactly what they may read."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.app.helpers import add_member, make_folder, make_group, uploaded
from tests.live import Client, LiveServer, unique

pytestmark = pytest.mark.browser


@pytest.fixture
def people(server: LiveServer) -> Iterator[dict[str, Client]]:
    made = {}
    for name in ("Alice", "Bob"):
        client = server.client()
        client.sign_up(name)
        made[name.lower()] = client
    yield made
    for client in made.values():
        client.close()


def test_a_member_downloads_the_export_from_the_group_page(
        chromium: Browser, server: LiveServer, people: dict[str, Client], tmp_path: Path) -> None:
    alice, bob = people["alice"], people["bob"]
    group = make_group(alice, unique("Export button"))
    add_member(alice, group["id"], bob)
    root = group["root_folder_id"]
    uploaded(alice, root, "open.txt", b"for everyone")
    closed = make_folder(alice, root, "Only Alice", "closed", [])
    uploaded(alice, closed["id"], "closed.txt", b"not for bob")

    session = bob.http.cookies.get("plein_session")
    assert session
    context: BrowserContext = chromium.new_context(base_url=server.url, accept_downloads=True,
                                                   locale="nl-NL")
    try:
        context.add_cookies([{"name": "plein_session", "value": session, "url": server.url}])
        page = context.new_page()
        page.goto(f"/groups/{group['id']}")
        button = page.locator("#export-group")
        expect(button).to_have_text("Exporteren (zip)")
        with page.expect_download() as download_info:
            button.click()
        download = download_info.value
        assert download.suggested_filename.endswith("-export.zip")
        target = tmp_path / "export.zip"
        download.save_as(target)
    finally:
        context.close()
    with zipfile.ZipFile(io.BytesIO(target.read_bytes())) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert archive.read("content/open.txt/v1-open.txt") == b"for everyone"
    assert manifest["scope"] == "member"
    assert [d["title"] for d in manifest["documents"]] == ["open.txt"]
