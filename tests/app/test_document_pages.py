"""The document pages against a live server: the folder's document list, uploads without
JavaScript (the CSRF token in the form's action), the file page with its versions, the note
page (editor container, read-only for viewers), the trash, and who sees nothing at all.

People: alice owns the group, bob edits and carol only reads in a closed folder, dave is a
member who is not listed on it, erin is outside the group."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.app.helpers import API, add_member, expect, make_folder, make_group, uploaded
from tests.live import Client, unique

PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]"
       b"/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
UPLOAD_ACTION = re.compile(r'action="(/(?:folders|documents)/[^"/]+/upload\?csrf_token=[0-9a-f]+)"')
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


def text_of(response: httpx.Response) -> str:
    return html.unescape(response.text)


def upload_action(page: httpx.Response) -> str:
    found = UPLOAD_ACTION.search(page.text)
    assert found, "the page has no upload form"
    return html.unescape(found.group(1))


def csrf_of(page: httpx.Response) -> str:
    found = CSRF_RE.search(page.text)
    assert found and found.group(1)
    return found.group(1)


def post_form(person: Client, page: str, action: str, data: dict[str, Any] | None = None
              ) -> httpx.Response:
    """What a browser does: load the page, post its form with the page's token."""
    shown = person.http.get(page)
    assert shown.status_code == 200, shown.text[:300]
    return person.http.post(action, data={**(data or {}), "csrf_token": csrf_of(shown)})


@pytest.fixture(scope="module")
def place(cast: Callable[[str], Client]) -> dict[str, Any]:
    """A closed group with an open root and a closed folder "Dossier" (bob edits, carol reads)."""
    alice, bob, carol, dave = (cast(n) for n in ("Alice", "Bob", "Carol", "Dave"))
    group = make_group(alice, unique("Dossier A12"))
    for person in (bob, carol, dave):
        add_member(alice, group["id"], person)
    folder = make_folder(alice, group["root_folder_id"], "Verbreding", access="closed",
                         members=[(bob, "editor"), (carol, "viewer")])
    return {"group": group, "folder": folder["id"]}


def test_upload_without_javascript_lists_the_files(cast: Callable[[str], Client],
                                                   place: dict[str, Any]) -> None:
    bob = cast("Bob")
    folder = place["folder"]
    page = bob.http.get(f"/folders/{folder}")
    assert page.status_code == 200
    action = upload_action(page)
    assert action.startswith(f"/folders/{folder}/upload?csrf_token=")
    answer = bob.http.post(action, files=[
        ("file", ("notulen 12 mei.txt", b"Notulen van het overleg\n", "text/plain")),
        ("file", ("besluit.pdf", PDF, "application/pdf")),
        ("file", ("", b"", "application/octet-stream")),  # an empty second input: ignored
    ])
    assert answer.status_code == 303, answer.text[:500]
    assert answer.headers["location"] == f"/folders/{folder}#documents"
    listing = text_of(bob.http.get(f"/folders/{folder}"))
    assert "notulen 12 mei.txt" in listing and "besluit.pdf" in listing
    assert "PDF-document" in listing  # the kind, sniffed from the bytes, in Dutch


def test_an_upload_without_the_csrf_token_is_refused(cast: Callable[[str], Client],
                                                     place: dict[str, Any]) -> None:
    bob = cast("Bob")
    folder = place["folder"]
    files = {"file": ("vervalst.txt", b"cross-site", "text/plain")}
    assert bob.http.post(f"/folders/{folder}/upload", files=files).status_code == 403
    wrong = bob.http.post(f"/folders/{folder}/upload?csrf_token={'0' * 64}", files=files)
    assert wrong.status_code == 403
    # Another person's token is no good either.
    alice_action = upload_action(cast("Alice").http.get(f"/folders/{folder}"))
    assert bob.http.post(alice_action, files=files).status_code == 403
    assert "vervalst.txt" not in bob.http.get(f"/folders/{folder}").text


def test_readers_and_outsiders_cannot_upload(cast: Callable[[str], Client],
                                             place: dict[str, Any]) -> None:
    folder = place["folder"]
    carol = cast("Carol")
    page = carol.http.get(f"/folders/{folder}")
    assert page.status_code == 200
    assert "upload?csrf_token" not in page.text and 'action="/folders/' + folder + '/notes"' \
        not in page.text
    token = csrf_of(page)
    files = {"file": ("van carol.txt", b"nee", "text/plain")}
    assert carol.http.post(f"/folders/{folder}/upload?csrf_token={token}",
                           files=files).status_code == 403
    dave = cast("Dave")  # a member of the group, not listed on the closed folder
    dave_token = csrf_of(dave.http.get(f"/groups/{place['group']['id']}"))
    assert dave.http.post(f"/folders/{folder}/upload?csrf_token={dave_token}",
                          files=files).status_code == 404


