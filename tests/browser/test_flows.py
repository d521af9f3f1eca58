"""End-to-end flows in headless Chromium against the live server.

Screenshots of the main pages (1280x800) go to docs/screenshots/ when PLEIN_SCREENSHOTS=1:

    PLEIN_SCREENSHOTS=1 pytest -m browser tests/browser
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, ViewportSize, expect

from tests.live import LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


def screenshot(page: Page, name: str) -> None:
    # Only on request, so a normal test run never dirties the work tree.
    if os.environ.get("PLEIN_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"))


class Dialogs:
    """Collects every alert/confirm/prompt: script injected through a name would fire one."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, dialog: Dialog) -> None:
        self.seen.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def dialogs() -> Dialogs:
    return Dialogs()


@pytest.fixture
def new_page(chromium: Browser, server: LiveServer, dialogs: Dialogs
             ) -> Iterator[Callable[[], Page]]:
    """A page in a browser context of its own (its own cookies: one person each)."""
    contexts: list[BrowserContext] = []

    def make() -> Page:
        context = chromium.new_context(base_url=server.url, viewport=VIEWPORT, locale="nl-NL")
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.on("dialog", dialogs)
        return page

    yield make
    for context in contexts:
        context.close()


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Aanmelden").click()
    expect(page.get_by_role("heading", name="Mijn groepen")).to_be_visible()


def email_for(name: str) -> str:
    return f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.nl"


def test_closed_folder_stays_closed_for_a_member(server: LiveServer,
                                                 new_page: Callable[[], Page],
                                                 dialogs: Dialogs) -> None:
    bob_email = email_for("bob")
    bob_api = server.client()
    bob_api.sign_up("Bob Jansen", email=bob_email)
    bob_api.close()

    alice = new_page()
    alice.goto("/register")
    alice.fill("#name", "Alice de Vries")
    alice.fill("#email", email_for("alice"))
    alice.fill("#password", PASSWORD)
    alice.get_by_role("main").get_by_role("button", name="Account aanmaken").click()
    expect(alice.get_by_role("heading", name="Mijn groepen")).to_be_visible()

    group_name = f"Dossier A12 {uuid.uuid4().hex[:4]}"
    alice.get_by_role("link", name="Nieuwe groep").click()
    alice.fill("#name", group_name)
    alice.fill("#description", "Afstemming over de verbreding van de A12 tussen Ede en Grijsoord.")
    alice.check("#access-closed")
    alice.get_by_role("button", name="Groep aanmaken").click()
    expect(alice.get_by_role("heading", name=group_name)).to_be_visible()
    expect(alice.locator(".page-head .badge-closed")).to_have_text("besloten")

    alice.fill("#add-email", bob_email)
    alice.select_option("#add-role", "member")
    alice.get_by_role("button", name="Toevoegen", exact=True).click()
    members = alice.locator("#members")
    expect(members.get_by_role("cell", name="Bob Jansen", exact=True)).to_be_visible()
    group_url = alice.url.split("#")[0]
    alice.goto(group_url)
    screenshot(alice, "group")

    alice.get_by_role("link", name="Naar de mappen").click()
    root_url = alice.url
    alice.fill("#new-name", "Werkstukken")
    alice.check("#new-open")
    alice.get_by_role("button", name="Map aanmaken").click()
    expect(alice.get_by_role("link", name="Werkstukken")).to_be_visible()
    alice.fill("#new-name", "Personeelszaken")
    alice.check("#new-closed")
    alice.get_by_role("button", name="Map aanmaken").click()
    closed_link = alice.get_by_role("link", name="Personeelszaken")
    expect(closed_link).to_be_visible()
    expect(alice.locator(".tile", has_text="Personeelszaken").locator(".badge-closed")
           ).to_be_visible()
    closed_link.click()
    closed_url = alice.url
    expect(alice.locator("#access")).to_be_visible()
    expect(alice.locator("#access").get_by_role("cell", name="Bob Jansen", exact=True)
           ).to_be_visible()
    screenshot(alice, "folder")

    alice.goto("/")
    expect(alice.get_by_role("link", name=group_name)).to_be_visible()
    screenshot(alice, "dashboard")
    alice.goto("/profile")
    expect(alice.get_by_role("heading", name="Mijn profiel")).to_be_visible()
    screenshot(alice, "profile")

    bob = new_page()
    bob.goto("/login")
    screenshot(bob, "login")
    sign_in(bob, bob_email)
    bob.goto(group_url)
    bob.get_by_role("link", name="Naar de mappen").click()
    assert bob.url == root_url
    expect(bob.get_by_role("link", name="Werkstukken")).to_be_visible()
    expect(bob.get_by_text("Personeelszaken")).to_have_count(0)
    answer = bob.goto(closed_url)
    assert answer is not None and answer.status == 404
    expect(bob.get_by_role("heading", name="Niet gevonden")).to_be_visible()
    expect(bob.get_by_text("Personeelszaken")).to_have_count(0)
    assert dialogs.seen == []


def test_markup_in_a_group_name_is_shown_as_text(new_page: Callable[[], Page],
                                                 dialogs: Dialogs) -> None:
    page = new_page()
    page.goto("/register")
    page.fill("#name", "<script>alert(2)</script>")
    page.fill("#email", email_for("mallory"))
    page.fill("#password", PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Account aanmaken").click()
    expect(page.get_by_role("heading", name="Mijn groepen")).to_be_visible()

    evil = "<img src=x onerror=alert(1)>"
    page.get_by_role("link", name="Nieuwe groep").click()
    page.fill("#name", evil)
    page.fill("#description", '"><svg onload=alert(3)>')
    page.get_by_role("button", name="Groep aanmaken").click()
    expect(page.get_by_role("heading", name=evil)).to_be_visible()
    expect(page.locator("main img")).to_have_count(0)
    expect(page.locator("main svg")).to_have_count(0)
    page.goto("/")
    expect(page.get_by_role("link", name=evil)).to_be_visible()
    expect(page.get_by_role("link", name="<script>alert(2)</script>")).to_be_visible()
    page.goto(page.get_by_role("link", name=evil).get_attribute("href") or "/")
    page.get_by_role("link", name="Naar de mappen").click()
    expect(page.get_by_role("link", name=evil)).to_be_visible()  # the breadcrumb
    assert dialogs.seen == []
