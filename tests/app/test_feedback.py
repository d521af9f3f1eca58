"""Honest feedback (issue 17): a name over its limit is refused whole with the limit said (API:
400 ``name_too_long`` with ``limit``; pages: the form's message), never cut to fit; an empty
upload is refused (``empty_file``); a save is confirmed on the page it lands on; the sign-in
throttle says how long to wait; a 404 page says one thing; /favicon.ico is served.

People: alice owns the group, dave is outside it."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.pages.account import wait_message
from tests.app.helpers import (
    API,
    add_member,
    expect,
    expect_error,
    make_folder,
    make_group,
    upload,
)
from tests.app.test_document_pages import csrf_of, post_form, upload_action
from tests.live import Client, LiveServer, unique

PASSWORD = "correct horse battery staple"


def text_of(response: httpx.Response) -> str:
    return html.unescape(response.text)


@pytest.fixture(scope="module")
def place(cast: Callable[[str], Client]) -> dict[str, Any]:
    alice = cast("Alice")
    group = make_group(alice, unique("Wijkraad"))
    folder = make_folder(alice, group["root_folder_id"], "Stukken")
    return {"group": group, "folder": folder["id"]}


@pytest.mark.parametrize(("path", "field", "limit"), [
    ("groups", "name", 120), ("folder", "name", 200), ("note", "title", 300)])
def test_api_refuses_a_name_over_its_limit_and_says_the_limit(
        cast: Callable[[str], Client], place: dict[str, Any], path: str, field: str,
        limit: int) -> None:
    alice = cast("Alice")
    url = {"groups": f"{API}/groups", "folder": f"{API}/folders/{place['folder']}/folders",
           "note": f"{API}/folders/{place['folder']}/notes"}[path]
    extra = {"access": "closed"} if path == "groups" else {}
    error = expect_error(alice.post(url, json={field: "x" * (limit + 1), **extra}), 400,
                         "name_too_long", field)
    assert error["limit"] == limit and str(limit) in error["message"]
    expect(alice.post(url, json={field: "x" * limit, **extra}), 201)


def test_api_refuses_an_upload_title_over_its_limit(cast: Callable[[str], Client],
                                                    place: dict[str, Any]) -> None:
    alice = cast("Alice")
    answer = alice.post(f"{API}/folders/{place['folder']}/files", data={"title": "t" * 301},
                        files={"file": ("a.txt", b"inhoud", "text/plain")})
    assert expect_error(answer, 400, "name_too_long", "title")["limit"] == 300


def test_page_says_the_limit_of_a_name_and_keeps_nothing(cast: Callable[[str], Client],
                                                         place: dict[str, Any]) -> None:
    alice = cast("Alice")
    gid = place["group"]["id"]
    refused = post_form(alice, f"/groups/{gid}", f"/groups/{gid}/settings",
                        {"name": "n" * 121, "description": "", "access": "closed"})
    assert refused.status_code == 400
    assert "Naam: is te lang: hoogstens 120 tekens" in text_of(refused)
    assert expect(alice.get(f"{API}/groups/{gid}"), 200)["name"] == place["group"]["name"]


def test_page_refuses_an_empty_upload(cast: Callable[[str], Client],
                                      place: dict[str, Any]) -> None:
    alice = cast("Alice")
    page = alice.http.get(f"/folders/{place['folder']}")
    answer = alice.http.post(upload_action(page),
                             files=[("file", ("leeg.txt", b"", "text/plain"))])
    assert answer.status_code == 400
    assert "Het bestand is leeg (0 bytes); er is niets opgeslagen." in text_of(answer)
    listing = expect(alice.get(f"{API}/folders/{place['folder']}"), 200)["documents"]
    assert "leeg.txt" not in [d["title"] for d in listing]


def test_api_empty_upload_is_refused(cast: Callable[[str], Client],
                                     place: dict[str, Any]) -> None:
    expect_error(upload(cast("Alice"), place["folder"], "leeg.bin", b""), 400, "empty_file",
                 "file")


def test_saves_are_confirmed(cast: Callable[[str], Client], place: dict[str, Any]) -> None:
    alice = cast("Alice")
    gid, fid = place["group"]["id"], place["folder"]
    saved = post_form(alice, f"/groups/{gid}", f"/groups/{gid}/settings",
                      {"name": place["group"]["name"], "description": "Nieuw",
                       "access": "closed"})
    assert saved.status_code == 303
    assert "De groepsinstellingen zijn opgeslagen." in text_of(
        alice.http.get(saved.headers["location"]))
    renamed = post_form(alice, f"/folders/{fid}", f"/folders/{fid}/rename", {"name": "Stukken"})
    assert renamed.status_code == 303
    assert "De nieuwe naam is opgeslagen." in text_of(alice.http.get(renamed.headers["location"]))
    # Only known keys: a link cannot make a page say something of its own.
    assert "saved-notice" not in alice.http.get(f"/folders/{fid}?saved=<b>hoi</b>").text


# -- the sign-in throttle says how long -------------------------------------------------------

def test_sign_in_throttle_says_how_long_to_wait(fresh_server: LiveServer) -> None:
    email = f"{unique('tess')}@example.nl"
    with httpx.Client(base_url=fresh_server.url) as http:
        expect(http.post(f"{API}/users", json={"email": email, "name": "Tess",
                                               "password": PASSWORD}), 201)
        http.cookies.clear()
        wrong = {"email": email, "password": "wrong password"}
        for _ in range(3):  # settings.login_free_failures
            expect_error(http.post(f"{API}/session", json=wrong), 401)
        limited = http.post(f"{API}/session", json=wrong)
        error = expect_error(limited, 429, "rate_limited")
        assert error["retry_after"] == int(limited.headers["Retry-After"]) >= 1
        # The sign-in page says it in words, with the number.
        shown = http.get("/login")
        page = http.post("/login", data={**wrong, "csrf_token": csrf_of(shown)})
        assert page.status_code == 429
        assert re.search(r"probeer het over \d+ seconden? opnieuw", text_of(page)), page.text


def test_the_wait_is_said_in_minutes_once_it_is_long() -> None:
    assert wait_message("nl", 1) == ("Te veel mislukte aanmeldpogingen; probeer het over 1 "
                                     "seconde opnieuw.")
    assert wait_message("nl", 125).endswith("over 3 minuten opnieuw.")
    assert wait_message("en", 60).endswith("try again in 1 minute.")


# -- not found, favicon --------------------------------------------------------------------------

def test_not_found_page_says_one_thing_that_reveals_nothing(cast: Callable[[str], Client],
                                                            place: dict[str, Any]) -> None:
    outsider = cast("Dave")
    sentence = "Deze pagina is niet gevonden: ze bestaat niet, of je hebt er geen toegang toe."
    hidden = outsider.http.get(f"/folders/{place['folder']}")
    missing = outsider.http.get("/folders/doesnotexist")
    assert hidden.status_code == missing.status_code == 404
    for answer in (hidden, missing):
        main = text_of(answer).split('<main id="main"', 1)[1].split("</main>", 1)[0]
        assert sentence in main
        assert "bestaat niet." not in main.replace(sentence, "")  # no "Deze map bestaat niet."
    assert hidden.text.replace(place["folder"], "") == missing.text.replace("doesnotexist", "")
    outsider.http.cookies.set("plein_lang", "en")
    english = text_of(outsider.http.get("/folders/doesnotexist"))
    assert ("This page was not found: it does not exist, or you do not have access to it."
            in english)
    outsider.http.cookies.delete("plein_lang")


def test_favicon_is_served(anonymous: Client) -> None:
    icon = anonymous.http.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert 'href="/static/favicon.svg"' in anonymous.http.get("/login").text
    svg = anonymous.http.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")


# -- the trash says who -----------------------------------------------------------------------

def test_the_trash_list_says_who_moved_each_item(cast: Callable[[str], Client]) -> None:
    alice, bob = cast("Alice"), cast("Bob")
    group = make_group(alice, unique("Archief"))
    add_member(alice, group["id"], bob)
    old = make_folder(alice, group["root_folder_id"], "Oud 2019")
    doc = expect(upload(bob, group["root_folder_id"], "kladje.txt", b"klad\n"), 201)
    expect(alice.delete(f"{API}/folders/{old['id']}"), 204)
    expect(bob.delete(f"{API}/documents/{doc['id']}"), 204)
    trash = text_of(alice.http.get(f"/groups/{group['id']}/trash"))
    rows = {cells[0]: cells for cells in (
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>",
                                                                       row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", trash, re.S)) if cells}
    assert rows["Oud 2019"][2] == "Alice"
    assert rows["kladje.txt"][3] == "Bob"


def test_trashing_a_folder_is_confirmed_with_what_it_holds(cast: Callable[[str], Client]
                                                           ) -> None:
    alice = cast("Alice")
    group = make_group(alice, unique("Dossier"))
    top = make_folder(alice, group["root_folder_id"], "Project A12")
    sub = make_folder(alice, top["id"], "Bijlagen")
    make_folder(alice, sub["id"], "Kaarten")
    for folder, name in ((top, "a.txt"), (top, "b.txt"), (sub, "c.txt")):
        expect(upload(alice, folder["id"], name, b"inhoud\n"), 201)
    folder_page = alice.http.get(f"/folders/{top['id']}")
    assert f'<form method="get" action="/folders/{top["id"]}/trash">' in folder_page.text
    confirm = text_of(alice.http.get(f"/folders/{top['id']}/trash"))
    assert "“Project A12” naar de prullenbak verplaatsen?" in confirm
    said = re.sub(r"\s+", " ", confirm.split('id="trash-contents">', 1)[1].split("</p>")[0])
    assert said.strip() == "Er staan 3 documenten in en 2 submappen."
    # Nothing is trashed by looking; the confirmation's own form does it.
    assert expect(alice.get(f"{API}/folders/{top['id']}"), 200)["name"] == "Project A12"
    # A member who made none of it is told before confirming, with no button to press.
    bob = cast("Bob")
    add_member(alice, group["id"], bob)
    refused = text_of(bob.http.get(f"/folders/{top['id']}/trash"))
    assert 'id="trash-refused"' in refused and 'method="post"' not in refused.split(
        '<main', 1)[1].split("</main>")[0]
    assert 'id="trash-refused"' not in confirm
    done = post_form(alice, f"/folders/{top['id']}/trash", f"/folders/{top['id']}/trash")
    assert done.status_code == 303
    expect_error(alice.get(f"{API}/folders/{top['id']}"), 404)


def test_an_old_link_to_a_trashed_item_offers_to_restore(cast: Callable[[str], Client]) -> None:
    alice, bob, dave = cast("Alice"), cast("Bob"), cast("Dave")
    group = make_group(alice, unique("Raad"))
    add_member(alice, group["id"], bob)
    folder = make_folder(alice, group["root_folder_id"], "Notulen 2024")
    doc = expect(upload(alice, folder["id"], "verslag.txt", b"verslag\n"), 201)
    expect(alice.delete(f"{API}/folders/{folder['id']}"), 204)
    url = f"/folders/{folder['id']}"
    shown = alice.http.get(url)
    assert shown.status_code == 200
    page = text_of(shown)
    assert "“Notulen 2024” staat in de prullenbak" in page
    assert "Alice heeft het naar de prullenbak van" in page
    assert f'action="/folders/{folder["id"]}/restore"' in page
    # Someone who may not restore it (outside the group) gets the 404 of a missing folder.
    assert dave.http.get(url).status_code == 404
    assert "prullenbak" not in text_of(dave.http.get(url)).split('<main', 1)[1]
    # A document inside the trashed folder: the folder is what comes back, so a plain 404.
    assert alice.http.get(f"/documents/{doc['id']}").status_code == 404
    # Restoring from there brings the folder back.
    back = post_form(alice, url, f"{url}/restore")
    assert back.status_code == 303 and alice.http.get(url).status_code == 200
    # A trashed document's own link, for a member who may restore it.
    expect(alice.delete(f"{API}/documents/{doc['id']}"), 204)
    assert "“verslag.txt” staat in de prullenbak" in text_of(
        bob.http.get(f"/documents/{doc['id']}"))
