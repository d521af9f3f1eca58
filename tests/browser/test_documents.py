"""Documents in headless Chromium against the live server: uploads with progress bars, two
people co-writing one note (text converges, each sees the other's caret and presence), a
reader who cannot type, edits made offline that merge when back online, and the whole story
from registering to a second version of a PDF.

Screenshots (1280x800) go to docs/screenshots/note.png and file.png when PLEIN_SCREENSHOTS=1:

    PLEIN_SCREENSHOTS=1 pytest -m browser tests/browser/test_documents.py
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Page, ViewportSize, expect

from tests.live import Client, LiveServer

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
API = "/api/v1"
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]"
       b"/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
EDITOR = ".note-surface .ProseMirror"


def screenshot(page: Page, name: str) -> None:
    if os.environ.get("PLEIN_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"))


def email_for(name: str) -> str:
    return f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.nl"


class Dialogs:
    """Collects every alert/confirm/prompt: none should fire."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, dialog: Dialog) -> None:
        self.seen.append(dialog.message)
        dialog.dismiss()


class Browsers:
    """One browser context (own cookies) per person; API clients to set the scene."""

    def __init__(self, chromium: Browser, server: LiveServer) -> None:
        self.chromium = chromium
        self.server = server
        self.contexts: list[BrowserContext] = []
        self.clients: list[Client] = []
        self.dialogs = Dialogs()
        self.errors: list[str] = []

    def page(self, person: Client | None = None) -> Page:
        context = self.chromium.new_context(base_url=self.server.url, viewport=VIEWPORT,
                                            locale="nl-NL")
        context.set_default_timeout(15_000)
        self.contexts.append(context)
        if person is not None:
            session = person.http.cookies.get("plein_session")
            assert session, "the API client is not signed in"
            context.add_cookies([{"name": "plein_session", "value": session,
                                  "url": self.server.url}])
        page = context.new_page()
        page.on("dialog", self.dialogs)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        return page

    def person(self, name: str) -> Client:
        client = self.server.client()
        client.sign_up(name)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        for client in self.clients:
            client.close()


@pytest.fixture
def browsers(chromium: Browser, server: LiveServer) -> Iterator[Browsers]:
    made = Browsers(chromium, server)
    yield made
    made.close()
    assert made.dialogs.seen == []
    assert made.errors == []


def expect_ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


def scene(browsers: Browsers) -> dict[str, Any]:
    """Alice owns a group; Bob edits and Carol reads in the closed folder "Verbreding"."""
    alice, bob, carol = (browsers.person(n) for n in ("Alice", "Bob", "Carol"))
    group = expect_ok(alice.post(f"{API}/groups", json={"name": f"A12 {uuid.uuid4().hex[:4]}",
                                                        "access": "closed"}))
    for person in (bob, carol):
        assert person.user is not None
        expect_ok(alice.post(f"{API}/groups/{group['id']}/members",
                             json={"email": person.user["email"], "role": "member"}))
    folder = expect_ok(alice.post(f"{API}/folders/{group['root_folder_id']}/folders",
                                  json={"name": "Verbreding", "access": "closed"}))
    assert bob.user is not None and carol.user is not None
    expect_ok(alice.put(f"{API}/folders/{folder['id']}/access", json={
        "access": "closed", "members": [{"user_id": bob.user["id"], "role": "editor"},
                                        {"user_id": carol.user["id"], "role": "viewer"}]}), 200)
    return {"alice": alice, "bob": bob, "carol": carol, "group": group, "folder": folder["id"]}


def open_note(page: Page, note_id: str, *, editable: bool = True) -> None:
    page.goto(f"/documents/{note_id}")
    expect(page.locator("[data-note-editor]")).to_have_attribute("data-synced", "true")
    expect(page.locator("[data-connection-state]")).to_have_attribute("data-state", "connected")
    expect(page.locator(EDITOR)).to_have_attribute("contenteditable",
                                                   "true" if editable else "false")


