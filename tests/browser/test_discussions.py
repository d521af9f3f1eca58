"""The discussion panel in headless Chromium: Bob's new comment appears on Alice's open page
without a reload (Server-Sent Events, then the fragment), and typing "@" suggests people and
inserts the mention token."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.test_documents import Browsers, expect_ok
from tests.live import LiveServer

pytestmark = pytest.mark.browser
API = "/api/v1"


@pytest.fixture
def browsers(chromium: Browser, server: LiveServer) -> Iterator[Browsers]:
    made = Browsers(chromium, server)
    yield made
    made.close()
    assert made.dialogs.seen == []
    assert made.errors == []


def scene(browsers: Browsers) -> dict[str, Any]:
    alice, bob = browsers.person("Alice"), browsers.person("Bob")
    group = expect_ok(alice.post(f"{API}/groups", json={"name": f"Overleg {uuid.uuid4().hex[:4]}",
                                                        "access": "closed"}))
    assert bob.user is not None
    expect_ok(alice.post(f"{API}/groups/{group['id']}/members",
                         json={"email": bob.user["email"], "role": "member"}))
    note = expect_ok(alice.post(f"{API}/folders/{group['root_folder_id']}/notes",
                                json={"title": "Agenda", "text": "Punt 1"}))
    files = {"file": ("brief.txt", b"Beste lezer,\n", "text/plain")}
    file = expect_ok(alice.post(f"{API}/folders/{group['root_folder_id']}/files", files=files))
    return {"alice": alice, "bob": bob, "note": note["id"], "file": file["id"]}


@pytest.mark.parametrize("kind", ["note", "file"])
def test_a_new_comment_appears_without_reload(browsers: Browsers, kind: str) -> None:
    s = scene(browsers)
    doc = s[kind]
    page = browsers.page(s["alice"])
    page.goto(f"/documents/{doc}")
    panel = page.locator("[data-discussion]")
    expect(panel).to_have_attribute("data-live", "connected")
    # Alice has started typing: the refresh must keep it.
    page.fill("#comment-body", "Half af")
    marker = page.evaluate("() => { window.__sameDocument = true; return true; }")
    assert marker
    body = "Bob zegt <b>hallo</b> en **vet**"
    expect_ok(s["bob"].post(f"{API}/documents/{doc}/comments", json={"body": body}))
    comment = panel.locator(".comment-body", has_text="Bob zegt")
    expect(comment).to_be_visible()
    expect(comment.locator("strong")).to_have_text("vet")
    expect(comment.locator("b")).to_have_count(0)  # raw HTML is not rendered
    expect(panel.locator(".comment-author")).to_have_text("Bob")
    expect(page.locator("#discussion-title .count")).to_have_text("(1)")
    assert page.evaluate("() => window.__sameDocument === true")  # no reload happened
    expect(page.locator("#comment-body")).to_have_value("Half af")

    # A reply to the thread appears too.
    thread = comment.locator("xpath=ancestor::li[contains(@class,'thread')]")
    root = thread.get_attribute("id")
    assert root is not None
    expect_ok(s["bob"].post(f"{API}/documents/{doc}/comments",
                            json={"body": "Nog iets", "parent_id": root.removeprefix("thread-")}))
    expect(page.locator(f"#{root} .replies .comment-body")).to_have_text("Nog iets")


def test_mention_autocomplete_inserts_the_token(browsers: Browsers) -> None:
    s = scene(browsers)
    bob = s["bob"]
    assert bob.user is not None
    page = browsers.page(s["alice"])
    page.goto(f"/documents/{s['file']}")
    box = page.locator("#comment-body")
    box.click()
    box.press_sequentially("Vraag voor @Bo")
    options = page.locator(".mention-list [role=option]")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("Bob")
    box.press("Enter")
    expect(box).to_have_value(f"Vraag voor @[Bob](user:{bob.user['id']}) ")
    expect(page.locator(".mention-list")).to_be_hidden()
    page.click(".comment-new button[type=submit]")
    expect(page.locator(".comment-body .mention")).to_have_text("@Bob")
    # Bob's unread: the mention, and who added him to the group (issue 17).
    items = expect_ok(bob.get(f"{API}/notifications", params={"unread": "true"}), 200)["items"]
    assert sorted(n["kind"] for n in items) == ["group_added", "mention"]