def test_file_page_versions_label_restore_and_delete(cast: Callable[[str], Client],
                                                      place: dict[str, Any]) -> None:
    alice, bob, carol = cast("Alice"), cast("Bob"), cast("Carol")
    doc = uploaded(bob, place["folder"], "begroting.txt", b"versie een\n")
    page_url = f"/documents/{doc['id']}"

    page = bob.http.get(page_url)
    assert page.status_code == 200
    text = text_of(page)
    assert "begroting.txt" in text and f"/api/v1/documents/{doc['id']}/content" in text
    action = upload_action(page)
    assert action.startswith(f"/documents/{doc['id']}/upload?csrf_token=")
    answer = bob.http.post(action, files={"file": ("begroting.txt", b"versie twee\n",
                                                   "text/plain")})
    assert answer.status_code == 303, answer.text[:500]
    versions = expect(bob.get(f"{API}/documents/{doc['id']}/versions"), 200)
    assert [v["number"] for v in versions] == [2, 1]

    # The same bytes again: no new version, and the page says so.
    same = bob.http.post(action, files={"file": ("begroting.txt", b"versie twee\n",
                                                 "text/plain")})
    assert same.status_code == 303 and "unchanged=1" in same.headers["location"]
    assert "geen nieuwe versie" in text_of(bob.http.get(same.headers["location"]))
    assert len(expect(bob.get(f"{API}/documents/{doc['id']}/versions"), 200)) == 2

    labelled = post_form(bob, page_url, f"{page_url}/versions/1/label",
                         {"label": "Naar de stuurgroep"})
    assert labelled.status_code == 303
    assert "Naar de stuurgroep" in text_of(bob.http.get(page_url))

    restored = post_form(bob, page_url, f"{page_url}/versions/1/restore")
    assert restored.status_code == 303
    content = bob.get(f"{API}/documents/{doc['id']}/content")
    assert content.content == b"versie een\n"
    shown = text_of(bob.http.get(page_url))
    assert "hersteld uit versie 1" in shown

    # Restoring the current version is refused with a message, not a crash.
    again = post_form(bob, page_url, f"{page_url}/versions/3/restore")
    assert again.status_code == 409 and "al de huidige versie" in text_of(again)

    # Deleting old versions is for owners and admins: bob sees no button and is refused.
    assert f"{page_url}/versions/2/delete" not in bob.http.get(page_url).text
    assert post_form(bob, page_url, f"{page_url}/versions/2/delete").status_code == 403
    assert f"{page_url}/versions/2/delete" in alice.http.get(page_url).text
    assert post_form(alice, page_url, f"{page_url}/versions/2/delete").status_code == 303
    numbers = [v["number"] for v in expect(bob.get(f"{API}/documents/{doc['id']}/versions"), 200)]
    assert numbers == [3, 1]

    # A reader sees the versions and downloads, and no control that changes anything.
    reader = carol.http.get(page_url)
    assert reader.status_code == 200
    assert "Naar de stuurgroep" in text_of(reader)
    for control in ("/upload?", "/label", "/restore", "/delete", "/rename", "/trash"):
        assert control not in reader.text, control
    assert f"/api/v1/documents/{doc['id']}/versions/1/content" in reader.text


def test_images_are_previewed_other_files_are_not(cast: Callable[[str], Client],
                                                  place: dict[str, Any]) -> None:
    bob = cast("Bob")
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00"
           b"\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02"
           b"\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
    image = uploaded(bob, place["folder"], "kaart.png", png)
    pdf = uploaded(bob, place["folder"], "rapport.pdf", PDF)
    assert f'<img src="/api/v1/documents/{image["id"]}/content"' in bob.http.get(
        f"/documents/{image['id']}").text
    assert "<img" not in bob.http.get(f"/documents/{pdf['id']}").text


