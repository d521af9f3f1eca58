"""Issue 17, "say what happened": with no mail server the invitation link is handed to whoever
made the invitation (API answer and group page) instead of vanishing; the person added to a
group is told in Plein who added them; the owners are told when a folder is trashed. The
default test server sends no mail (the mail-on side is in test_account_mail.py)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.app.helpers import (
    API,
    add_member,
    email_of,
    expect,
    expect_error,
    make_folder,
    make_group,
    uid_of,
)
from tests.app.test_document_pages import csrf_of, post_form
from tests.live import Client, unique
from tests.plugin import Site

Cast = Callable[[str], Client]


def token_of(link: str) -> str:
    parts = urlsplit(link)
    assert parts.path == "/invite", link
    return parse_qs(parts.query)["token"][0]


def text_of(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(page))


def kinds(person: Client, kind: str) -> list[dict[str, Any]]:
    return [n for n in expect(person.get(f"{API}/notifications"), 200)["items"]
            if n["kind"] == kind]


def test_without_mail_the_inviter_gets_the_link_to_pass_on(site: Site, cast: Cast) -> None:
    alice, carol = cast("Alice"), cast("Carol")
    group = make_group(alice, unique("Wijkraad"))
    gid = group["id"]
    add_member(alice, gid, carol)
    members = f"{API}/groups/{gid}/members"
    address = f"{unique('nieuw')}@example.nl"
    answer = expect(alice.post(members, json={"email": address}), 201)
    assert answer["state"] == "invited" and "/invite?token=" in answer["link"]
    # The link is a secret shown once: never in the lists, not to other members.
    listed = expect(alice.get(members), 200)["invitations"]
    assert [i.get("link") for i in listed] == [None]
    assert expect(carol.get(members), 200)["invitations"] == []
    newcomer = site.client()
    try:
        newcomer.sign_up("Nieuw", email=address)
        accepted = newcomer.post(f"{API}/invitations/accept",
                                 json={"token": token_of(answer["link"])})
        assert accepted.status_code == 200, accepted.text
        expect(newcomer.get(f"{API}/folders/{group['root_folder_id']}"), 200)
        # Single use, like the mailed one.
        expect_error(newcomer.post(f"{API}/invitations/accept",
                                   json={"token": token_of(answer["link"])}), 400)
    finally:
        newcomer.close()


def test_without_mail_the_group_page_shows_the_link_and_a_new_one_replaces_it(
        site: Site, cast: Cast) -> None:
    alice, bob, carol = cast("Alice"), cast("Bob"), cast("Carol")
    group = make_group(alice, unique("Wijkraad"))
    gid = group["id"]
    add_member(alice, gid, bob, "admin")
    add_member(alice, gid, carol)
    address = f"{unique('nieuw')}@example.nl"
    shown = post_form(bob, f"/groups/{gid}", f"/groups/{gid}/members",
                      {"email": address, "role": "member"})
    assert shown.status_code == 200, shown.text[:300]
    said = text_of(shown.text)
    assert f"er is dus geen uitnodiging naar {address} gestuurd" in said
    first = re.search(r'id="invite-link" type="text" readonly value="([^"]+)"', shown.text)
    assert first is not None and 'data-copy="invite-link"' in shown.text
    first_link = html.unescape(first.group(1))
    # The page itself (reloaded) does not carry it; a member sees no link and may not make one.
    assert first_link not in bob.http.get(f"/groups/{gid}").text
    invitation = expect(alice.get(f"{API}/groups/{gid}/members"), 200)["invitations"][0]
    again = f"/groups/{gid}/invitations/{invitation['id']}/link"
    page = carol.http.get(f"/groups/{gid}")
    refused = carol.http.post(again, data={"csrf_token": csrf_of(page)})
    assert refused.status_code == 403
    # Someone outside the group may not either (403, as for changing the group in the access
    # matrix: the group itself is known); an invitation's id under another group is not found.
    outsider = cast("Dave")
    home = outsider.http.get(f"/groups/{gid}")
    assert outsider.http.post(again, data={"csrf_token": csrf_of(home)}).status_code == 403
    other = make_group(alice, unique("Elders"))["id"]
    assert post_form(alice, f"/groups/{other}",
                     f"/groups/{other}/invitations/{invitation['id']}/link").status_code == 404
    assert again in bob.http.get(f"/groups/{gid}").text
    renewed = post_form(bob, f"/groups/{gid}", again)
    assert renewed.status_code == 200
    second = re.search(r'id="invite-link" type="text" readonly value="([^"]+)"', renewed.text)
    assert second is not None
    second_link = html.unescape(second.group(1))
    assert second_link != first_link
    newcomer = site.client()
    try:
        newcomer.sign_up("Nieuw", email=address)
        # The earlier link stopped working when a new one was made.
        expect_error(newcomer.post(f"{API}/invitations/accept",
                                   json={"token": token_of(first_link)}), 400)
        expect(newcomer.post(f"{API}/invitations/accept",
                             json={"token": token_of(second_link)}), 200)
    finally:
        newcomer.close()


def test_the_person_added_is_told_who_added_them(cast: Cast) -> None:
    alice, dave = cast("Alice"), cast("Dave")
    group = make_group(alice, unique("Wijkraad"))
    gid = group["id"]
    expect(alice.post(f"{API}/groups/{gid}/members", json={"email": email_of(dave)}), 201)
    told = [n for n in kinds(dave, "group_added") if n["group"]["id"] == gid]
    assert len(told) == 1 and told[0]["actor"]["id"] == uid_of(alice)
    assert told[0]["document"] is None and told[0]["read"] is False
    assert not [n for n in kinds(alice, "group_added") if n["group"]["id"] == gid]
    inbox = text_of(dave.http.get("/notifications").text)
    assert f"Alice heeft je toegevoegd aan de groep “{group['name']}”" in inbox
    opened = post_form(dave, "/notifications", f"/notifications/{told[0]['id']}/open")
    assert opened.status_code == 303 and opened.headers["location"] == f"/groups/{gid}"
    # Seen only while a member of the group.
    expect(alice.delete(f"{API}/groups/{gid}/members/{uid_of(dave)}"), 204)
    assert not [n for n in kinds(dave, "group_added") if n["group"]["id"] == gid]


def test_the_owners_are_told_when_a_folder_is_trashed(cast: Cast) -> None:
    alice, bob, carol = cast("Alice"), cast("Bob"), cast("Carol")
    group = make_group(alice, unique("Wijkraad"))
    gid = group["id"]
    add_member(alice, gid, bob, "admin")
    add_member(alice, gid, carol)
    own = make_folder(carol, group["root_folder_id"], "Concepten van Carol")
    expect(carol.delete(f"{API}/folders/{own['id']}"), 204)
    told = [n for n in kinds(alice, "folder_trashed") if n["group"]["id"] == gid]
    assert len(told) == 1
    assert told[0]["actor"]["id"] == uid_of(carol)
    assert told[0]["folder"] == {"id": own["id"], "name": "Concepten van Carol"}
    # The owners: not the admin, not the one who did it.
    assert not [n for n in kinds(bob, "folder_trashed") if n["group"]["id"] == gid]
    assert not [n for n in kinds(carol, "folder_trashed") if n["group"]["id"] == gid]
    inbox = text_of(alice.http.get("/notifications").text)
    assert "Carol heeft de map “Concepten van Carol” naar de prullenbak verplaatst" in inbox
    opened = post_form(alice, "/notifications", f"/notifications/{told[0]['id']}/open")
    assert opened.headers["location"] == f"/groups/{gid}/trash"
    # Shown only while the person manages the group (may see and restore its trash).
    members = f"{API}/groups/{gid}/members"
    expect(alice.patch(f"{members}/{uid_of(bob)}", json={"role": "owner"}), 200)
    expect(bob.patch(f"{members}/{uid_of(alice)}", json={"role": "member"}), 200)
    assert not [n for n in kinds(alice, "folder_trashed") if n["group"]["id"] == gid]
