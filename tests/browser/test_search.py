"""Search in headless Chromium: the end of the newcomer story. Alice uploads a ten-page PDF into
a closed folder and finds it through the header's search box, on page 7; Dave, a member of the
group but not of the folder, searches the same word and sees no results -- and nothing of the
PDF is anywhere in his page's HTML.

A screenshot (1280x800) goes to docs/screenshots/search.png when PLEIN_SCREENSHOTS=1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.app.helpers import add_member, make_folder, make_group
from tests.app.test_search_api import ten_page_pdf, wait_found, word
from tests.live import Client, LiveServer, unique

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


class People:
    """API clients to set the scene; one browser context (own cookies) per person."""

    def __init__(self, chromium: Browser, server: LiveServer) -> None:
        self.chromium, self.server = chromium, server
        self.clients: list[Client] = []
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def person(self, name: str) -> Client:
        client = self.server.client()
        client.sign_up(name)
        self.clients.append(client)
        return client

    def page(self, person: Client) -> Page:
        context = self.chromium.new_context(base_url=self.server.url, viewport=VIEWPORT,
                                            locale="nl-NL")
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        session = person.http.cookies.get("plein_session")
        assert session, "the API client is not signed in"
        context.add_cookies([{"name": "plein_session", "value": session,
                              "url": self.server.url}])
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("dialog", lambda dialog: self.errors.append(f"dialog: {dialog.message}"))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        for client in self.clients:
            client.close()


@pytest.fixture
def people(chromium: Browser, server: LiveServer) -> Iterator[People]:
    made = People(chromium, server)
    yield made
    made.close()
    assert made.errors == []


def search_from_header(page: Page, query: str) -> None:
    box = page.get_by_role("search").get_by_label("Zoeken in Plein")
    box.fill(query)
    box.press("Enter")
    page.wait_for_url("**/search?q=*")


def test_alice_finds_page_7_and_dave_outside_the_folder_finds_nothing(
        people: People, tmp_path: Path) -> None:
    alice, dave = people.person("Alice"), people.person("Dave")
    group = make_group(alice, unique("Verbreding A12"))
    add_member(alice, group["id"], dave)
    folder = make_folder(alice, group["root_folder_id"], "Onderzoek", members=[])
    term = word("kwelscherm")
    pdf = tmp_path / "onderzoek-a12.pdf"
    pdf.write_bytes(ten_page_pdf(term))

    page = people.page(alice)
    page.goto(f"/folders/{folder['id']}")
    page.set_input_files("#upload-file", str(pdf))
    expect(page.locator('.upload-item[data-state="done"]')).to_have_count(1)
    listing = page.locator("[data-documents]").get_by_role("link", name="onderzoek-a12.pdf")
    expect(listing).to_be_visible()
    href = listing.get_attribute("href")
    assert href is not None
    wait_found(alice, term, href.rsplit("/", 1)[1])  # indexing runs behind the upload

    search_from_header(page, term)
    results = page.locator(".search-result")
    expect(results).to_have_count(1)
    expect(page.get_by_role("heading", name="1 resultaat")).to_be_visible()
    expect(results.get_by_role("link", name="onderzoek-a12.pdf")).to_have_attribute("href", href)
    expect(results.locator(".search-result-page")).to_have_text("pagina 7")
    expect(results.locator(".snippet mark")).to_have_text(term)
    if os.environ.get("PLEIN_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "search.png"))
    results.get_by_role("link", name="onderzoek-a12.pdf").click()
    page.wait_for_url(f"**{href}")

    outside = people.page(dave)
    outside.goto(f"/groups/{group['id']}")
    search_from_header(outside, term)
    expect(outside.get_by_text("Geen resultaten.")).to_be_visible()
    expect(outside.locator(".search-result")).to_have_count(0)
    source = outside.content()
    assert "onderzoek-a12" not in source and "<mark>" not in source
    assert "pagina 7" not in source.lower() and "waterschap" not in source.lower()
    # The word itself appears only where Dave typed it: the page's title and the search field.
    rest = source.replace(f"<title>Zoeken: {term} · Plein</title>", "")
    rest = rest.replace(f'name="q" value="{term}"', "")
    assert term not in rest
