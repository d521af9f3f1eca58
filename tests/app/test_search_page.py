"""The search page (``/search``) and the search boxes: the header's on every page, the folder
page's "search in this folder". Rendered by the real server, read as HTML."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.app.helpers import API, add_member, expect, make_folder, make_group, uploaded
from tests.app.test_access_matrix_search import misspell
from tests.app.test_search_api import (
    note,
    ten_page_pdf,
    wait_found,
    wait_search,
    word,
)
from tests.live import Client, unique

HOSTILE = "<img src=x onerror=alert(1)>"


def page(client: Client, **params: Any) -> str:
    response = client.get("/search", params=params)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def result_links(text: str) -> list[str]:
    return re.findall(r'<h3 class="search-result-title"><a href="/documents/([^"]+)">', text)


@pytest.fixture
def world(cast: Callable[[str], Client]) -> dict[str, Any]:
    """Alice owns a group with a closed folder ("Dicht", Carol may view); Dave is a member of
    the group but not of the folder; Erin is outside the group."""
    alice, carol, dave, erin = (cast(n) for n in ("Alice", "Carol", "Dave", "Erin"))
    group = make_group(alice, unique("Zoekgroep"))
    for person in (carol, dave):
        add_member(alice, group["id"], person)
    closed = make_folder(alice, group["root_folder_id"], "Dicht", members=[(carol, "viewer")])
    return {"alice": alice, "carol": carol, "dave": dave, "erin": erin, "group": group,
            "root": group["root_folder_id"], "closed": closed["id"]}


def test_every_page_has_the_search_box_in_its_header(world: dict[str, Any],
                                                     anonymous: Client) -> None:
    alice = world["alice"]
    for path in ("/", f"/groups/{world['group']['id']}", f"/folders/{world['root']}",
                 "/profile", "/search"):
        text = expect_html(alice, path)
        header = text.split('<header class="site-header">', 1)[1].split("</header>", 1)[0]
        assert '<form method="get" action="/search" class="site-search" role="search">' in header
        assert re.search(r'<input type="search" id="site-search-q" name="q"[^>]*'
                         r'aria-label="Zoeken in Plein">', header), header
    # Signed out there is nothing to search: no box, and the page sends you to sign in.
    assert "site-search" not in expect_html(anonymous, "/login")
    response = anonymous.get("/search", params={"q": "dijk"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/search%3Fq%3Ddijk"


def expect_html(client: Client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.text


def test_results_show_title_kind_snippet_and_page(world: dict[str, Any]) -> None:
    alice, carol = world["alice"], world["carol"]
    term = word("sluisdeur")
    pdf = uploaded(alice, world["closed"], "rapport.pdf", ten_page_pdf(term), "application/pdf")
    memo = note(alice, world["root"], "Memo", f"De {term} is vervangen.")
    wait_found(alice, term, pdf["id"])
    wait_found(carol, term, memo["id"])
    text = page(carol, q=term)
    assert sorted(result_links(text)) == sorted([pdf["id"], memo["id"]])
    assert "2 resultaten" in text
    assert '<a href="/documents/' + pdf["id"] + '">' in text and "rapport.pdf</a>" in text
    assert "PDF-document" in text and "Notitie" in text
    assert '<span class="search-result-page">pagina 7</span>' in text
    assert text.count("search-result-page") == 1  # a note has no pages
    assert f"<mark>{term}</mark>" in text
    assert html.escape(world["group"]["name"]) in text
    # English with the cookie.
    carol.http.cookies.set("plein_lang", "en")
    try:
        english = page(carol, q=term)
    finally:
        carol.http.cookies.delete("plein_lang")
    assert "2 results" in english and "page 7" in english and "PDF document" in english


def test_a_hostile_title_and_body_are_escaped(world: dict[str, Any]) -> None:
    alice = world["alice"]
    term = word("gevaar")
    doc = note(alice, world["root"], f"{HOSTILE} {term}", f"Tekst {HOSTILE} met {term}.")
    uploaded(alice, world["root"], f"{HOSTILE}.txt", f"{HOSTILE} {term}".encode(), "text/plain")
    wait_found(alice, term, doc["id"])
    text = page(alice, q=term)
    assert len(result_links(text)) == 2
    assert HOSTILE not in text and "<img" not in text
    assert html.escape(HOSTILE, quote=False) in text or html.escape(HOSTILE) in text
    # The header box and the page's title carry the query escaped too.
    hostile_query = page(alice, q=f'{term} "><script>alert(1)</script>')
    assert "<script>alert(1)" not in hostile_query


def test_an_outsider_and_a_member_outside_the_folder_see_nothing(world: dict[str, Any]) -> None:
    alice, dave, erin = world["alice"], world["dave"], world["erin"]
    term = word("geheim")
    doc = note(alice, world["closed"], f"Nota {term}", f"Alleen voor de map: {term}.")
    wait_found(alice, term, doc["id"])
    for person in (dave, erin):
        for query in (term, misspell(term), f"{term[:10]}*"):
            text = page(person, q=query)
            assert result_links(text) == [] and "Geen resultaten." in text
            assert "0 resultaten" in text
            assert term not in text.replace(query, ""), "the title or a suggestion leaked"
            assert "Bedoelde u" not in text
    # Scoped to the closed folder: that folder's page is not readable, so neither is its search.
    assert dave.get("/search", params={"q": term, "folder": world["closed"]}).status_code == 404


def test_did_you_mean_links_to_the_corrected_search(world: dict[str, Any]) -> None:
    alice = world["alice"]
    term = word("waterberging")
    doc = note(alice, world["root"], "Berging", f"De {term} bij de polder.")
    wait_found(alice, term, doc["id"])
    text = page(alice, q=misspell(term))
    assert "Geen resultaten." in text
    assert f'Bedoelde u: <a href="/search?q={term}">{term}</a>' in text
    assert result_links(page(alice, q=term)) == [doc["id"]]


def test_filters_scope_and_paging(world: dict[str, Any]) -> None:
    alice = world["alice"]
    other = make_group(alice, unique("Andere"))
    sub = make_folder(alice, world["root"], "Sub")
    term = word("stuw")
    notes = [note(alice, sub["id"], f"Stuw {n}", term)["id"] for n in range(22)]
    file_doc = uploaded(alice, world["root"], "stuw.txt", term.encode(), "text/plain")["id"]
    elsewhere = note(alice, other["root_folder_id"], "Elders", term)["id"]
    wait_search(alice, term, lambda f: f["total"] == 24)

    first = page(alice, q=term)
    assert "24 resultaten" in first and len(result_links(first)) == 20
    assert "Pagina 1 van 2" in first and 'rel="next"' in first and 'rel="prev"' not in first
    second = page(alice, q=term, page=2)
    assert len(result_links(second)) == 4 and 'rel="prev"' in second
    assert set(result_links(first)) | set(result_links(second)) == {*notes, file_doc, elsewhere}

    assert result_links(page(alice, q=term, kind="file")) == [file_doc]
    assert result_links(page(alice, q=term, group=other["id"])) == [elsewhere]
    in_sub = page(alice, q=term, folder=sub["id"], kind="note")
    assert "22 resultaten" in in_sub and "In map Sub" in in_sub
    assert f'<input type="hidden" name="folder" value="{sub["id"]}">' in in_sub
    # The group filter offers my groups only.
    options = re.findall(r'<option value="([^"]*)"', page(alice, q=term))
    assert world["group"]["id"] in options and other["id"] in options


def test_the_folder_page_searches_in_that_folder(world: dict[str, Any]) -> None:
    alice = world["alice"]
    text = expect_html(alice, f"/folders/{world['closed']}")
    form = text.split('<form method="get" action="/search" class="folder-search"', 1)[1]
    form = form.split("</form>", 1)[0]
    assert f'<input type="hidden" name="folder" value="{world["closed"]}">' in form
    assert '<label for="folder-search-q">Zoeken in deze map</label>' in form
    term = word("mapzoek")
    inside = note(alice, world["closed"], "Binnen", term)["id"]
    outside = note(alice, world["root"], "Buiten", term)["id"]
    wait_found(alice, term, outside)
    wait_found(alice, term, inside)
    assert result_links(page(alice, q=term, folder=world["closed"])) == [inside]


def test_an_unsearchable_query_is_explained(world: dict[str, Any]) -> None:
    response = world["alice"].get("/search", params={"q": '-"alleen uitsluiten"'})
    assert response.status_code == 400
    assert "Typ een of meer woorden om naar te zoeken." in response.text
    assert 'aria-invalid="true"' in response.text
    empty = page(world["alice"], q="")
    assert "Typ een of meer woorden om naar te zoeken." in empty and "resultaten" not in empty
    expect(world["alice"].get(f"{API}/search", params={"q": "dijk"}), 200)