def test_rename_and_trash_and_restore_a_document(cast: Callable[[str], Client],
                                                 place: dict[str, Any]) -> None:
    alice, bob = cast("Alice"), cast("Bob")
    group_id = place["group"]["id"]
    doc = uploaded(bob, place["folder"], "concept.txt", b"concept\n")
    page_url = f"/documents/{doc['id']}"
    empty = post_form(bob, page_url, f"{page_url}/rename", {"title": "   "})
    assert empty.status_code == 400 and "Titel" in text_of(empty)
    assert post_form(bob, page_url, f"{page_url}/rename",
                     {"title": "Concept advies"}).status_code == 303
    assert "Concept advies" in text_of(bob.http.get(f"/folders/{place['folder']}"))

    trashed = post_form(bob, page_url, f"{page_url}/trash")
    assert trashed.status_code == 303
    assert trashed.headers["location"] == f"/folders/{place['folder']}#documents"
    # The old link says where it went (Bob may restore it: issue 17), no longer a 404.
    old_link = bob.http.get(page_url)
    assert old_link.status_code == 200 and "staat in de prullenbak" in text_of(old_link)
    assert "Concept advies" not in text_of(bob.http.get(f"/folders/{place['folder']}"))
    trash = text_of(bob.http.get(f"/groups/{group_id}/trash"))
    assert "Concept advies" in trash and f"/documents/{doc['id']}/purge" not in trash
    assert f"/documents/{doc['id']}/purge" in alice.http.get(f"/groups/{group_id}/trash").text
    back = post_form(bob, f"/groups/{group_id}/trash", f"{page_url}/restore")
    assert back.status_code == 303 and back.headers["location"] == page_url
    assert bob.http.get(page_url).status_code == 200

    assert post_form(bob, page_url, f"{page_url}/trash").status_code == 303
    gone = post_form(alice, f"/groups/{group_id}/trash", f"{page_url}/purge")
    assert gone.status_code == 303
    assert "Concept advies" not in text_of(alice.http.get(f"/groups/{group_id}/trash"))


def test_note_page_editor_for_writers_read_only_for_readers(cast: Callable[[str], Client],
                                                            place: dict[str, Any]) -> None:
    bob, carol = cast("Bob"), cast("Carol")
    folder = place["folder"]
    created = post_form(bob, f"/folders/{folder}", f"/folders/{folder}/notes",
                        {"title": "Advies aan de minister"})
    assert created.status_code == 303, created.text[:500]
    note_url = created.headers["location"]
    assert note_url.startswith("/documents/")
    note_id = note_url.rsplit("/", 1)[1]

    editor = bob.http.get(note_url)
    assert editor.status_code == 200
    page = editor.text
    assert "data-note-editor" in page and f'data-document-id="{note_id}"' in page
    assert 'data-readonly="false"' in page and 'data-user-name="Bob"' in page
    assert re.search(r'data-user-color="[0-7]"', page)
    assert 'src="/static/build/editor.js"' in page and "data-editor-surface" in page
    assert 'data-command="bold"' in page and 'aria-pressed="false"' in page
    assert "data-presence" in page and "data-text-offline=" in page
    assert f'action="{note_url}/snapshot"' in page

    reader = carol.http.get(note_url).text
    assert 'data-readonly="true"' in reader and "data-command=" not in reader
    assert "/snapshot" not in reader and "/restore" not in reader

    # The page's colour for a person is stable.
    again = bob.http.get(note_url).text
    colour = re.compile(r'data-user-color="(\d)"')
    assert colour.search(page) and colour.search(page).group(1) == colour.search(again).group(1)  # type: ignore[union-attr]

    refused = post_form(bob, f"/folders/{folder}", f"/folders/{folder}/notes", {"title": ""})
    assert refused.status_code == 400 and "Titel" in text_of(refused)


def test_note_content_is_rendered_escaped_for_readers_without_javascript(
        cast: Callable[[str], Client], place: dict[str, Any]) -> None:
    bob, carol = cast("Bob"), cast("Carol")
    note = expect(bob.post(f"{API}/folders/{place['folder']}/notes", json={
        "title": "Planning", "format": "markdown",
        "text": "# Planning\n\nEerst **overleg**, <script>alert(1)</script> dan "
                "[besluit](javascript:alert(2)).\n\n| Wie | Wat |\n|---|---|\n| Bob | tekst |\n"}),
        201)
    page = carol.http.get(f"/documents/{note['id']}")
    assert page.status_code == 200
    assert "<h1>Planning</h1>" in page.text and "<strong>overleg</strong>" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    assert "href=\"javascript" not in page.text
    assert "<table>" in page.text and "Bob" in page.text