def click_end_of(page: Page, text: str) -> None:
    """Put the caret at the end of the paragraph holding ``text`` (a click plus End lands
    mid-line when another person's caret sits at the line's end), then type as a person."""
    page.locator(EDITOR).locator("p", has_text=text).click()
    found = page.locator("[data-note-editor]").evaluate(
        """(root, text) => {
            const editor = root.plein.editor
            let end = null
            editor.state.doc.descendants((node, pos) => {
                const match = node.type.name === 'paragraph' && node.textContent.includes(text)
                if (end === null && match) {
                    end = pos + node.nodeSize - 1
                }
            })
            if (end !== null) editor.chain().focus().setTextSelection(end).run()
            return end !== null
        }""", text)
    assert found, text


def document_json(page: Page) -> str:
    """The editor's document (the caret labels are decorations, not text)."""
    return str(page.locator("[data-note-editor]").evaluate(
        "root => JSON.stringify(root.plein.editor.getJSON())"))


def server_text(person: Client, note_id: str) -> str:
    response = person.get(f"{API}/documents/{note_id}/content", params={"format": "text"})
    assert response.status_code == 200, response.text
    return response.text


def test_two_files_upload_at_once_with_progress(browsers: Browsers, tmp_path: Path) -> None:
    world = scene(browsers)
    first, second = tmp_path / "notulen.txt", tmp_path / "besluit.pdf"
    first.write_bytes(b"Notulen van het overleg over de A12\n" * 2000)
    second.write_bytes(PDF)
    page = browsers.page(world["bob"])
    page.goto(f"/folders/{world['folder']}")
    expect(page.get_by_text("Hier staan nog geen documenten.")).to_be_visible()
    page.set_input_files("#upload-file", [str(first), str(second)])
    items = page.locator(".upload-item")
    expect(items).to_have_count(2)
    expect(page.locator('.upload-item[data-state="done"]')).to_have_count(2)
    for index in range(2):
        expect(items.nth(index).locator("progress")).to_have_js_property("value", 100)
        expect(items.nth(index).locator(".upload-status")).to_have_text("Geüpload")
    listing = page.locator("[data-documents]")
    expect(listing.get_by_role("link", name="notulen.txt")).to_be_visible()
    expect(listing.get_by_role("link", name="besluit.pdf")).to_be_visible()
    expect(listing.get_by_role("cell", name="PDF-document")).to_be_visible()


def test_two_editors_converge_and_see_each_other(browsers: Browsers) -> None:
    world = scene(browsers)
    note = expect_ok(world["alice"].post(f"{API}/folders/{world['folder']}/notes", json={
        "title": "Advies verbreding", "text": "Alice:\n\nBob:"}))
    alice = browsers.page(world["alice"])
    bob = browsers.page(world["bob"])
    open_note(alice, note["id"])
    open_note(bob, note["id"])
    click_end_of(alice, "Alice:")
    click_end_of(bob, "Bob:")
    # Interleaved keystrokes: both are typing while the other's changes arrive.
    for word in ("een", "twee", "drie", "vier"):
        alice.keyboard.type(f" a-{word}")
        bob.keyboard.type(f" b-{word}")
    wanted = ["Alice: a-een a-twee a-drie a-vier", "Bob: b-een b-twee b-drie b-vier"]
    for page in (alice, bob):
        for line in wanted:
            expect(page.locator(EDITOR)).to_contain_text(line)
    assert document_json(alice) == document_json(bob)

    # Each sees the other's caret with their name, and both in the presence list.
    expect(alice.locator(".collaboration-carets__label", has_text="Bob")).to_be_visible()
    expect(bob.locator(".collaboration-carets__label", has_text="Alice")).to_be_visible()
    for page in (alice, bob):
        presence = page.locator("[data-presence] li")
        expect(presence).to_have_count(2)
        expect(presence.filter(has_text="Alice")).to_have_count(1)
        expect(presence.filter(has_text="Bob")).to_have_count(1)
    # Colours come from the palette as classes (no inline styles under the CSP).
    assert re.search(r"collab-color-[0-7]",
                     alice.locator(".collaboration-carets__caret").first.get_attribute("class")
                     or "")
    text = server_text(world["alice"], note["id"])
    assert all(line in text for line in wanted)


