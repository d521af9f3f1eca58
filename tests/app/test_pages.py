"""The server-rendered pages against a live server: who sees what, forms and their errors,
CSRF, sessions. People: alice owns, bob is a member, carol asks to join, dave is outside."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.live import Client, unique
from tests.plugin import Site

PASSWORD = "correct horse battery staple"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(page: httpx.Response) -> str:
    found = CSRF_RE.search(page.text)
    assert found and found.group(1), "the page has no CSRF token"
    return found.group(1)


def submit(http: httpx.Client, page: str, action: str, data: dict[str, Any] | None = None
           ) -> httpx.Response:
    """What a browser does: load the page with the form, post the form with its token."""
    shown = http.get(page)
    assert shown.status_code == 200, shown.text
    return http.post(action, data={**(data or {}), "csrf_token": csrf_of(shown)})


def text_of(response: httpx.Response) -> str:
    return html.unescape(response.text)


def sign_in_with_form(site: Site, email: str, password: str = PASSWORD) -> httpx.Client:
    http = site.http(timeout=30, follow_redirects=False)
    response = submit(http, "/login", "/login", {"email": email, "password": password})
    assert response.status_code == 303, response.text
    return http


def register(site: Site, name: str) -> str:
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.nl"
    with site.http() as http:
        response = http.post("/api/v1/users",
                             json={"email": email, "name": name, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return email


def make_group(owner: Client, access: str = "closed") -> dict[str, Any]:
    response = owner.post("/api/v1/groups", json={"name": unique("Dossier"),
                                                  "description": "Over de A12", "access": access})
    assert response.status_code == 201, response.text
    return dict(response.json())


def make_folder(owner: Client, parent: str, name: str, access: str = "open") -> str:
    response = owner.post(f"/api/v1/folders/{parent}/folders", json={"name": name,
                                                                    "access": access})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def add_member(owner: Client, group_id: str, member: Client) -> None:
    assert member.user is not None
    response = owner.post(f"/api/v1/groups/{group_id}/members",
                          json={"email": member.user["email"], "role": "member"})
    assert response.status_code == 201, response.text


def test_sign_in_form_and_sign_out_revokes_the_session(site: Site) -> None:
    email = register(site, "Alice")
    http = sign_in_with_form(site, email)
    try:
        home = http.get("/")
        assert home.status_code == 200
        assert "Alice" in home.text
        old_cookie = http.cookies.get("plein_session")
        assert old_cookie
        assert submit(http, "/", "/logout").status_code == 303
    finally:
        http.close()
    with site.http(cookies={"plein_session": old_cookie}) as replay:
        again = replay.get("/")
        assert again.status_code == 303
        assert again.headers["location"].startswith("/login")
        assert replay.get("/api/v1/session").json()["user"] is None


def test_wrong_password_on_the_form_is_401_with_a_message(site: Site) -> None:
    email = register(site, "Alice")
    with site.http() as http:
        response = submit(http, "/login", "/login", {"email": email, "password": "wrong" * 3})
        assert response.status_code == 401
        assert "wachtwoord is onjuist" in text_of(response)


def test_each_page_renders_for_its_people(site: Site,
                                          person: Callable[[str], Client]) -> None:
    alice = person("Alice")
    created = submit(alice.http, "/groups/new", "/groups/new",
                     {"name": "Dossier Zuidas", "description": "Afspraken", "access": "closed"})
    assert created.status_code == 303
    group_url = created.headers["location"]
    group_id = group_url.rsplit("/", 1)[1]
    group = alice.get(group_url)
    assert group.status_code == 200
    assert "Dossier Zuidas" in group.text and "eigenaar" in group.text
    root = alice.get(f"/api/v1/groups/{group_id}").json()["root_folder_id"]
    assert f'href="/folders/{root}"' in group.text

    made = submit(alice.http, f"/folders/{root}", f"/folders/{root}/folders",
                  {"name": "Notulen", "access": "open"})
    assert made.status_code == 303
    folder_page = alice.get(f"/folders/{root}")
    assert folder_page.status_code == 200
    assert "Notulen" in folder_page.text
    assert "Hier staan nog geen documenten." in text_of(folder_page)
    assert 'id="access"' in folder_page.text

    for path in ("/", "/groups/new", f"/groups/{group_id}/trash", "/profile"):
        assert alice.get(path).status_code == 200, path


def test_outsiders_and_unlisted_members_get_no_closed_content(
        site: Site, person: Callable[[str], Client]) -> None:
    alice, bob, dave = person("Alice"), person("Bob"), person("Dave")
    group = make_group(alice)
    add_member(alice, group["id"], bob)
    root = group["root_folder_id"]
    open_id = make_folder(alice, root, "Openbare stukken")
    closed_id = make_folder(alice, root, "Vertrouwelijk", access="closed")

    outside = dave.get(f"/groups/{group['id']}")
    assert outside.status_code == 200
    assert group["name"] in outside.text
    assert "Lidmaatschap aanvragen" in outside.text
    assert "Bob" not in outside.text and root not in outside.text
    for fid in (root, open_id, closed_id):
        assert dave.get(f"/folders/{fid}").status_code == 404
    assert dave.get(f"/groups/{group['id']}/trash").status_code == 403

    listing = bob.get(f"/folders/{root}")
    assert listing.status_code == 200
    assert "Openbare stukken" in listing.text and "Vertrouwelijk" not in listing.text
    assert bob.get(f"/folders/{open_id}").status_code == 200
    hidden = bob.get(f"/folders/{closed_id}")
    assert hidden.status_code == 404
    assert "Vertrouwelijk" not in hidden.text
    assert "Afmelden" in hidden.text  # the error page still knows who is signed in
    # A plain member manages nothing: no access section.
    assert 'id="access"' not in bob.get(f"/folders/{open_id}").text


def test_form_posts_without_a_valid_token_are_refused(site: Site,
                                                      person: Callable[[str], Client]) -> None:
    alice = person("Alice")
    data = {"name": "Zonder token", "access": "open"}
    assert alice.http.post("/groups/new", data=data).status_code == 403
    assert alice.http.post("/groups/new", data={**data, "csrf_token": "0" * 64}
                           ).status_code == 403
    # A cross-site form: another origin, the victim's cookie, no token.
    cross = alice.http.post("/groups/new", data=data,
                            headers={"Origin": "https://evil.example",
                                     "Referer": "https://evil.example/x"})
    assert cross.status_code == 403
    names = [g["name"] for g in alice.get("/api/v1/groups").json()]
    assert "Zonder token" not in names


def test_bad_form_input_is_400_with_the_message(site: Site,
                                                person: Callable[[str], Client]) -> None:
    alice = person("Alice")
    empty = submit(alice.http, "/groups/new", "/groups/new", {"name": "  ", "access": "open"})
    assert empty.status_code == 400
    assert "Naam: is verplicht" in text_of(empty)
    alice.http.cookies.set("plein_lang", "en")
    bad = submit(alice.http, "/groups/new", "/groups/new", {"name": "Ok", "access": "public"})
    assert bad.status_code == 400
    assert "Access: choose one of the options" in text_of(bad)


def test_managing_members_through_the_group_page(site: Site,
                                                 person: Callable[[str], Client]) -> None:
    alice, bob, carol = person("Alice"), person("Bob"), person("Carol")
    group = make_group(alice)
    page = f"/groups/{group['id']}"
    assert bob.user and carol.user

    added = submit(alice.http, page, f"{page}/members", {"email": bob.user["email"],
                                                          "role": "member"})
    assert added.status_code == 303
    again = submit(alice.http, page, f"{page}/members", {"email": bob.user["email"],
                                                          "role": "member"})
    assert again.status_code == 409
    assert "Deze persoon is al lid." in text_of(again)

    asked = submit(carol.http, page, f"{page}/join")
    assert asked.status_code == 303
    assert "Je hebt gevraagd" in text_of(carol.get(page))
    assert carol.get(f"/folders/{group['root_folder_id']}").status_code == 404
    requests = alice.get(page)
    assert "Verzoeken om lid te worden" in text_of(requests) and "Carol" in requests.text
    approved = submit(alice.http, page, f"{page}/requests/{carol.user['id']}/approve")
    assert approved.status_code == 303
    assert carol.get(f"/folders/{group['root_folder_id']}").status_code == 200

    promoted = submit(alice.http, page, f"{page}/members/{bob.user['id']}/role",
                      {"role": "admin"})
    assert promoted.status_code == 303
    roles = {m["user_id"]: m["role"]
             for m in alice.get(f"/api/v1/groups/{group['id']}/members").json()["members"]}
    assert roles[bob.user["id"]] == "admin"
    last_owner = submit(alice.http, page, f"{page}/leave")
    assert last_owner.status_code == 409
    assert "altijd minstens één eigenaar" in text_of(last_owner)
    removed = submit(alice.http, page, f"{page}/members/{carol.user['id']}/remove")
    assert removed.status_code == 303
    assert submit(bob.http, page, f"{page}/leave").status_code == 303
    assert bob.get(f"/folders/{group['root_folder_id']}").status_code == 404


def test_folder_forms_access_rename_trash_restore(site: Site,
                                                  person: Callable[[str], Client]) -> None:
    alice, bob = person("Alice"), person("Bob")
    group = make_group(alice)
    add_member(alice, group["id"], bob)
    assert bob.user
    root = group["root_folder_id"]
    outer = make_folder(alice, root, "Buiten")
    page = f"/folders/{outer}"

    closed = submit(alice.http, page, f"{page}/access",
                    {"access": "closed", "member": bob.user["id"],
                     f"role-{bob.user['id']}": "viewer"})
    assert closed.status_code == 303
    assert bob.get(page).status_code == 200
    inner = make_folder(alice, outer, "Binnen")
    wider = submit(alice.http, f"/folders/{inner}", f"/folders/{inner}/access",
                   {"access": "closed", "member": bob.user["id"],
                    f"role-{bob.user['id']}": "editor"})
    assert wider.status_code == 422
    assert "niet ruimer zijn dan de map" in text_of(wider)

    # Bob may only view: creating a folder in it is refused with the message in the page.
    refused = submit(bob.http, page, f"{page}/folders", {"name": "Van Bob"})
    assert refused.status_code == 403

    renamed = submit(alice.http, page, f"{page}/rename", {"name": "Buiten (oud)"})
    assert renamed.status_code == 303
    assert "Buiten (oud)" in text_of(alice.get(page))
    assert submit(alice.http, f"/folders/{inner}", f"/folders/{inner}/trash").status_code == 303
    trashed = submit(alice.http, page, f"{page}/trash")
    assert trashed.status_code == 303 and trashed.headers["location"] == f"/folders/{root}"
    # The old link says it is in the trash (Alice may restore it: issue 17), not a 404.
    old_link = alice.get(page)
    assert old_link.status_code == 200 and "staat in de prullenbak" in text_of(old_link)
    trash = f"/groups/{group['id']}/trash"
    assert "Buiten (oud)" in text_of(alice.get(trash))
    # Restoring the inner folder while its parent is in the trash is refused on the trash page.
    blocked = submit(alice.http, trash, f"/folders/{inner}/restore")
    assert blocked.status_code == 409
    assert "Zet eerst de map terug waarin deze map stond." in text_of(blocked)
    restored = submit(alice.http, trash, f"/folders/{outer}/restore")
    assert restored.status_code == 303
    back = alice.get(page)
    assert back.status_code == 200 and "staat in de prullenbak" not in text_of(back)
    submit(alice.http, page, f"{page}/trash")
    purged = submit(alice.http, trash, f"/folders/{outer}/purge")
    assert purged.status_code == 303
    assert "Buiten (oud)" not in text_of(alice.get(trash))


def test_profile_password_and_tokens(site: Site,
                                     person: Callable[[str], Client]) -> None:
    alice = person("Alice")
    saved = submit(alice.http, "/profile", "/profile",
                   {"name": "Alice de Vries", "organisation": "", "bio": "Beleid",
                    "language": "en"})
    assert saved.status_code == 303
    shown = alice.get("/profile")
    assert "Alice de Vries" in shown.text and "My profile" in shown.text  # now in English

    other_browser = alice.http.cookies.get("plein_session")
    assert other_browser
    wrong = submit(alice.http, "/profile", "/profile/password",
                   {"current_password": "not it at all", "new_password": "x" * 12})
    assert wrong.status_code == 422 and "The current password is wrong." in wrong.text
    changed = submit(alice.http, "/profile", "/profile/password",
                     {"current_password": PASSWORD, "new_password": "a new password 123"})
    assert changed.status_code == 303
    assert alice.get("/profile").status_code == 200  # this browser got a fresh session
    with site.http(cookies={"plein_session": other_browser}) as old:
        assert old.get("/profile").status_code == 303

    created = submit(alice.http, "/profile", "/profile/tokens", {"name": "sync"})
    assert created.status_code == 200
    secret = re.search(r'value="(plein_[^"]+)"', created.text)
    assert secret
    bearer = site.http(headers={"Authorization": f"Bearer {secret.group(1)}"})
    me = bearer.get("/api/v1/users/me")
    assert me.status_code == 200
    listing = alice.get("/profile")
    assert secret.group(1) not in listing.text  # shown once only
    token_id = alice.get("/api/v1/tokens").json()[0]["id"]
    assert submit(alice.http, "/profile", f"/profile/tokens/{token_id}/revoke"
                  ).status_code == 303
    assert bearer.get("/api/v1/users/me").status_code == 401
    bearer.close()


@pytest.mark.parametrize("path", ["/groups/new", "/profile", "/folders/nothing"])
def test_pages_send_signed_out_people_to_the_sign_in_form(anonymous: Client, path: str) -> None:
    response = anonymous.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
