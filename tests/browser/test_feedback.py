"""Honest feedback in headless Chromium (issue 17): a save is confirmed on the page it lands
on; a name pasted past its limit says the limit instead of being cut without a word; an empty
file is refused with its reason in the upload list; the not-found page says one sentence;
no page asks for a favicon that is not there."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Page, Response, expect

from tests.browser.test_documents import API, Browsers, browsers, expect_ok  # noqa: F401

pytestmark = pytest.mark.browser


def watch_missing(page: Page) -> list[str]:
    """URLs the page fetched that answered 404 (the favicon was one, on every page)."""
    missing: list[str] = []

    def seen(response: Response) -> None:
        if response.status == 404:
            missing.append(response.url)

    page.on("response", seen)
    return missing


def test_saves_limits_and_refusals_are_said(browsers: Browsers) -> None:  # noqa: F811
    alice = browsers.person("Alice")
    group = expect_ok(alice.post(f"{API}/groups", json={
        "name": f"Wijkraad {uuid.uuid4().hex[:4]}", "access": "closed"}))
    page = browsers.page(alice)
    missing = watch_missing(page)
    page.goto(f"/groups/{group['id']}")

    # Pasting a name longer than 120 characters: the field keeps 120 and says so.
    name = page.locator("#settings-name")
    name.fill("")
    name.focus()
    page.keyboard.insert_text("W" * 130)
    assert len(name.input_value()) == 120
    expect(page.locator("#settings-name-limit")).to_have_text(
        "Hoogstens 120 tekens: wat langer is, wordt afgeknipt.")
    name.fill("Wijkraad Noord")
    expect(page.locator("#settings-name-limit")).to_be_hidden()

    # Saving is confirmed.
    page.locator("#settings-description").fill("Overleg over de wijk")
    page.locator("#settings form button[type=submit]").first.click()
    expect(page.get_by_role("status").filter(
        has_text="De groepsinstellingen zijn opgeslagen.")).to_be_visible()
    expect(page.get_by_role("heading", name="Wijkraad Noord")).to_be_visible()

    # An empty file is refused with its reason, per file.
    page.goto(f"/folders/{group['root_folder_id']}")
    page.locator("#upload-file").set_input_files(
        files=[{"name": "leeg.txt", "mimeType": "text/plain", "buffer": b""}])
    expect(page.get_by_text("Niet opgeslagen: het bestand is leeg (0 bytes)")).to_be_visible()

    # A folder nobody may see (or that never was): one sentence, the same for both.
    answer = page.goto("/folders/bestaatnooit")
    assert answer is not None and answer.status == 404
    main = page.locator("main")
    expect(main).to_contain_text(
        "Deze pagina is niet gevonden: ze bestaat niet, of je hebt er geen toegang toe.")
    expect(main).not_to_contain_text("Deze map bestaat niet.")
    assert [url for url in missing if "bestaatnooit" not in url] == []


def test_trashing_a_folder_is_confirmed_and_its_old_link_offers_to_restore(
        browsers: Browsers) -> None:  # noqa: F811
    alice = browsers.person("Alice")
    group = expect_ok(alice.post(f"{API}/groups", json={
        "name": f"Raad {uuid.uuid4().hex[:4]}", "access": "closed"}))
    folder = expect_ok(alice.post(f"{API}/folders/{group['root_folder_id']}/folders",
                                  json={"name": "Notulen 2024"}))
    expect_ok(alice.post(f"{API}/folders/{folder['id']}/notes", json={"title": "Mei"}))
    page = browsers.page(alice)
    page.goto(f"/folders/{folder['id']}")
    page.get_by_role("button", name="Naar de prullenbak…").click()
    expect(page.get_by_role("heading", name="“Notulen 2024” naar de prullenbak verplaatsen?")
           ).to_be_visible()
    expect(page.locator("#trash-contents")).to_have_text(
        "Er staat 1 document in en 0 submappen.", use_inner_text=True)
    page.get_by_role("button", name="Naar de prullenbak", exact=True).click()
    page.goto(f"/groups/{group['id']}/trash")
    expect(page.locator(".trashed-by").first).to_have_text("Alice")
    page.goto(f"/folders/{folder['id']}")
    expect(page.get_by_role("heading", name="“Notulen 2024” staat in de prullenbak")
           ).to_be_visible()
    page.get_by_role("main").get_by_role("button", name="Terugzetten").click()
    expect(page.get_by_role("heading", name="Notulen 2024")).to_be_visible()
    expect(page.get_by_role("link", name="Mei")).to_be_visible()


def test_without_mail_the_owner_copies_the_invitation_link_and_the_added_are_told(
        browsers: Browsers) -> None:  # noqa: F811
    """Issue 17: with no mail server an invitation went nowhere without a word. The owner sees
    the link, copies it, the newcomer opens it and is in; an existing account added is told
    in Plein who added them."""
    alice = browsers.person("Alice")
    bob = browsers.person("Bob")
    group = expect_ok(alice.post(f"{API}/groups", json={
        "name": f"Buurt {uuid.uuid4().hex[:4]}", "access": "closed"}))
    page = browsers.page(alice)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                   origin=browsers.server.url)
    page.goto(f"/groups/{group['id']}")
    address = f"nieuw-{uuid.uuid4().hex[:8]}@example.nl"
    page.locator("#add-email").fill(address)
    page.get_by_role("button", name="Toevoegen", exact=True).click()
    expect(page.locator(".invite-link")).to_contain_text(
        f"er is dus geen uitnodiging naar {address} gestuurd")
    link = page.locator("#invite-link").input_value()
    assert "/invite?token=" in link
    page.get_by_role("button", name="Kopiëren").click()
    expect(page.get_by_text("Gekopieerd.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == link

    newcomer = browsers.server.client()
    browsers.clients.append(newcomer)
    newcomer.sign_up("Nieuw", email=address)
    other = browsers.page(newcomer)
    other.goto(link[link.index("/invite?"):])
    other.get_by_role("button", name="Uitnodiging aannemen").click()
    expect(other.get_by_role("heading", name=group["name"])).to_be_visible()

    # An existing account is added at once, and told by whom.
    page.goto(f"/groups/{group['id']}")
    page.locator("#add-email").fill(str(bob.user["email"] if bob.user else ""))
    page.get_by_role("button", name="Toevoegen", exact=True).click()
    bobs = browsers.page(bob)
    bobs.goto("/notifications")
    expect(bobs.locator(".notification-text")).to_contain_text(
        f"Alice heeft je toegevoegd aan de groep “{group['name']}”")
    bobs.get_by_role("button", name="Naar de groep").click()
    expect(bobs.get_by_role("heading", name=group["name"])).to_be_visible()