def test_a_reader_cannot_type(browsers: Browsers) -> None:
    world = scene(browsers)
    note = expect_ok(world["alice"].post(f"{API}/folders/{world['folder']}/notes", json={
        "title": "Alleen lezen", "text": "Vaststaande tekst"}))
    carol = browsers.page(world["carol"])
    open_note(carol, note["id"], editable=False)
    expect(carol.locator("[data-editor-toolbar]")).to_have_count(0)
    expect(carol.locator("[data-note-editor]")).to_have_attribute("data-readonly", "true")
    carol.locator(EDITOR).click()
    carol.keyboard.type("Carol was hier")
    carol.keyboard.press("Enter")
    expect(carol.locator(EDITOR)).not_to_contain_text("Carol was hier")

    # A later edit by an editor reaches Carol: by then anything Carol's page had sent would
    # have reached the server too, and nothing of hers is there.
    bob = browsers.page(world["bob"])
    open_note(bob, note["id"])
    click_end_of(bob, "Vaststaande tekst")
    bob.keyboard.type(" en een aanvulling")
    expect(carol.locator(EDITOR)).to_contain_text("Vaststaande tekst en een aanvulling")
    text = server_text(world["alice"], note["id"])
    assert "en een aanvulling" in text and "Carol" not in text


def test_offline_edits_merge_when_back_online(browsers: Browsers) -> None:
    world = scene(browsers)
    note = expect_ok(world["alice"].post(f"{API}/folders/{world['folder']}/notes", json={
        "title": "Onderweg", "text": "Alice:\n\nBob:"}))
    alice = browsers.page(world["alice"])
    bob = browsers.page(world["bob"])
    open_note(alice, note["id"])
    open_note(bob, note["id"])

    bob.context.set_offline(True)
    expect(bob.locator("[data-connection-state]")).to_have_attribute("data-state",
                                                                     "disconnected")
    click_end_of(bob, "Bob:")
    bob.keyboard.type(" geschreven in de trein")
    click_end_of(alice, "Alice:")
    alice.keyboard.type(" op kantoor")
    expect(bob.locator(EDITOR)).to_contain_text("Bob: geschreven in de trein")
    expect(alice.locator(EDITOR)).to_contain_text("Alice: op kantoor")
    # Really apart: neither has the other's words yet.
    assert "op kantoor" not in document_json(bob)
    assert "trein" not in document_json(alice)

    bob.context.set_offline(False)
    expect(bob.locator("[data-connection-state]")).to_have_attribute("data-state", "connected")
    for page in (alice, bob):
        expect(page.locator(EDITOR)).to_contain_text("Alice: op kantoor")
        expect(page.locator(EDITOR)).to_contain_text("Bob: geschreven in de trein")
    text = server_text(world["alice"], note["id"])
    assert "geschreven in de trein" in text and "op kantoor" in text


def register(page: Page, name: str, email: str) -> None:
    page.goto("/register")
    page.fill("#name", name)
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Account aanmaken").click()
    expect(page.get_by_role("heading", name="Mijn groepen")).to_be_visible()