def test_note_versions_view_and_diff(cast: Callable[[str], Client],
                                     place: dict[str, Any]) -> None:
    bob, carol = cast("Bob"), cast("Carol")
    note = expect(bob.post(f"{API}/folders/{place['folder']}/notes",
                           json={"title": "Besluitenlijst", "text": "Eerste regel"}), 201)
    note_url = f"/documents/{note['id']}"
    assert "Nog geen versies" in text_of(bob.http.get(note_url))
    saved = post_form(bob, note_url, f"{note_url}/snapshot", {"label": "Voor het overleg"})
    assert saved.status_code == 303
    shown = text_of(bob.http.get(note_url))
    assert "Versie 1" in shown and "Voor het overleg" in shown and "benoemd" in shown
    view = carol.http.get(f"{note_url}/versions/1")
    assert view.status_code == 200 and "Eerste regel" in view.text
    assert "/restore" not in view.text  # a reader gets no restore button
    assert bob.http.get(f"{note_url}/versions/9").status_code == 404

    # A second version equal to the first: the diff page says nothing changed.
    assert post_form(bob, note_url, f"{note_url}/snapshot", {"label": ""}).status_code == 303
    diff = bob.http.get(f"{note_url}/diff?from=1&to=2")
    assert diff.status_code == 200 and "hetzelfde" in text_of(diff)
    same = bob.http.get(f"{note_url}/diff?from=2&to=2")
    assert same.status_code == 409 and "Kies twee verschillende versies" in text_of(same)
    assert bob.http.get(f"{note_url}/diff?from=x&to=2").status_code == 400

    restored = post_form(bob, note_url, f"{note_url}/versions/1/restore")
    assert restored.status_code == 303
    assert "hersteld uit 1" in text_of(bob.http.get(note_url))


def test_people_without_access_get_not_found(cast: Callable[[str], Client],
                                             place: dict[str, Any],
                                             person: Callable[[str], Client]) -> None:
    bob, dave = cast("Bob"), cast("Dave")
    erin = person("Erin")
    doc = uploaded(bob, place["folder"], "vertrouwelijk.txt", b"geheim\n")
    note = expect(bob.post(f"{API}/folders/{place['folder']}/notes",
                           json={"title": "Geheime notitie", "text": "geheim"}), 201)
    for outsider in (dave, erin):
        for url in (f"/documents/{doc['id']}", f"/documents/{note['id']}",
                    f"/documents/{note['id']}/versions/1", f"/documents/{note['id']}/diff"):
            answer = outsider.http.get(url)
            assert answer.status_code == 404, url
            assert "geheim" not in answer.text.lower() and "vertrouwelijk" not in answer.text
        token = csrf_of(outsider.http.get("/"))
        refused = outsider.http.post(f"/documents/{doc['id']}/upload?csrf_token={token}",
                                     files={"file": ("x.txt", b"x", "text/plain")})
        assert refused.status_code == 404
        assert outsider.http.post(f"/documents/{doc['id']}/trash",
                                  data={"csrf_token": token}).status_code == 404
    assert bob.http.get("/documents/doesnotexist").status_code == 404


def test_the_group_page_shows_the_storage_used(cast: Callable[[str], Client],
                                               place: dict[str, Any]) -> None:
    """Owners and admins see the meter; plain members do not (issue 9, item 5): the total
    counts closed folders too, so its changes would tell a member of uploads, and their exact
    sizes, into a folder they cannot read."""
    alice, bob, dave = cast("Alice"), cast("Bob"), cast("Dave")
    uploaded(bob, place["folder"], "groot.bin", b"x" * 4096)
    page = text_of(alice.http.get(f"/groups/{place['group']['id']}"))
    assert 'id="quota-meter"' in page and "van 10\xa0GB gebruikt" in page
    for member in (bob, dave):  # Dave cannot read "Verbreding"; Bob can, but not all folders
        page = text_of(member.http.get(f"/groups/{place['group']['id']}"))
        assert "quota-meter" not in page and "gebruikt" not in page


def test_signed_out_upload_goes_to_sign_in(anonymous: Client, place: dict[str, Any]) -> None:
    answer = anonymous.http.post(f"/folders/{place['folder']}/upload?csrf_token=x",
                                 files={"file": ("a.txt", b"a", "text/plain")})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")