def test_the_story_from_registering_to_a_second_pdf_version(browsers: Browsers,
                                                            tmp_path: Path) -> None:
    # Bob has an account already; Alice registers and starts a closed group.
    bob_email = email_for("bob")
    bob_client = browsers.server.client()
    bob_client.sign_up("Bob Jansen", email=bob_email)
    browsers.clients.append(bob_client)
    alice = browsers.page()
    register(alice, "Alice de Vries", email_for("alice"))
    alice.get_by_role("link", name="Nieuwe groep").click()
    alice.fill("#name", f"Verbreding A12 {uuid.uuid4().hex[:4]}")
    alice.fill("#description", "Advies over de verbreding tussen Ede en Grijsoord.")
    alice.check("#access-closed")
    alice.get_by_role("button", name="Groep aanmaken").click()
    alice.fill("#add-email", bob_email)
    alice.select_option("#add-role", "member")
    alice.get_by_role("button", name="Toevoegen", exact=True).click()
    expect(alice.locator("#members").get_by_role("cell", name="Bob Jansen", exact=True)
           ).to_be_visible()

    alice.get_by_role("link", name="Naar de mappen").click()
    alice.fill("#new-name", "Werkstukken")
    alice.check("#new-open")
    alice.get_by_role("button", name="Map aanmaken").click()
    alice.get_by_role("link", name="Werkstukken").click()
    folder_url = alice.url

    # A note, written together.
    alice.fill("#note-title-input", "Advies aan de minister")
    alice.get_by_role("button", name="Notitie maken").click()
    expect(alice.get_by_role("heading", name="Advies aan de minister")).to_be_visible()
    note_url = alice.url
    expect(alice.locator("[data-note-editor]")).to_have_attribute("data-synced", "true")
    alice.locator(EDITOR).click()
    alice.get_by_role("button", name="Kop 1").click()
    expect(alice.get_by_role("button", name="Kop 1")).to_have_attribute("aria-pressed", "true")
    alice.keyboard.type("Advies verbreding A12")
    alice.keyboard.press("Enter")
    alice.keyboard.type("De verbreding is nodig voor de doorstroming.")

    bob = browsers.page(bob_client)
    bob.goto(note_url)
    expect(bob.locator(EDITOR)).to_contain_text("De verbreding is nodig voor de doorstroming.")
    expect(bob.locator("[data-connection-state]")).to_have_attribute("data-state", "connected")
    click_end_of(bob, "De verbreding is nodig")
    bob.keyboard.press("Enter")
    bob.keyboard.type("Bob: en de geluidsschermen komen er ook.")
    expect(alice.locator(EDITOR)).to_contain_text("geluidsschermen")
    click_end_of(alice, "De verbreding is nodig")
    expect(alice.locator(".collaboration-carets__label", has_text="Bob Jansen")).to_be_visible()
    expect(bob.locator(".collaboration-carets__label", has_text="Alice de Vries")
           ).to_be_visible()
    # Bob selects a word: Alice sees his selection in his colour.
    bob.locator("[data-note-editor]").evaluate("""root => {
        const editor = root.plein.editor
        editor.state.doc.descendants((node, pos) => {
            const at = node.isText ? node.text.indexOf('geluidsschermen') : -1
            const range = {from: pos + at, to: pos + at + 15}
            if (at >= 0) editor.chain().focus().setTextSelection(range).run()
        })
    }""")
    expect(alice.locator(".collaboration-carets__selection")).to_have_text("geluidsschermen")
    screenshot(alice, "note")

    # Two named versions, and what changed between them.
    alice.fill("#snapshot-label", "Eerste concept")
    alice.get_by_role("button", name="Versie bewaren").click()
    expect(alice.locator("#versions").get_by_text("Eerste concept")).to_be_visible()
    expect(alice.locator("[data-note-editor]")).to_have_attribute("data-synced", "true")
    click_end_of(alice, "geluidsschermen")
    alice.keyboard.press("Enter")
    alice.keyboard.type("Besluit volgt in juni.")
    expect(bob.locator(EDITOR)).to_contain_text("Besluit volgt in juni.")
    alice.fill("#snapshot-label", "Tweede concept")
    alice.get_by_role("button", name="Versie bewaren").click()
    expect(alice.locator("#versions").get_by_text("Tweede concept")).to_be_visible()
    alice.get_by_role("button", name="Vergelijken").click()
    expect(alice.locator(".diff-add")).to_have_count(1)
    expect(alice.locator(".diff-add")).to_contain_text("Besluit volgt in juni.")

    # A PDF, uploaded with the page's upload form, then a new version of it.
    first, second = tmp_path / "advies.pdf", tmp_path / "advies-v2.pdf"
    first.write_bytes(PDF)
    second.write_bytes(PDF.replace(b"%%EOF", b"% tweede versie\n%%EOF"))
    alice.goto(folder_url)
    alice.set_input_files("#upload-file", str(first))
    expect(alice.locator('.upload-item[data-state="done"]')).to_have_count(1)
    alice.locator("[data-documents]").get_by_role("link", name="advies.pdf").click()
    expect(alice.get_by_role("heading", name="advies.pdf")).to_be_visible()
    alice.set_input_files("#upload-file", str(second))
    current = alice.locator("#versions tr.current")
    expect(current.locator("th")).to_contain_text("2")
    expect(alice.locator("#versions tbody tr")).to_have_count(2)
    alice.fill("#label-1", "Zoals ingediend")
    alice.locator("#version-1").get_by_role("button", name="Opslaan").click()
    expect(alice.locator("#label-1")).to_have_value("Zoals ingediend")
    alice.goto(alice.url.split("#")[0])
    screenshot(alice, "file")
