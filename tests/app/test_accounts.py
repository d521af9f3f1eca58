"""Accounts, sessions, CSRF, throttling and personal access tokens (API.md; SECURITY.md,
"Accounts, sessions, CSRF")."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.app.helpers import API, describe, email_of, expect, expect_error, missing_id
from tests.live import Client, LiveServer, running_server, unique

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of this module's own: its first account is registered by ``first_user``."""
    with running_server(tmp_path_factory.mktemp("accounts") / "data") as server:
        yield server


@pytest.fixture(scope="module")
def first_user(live: LiveServer) -> Iterator[Client]:
    client = live.client()
    client.sign_up("First")
    yield client
    client.close()


@pytest.fixture
def new_person(live: LiveServer, first_user: Client) -> Iterator[Any]:
    """Make more signed-in people on the module's server (after the first user)."""
    made: list[Client] = []

    def make(name: str = "Person", password: str = PASSWORD) -> Client:
        client = live.client()
        client.sign_up(name, password=password)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def cookie_client(server: LiveServer, session_cookie: str) -> httpx.Client:
    """A bare client that presents a given session cookie (and nothing else)."""
    return httpx.Client(base_url=server.url, headers={"Cookie": f"plein_session={session_cookie}"})


def session_cookie(client: Client) -> str:
    value = client.http.cookies.get("plein_session")
    assert value, "no session cookie"
    return str(value)


def user_count(server: LiveServer) -> int:
    with sqlite3.connect(server.data_dir / "plein.sqlite3") as db:
        return int(db.execute("select count(*) from users").fetchone()[0])


# -- registration --------------------------------------------------------------------------

def test_first_user_is_site_admin_and_later_ones_are_not(first_user: Client,
                                                         new_person: Any) -> None:
    assert first_user.user is not None and first_user.user["is_site_admin"] is True
    second = new_person("Second")
    assert second.user["is_site_admin"] is False
    me = expect(second.get(f"{API}/users/me"), 200)
    assert me["is_site_admin"] is False and me["email"] == email_of(second)
    assert "password_hash" not in me and "password" not in me


def test_registration_answers_201_with_the_user(live: LiveServer, first_user: Client) -> None:
    with httpx.Client(base_url=live.url) as http:
        email = f"{unique('reg')}@Example.NL"
        body = expect(http.post(f"{API}/users", json={"email": email, "name": " Reg ",
                                                       "password": PASSWORD}), 201)
    assert body["email"] == email.lower() and body["name"] == "Reg"
    assert set(body) >= {"id", "email", "name", "is_site_admin", "created_at"}
    assert not any("password" in key for key in body)


def test_duplicate_email_is_409_whatever_the_case(live: LiveServer, first_user: Client) -> None:
    email = email_of(first_user)
    with httpx.Client(base_url=live.url) as http:
        for variant in (email, email.upper()):
            response = http.post(f"{API}/users", json={"email": variant, "name": "Dup",
                                                        "password": PASSWORD})
            expect_error(response, 409, "email_taken", field="email")


BAD_REGISTRATIONS = [
    pytest.param({"email": "not-an-email", "name": "X", "password": PASSWORD}, "email",
                 id="bad-email"),
    pytest.param({"email": "a@example.nl", "name": "X", "password": "short"}, "password",
                 id="short-password"),
    pytest.param({"email": "a@example.nl", "password": PASSWORD}, "name", id="missing-name"),
    pytest.param({"name": "X", "password": PASSWORD}, "email", id="missing-email"),
    pytest.param({"email": "a@example.nl", "name": "X"}, "password", id="missing-password"),
    pytest.param({"email": "a@example.nl", "name": 12, "password": PASSWORD}, "name",
                 id="wrong-type"),
    pytest.param({"email": "a@example.nl", "name": "   ", "password": PASSWORD}, "name",
                 id="blank-name"),
    pytest.param({"email": "a@example.nl", "name": "X\u202egnp.exe", "password": PASSWORD},
                 "name", id="bidi-override-in-name"),
    pytest.param({"email": "a@example.nl", "name": "X", "password": PASSWORD, "admin": True},
                 "admin", id="unknown-field"),
]


@pytest.mark.parametrize(("body", "field"), BAD_REGISTRATIONS)
def test_bad_registration_is_400_naming_the_field(live: LiveServer, first_user: Client,
                                                  body: dict[str, Any], field: str) -> None:
    before = user_count(live)
    with httpx.Client(base_url=live.url) as http:
        expect_error(http.post(f"{API}/users", json=body), 400, field=field)
    assert user_count(live) == before


@pytest.mark.parametrize(("content", "content_type", "status"), [
    pytest.param(b'{"email": "a@example.nl", ', "application/json", 400, id="malformed-json"),
    pytest.param(b'["a@example.nl"]', "application/json", 400, id="array"),
    pytest.param(b'"text"', "application/json", 400, id="string"),
    pytest.param(b"\xff\xfe", "application/json", 400, id="not-utf8"),
    pytest.param(b"email=a%40example.nl&name=X&password=correcthorse", "text/plain", 415,
                 id="text-plain"),
    pytest.param(b"email=a%40example.nl&name=X&password=correcthorse",
                 "application/x-www-form-urlencoded", 415, id="form"),
])
def test_unparseable_bodies_get_the_error_shape(live: LiveServer, first_user: Client,
                                                content: bytes, content_type: str,
                                                status: int) -> None:
    before = user_count(live)
    with httpx.Client(base_url=live.url) as http:
        response = http.post(f"{API}/users", content=content,
                             headers={"Content-Type": content_type})
    expect_error(response, status)
    assert user_count(live) == before


def test_unknown_api_path_and_method_get_the_error_shape(first_user: Client) -> None:
    expect_error(first_user.get(f"{API}/no-such-thing"), 404)
    expect_error(first_user.put(f"{API}/groups", json={}), 405)


def test_registration_closed(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", env={"PLEIN_OPEN_REGISTRATION": "0"}) as server, \
            httpx.Client(base_url=server.url) as http:
        def register(name: str) -> httpx.Response:
            return http.post(f"{API}/users", json={"email": f"{unique(name)}@example.nl",
                                                    "name": name, "password": PASSWORD})

        first = expect(register("first"), 201)  # a fresh install must stay usable
        assert first["is_site_admin"] is True
        expect_error(register("second"), 403, "registration_closed")
        assert user_count(server) == 1


# -- sign in and out, sessions ----------------------------------------------------------------

def test_sign_in_wrong_password_and_unknown_email_look_alike(live: LiveServer,
                                                             new_person: Any) -> None:
    alice = new_person("Alice")
    with httpx.Client(base_url=live.url) as http:
        wrong = http.post(f"{API}/session", json={"email": email_of(alice), "password": "nope"})
        unknown = http.post(f"{API}/session", json={"email": f"{unique('x')}@example.nl",
                                                     "password": "nope"})
        assert "plein_session" not in http.cookies
    assert expect_error(wrong, 401) == expect_error(unknown, 401)


def test_get_session_tells_who_and_gives_a_csrf_token(live: LiveServer, new_person: Any) -> None:
    alice = new_person("Alice")
    data = expect(alice.get(f"{API}/session"), 200)
    assert data["user"]["id"] == alice.user["id"] and len(data["csrf_token"]) >= 32
    with httpx.Client(base_url=live.url) as http:
        anonymous = expect(http.get(f"{API}/session"), 200)
    assert anonymous["user"] is None
    expect_error(httpx.get(f"{live.url}{API}/users/me"), 401, "not_signed_in")


def test_sign_out_revokes_the_session(live: LiveServer, new_person: Any) -> None:
    alice = new_person("Alice")
    old = session_cookie(alice)
    expect(alice.delete(f"{API}/session"), 204)
    with cookie_client(live, old) as replay:
        expect_error(replay.get(f"{API}/users/me"), 401)
        assert expect(replay.get(f"{API}/session"), 200)["user"] is None
    expect_error(alice.get(f"{API}/users/me"), 401)


def test_sign_in_gives_a_new_session_id(live: LiveServer, new_person: Any) -> None:
    alice = new_person("Alice")
    first = session_cookie(alice)
    # Signing in again from a signed-in browser (with its CSRF token, as the page would).
    expect(alice.post(f"{API}/session", json={"email": email_of(alice), "password": PASSWORD}),
           200)
    second = session_cookie(alice)
    assert second != first
    with cookie_client(live, first) as old:
        expect_error(old.get(f"{API}/users/me"), 401)  # the replaced session is gone
    # A cookie planted before sign-in (session fixation) is never adopted.
    planted = "attacker-chosen-session-id-" + missing_id()
    with httpx.Client(base_url=live.url, headers={"Cookie": f"plein_session={planted}"}) as http:
        response = http.post(f"{API}/session", json={"email": email_of(alice),
                                                     "password": PASSWORD})
        expect(response, 200)
        issued = response.cookies.get("plein_session")
    assert issued and issued != planted
    with cookie_client(live, planted) as attacker:
        expect_error(attacker.get(f"{API}/users/me"), 401)
    with cookie_client(live, issued) as victim:
        assert expect(victim.get(f"{API}/users/me"), 200)["id"] == alice.user["id"]


def test_password_change_revokes_every_other_session(live: LiveServer, new_person: Any) -> None:
    alice = new_person("Alice")
    other = live.client()
    try:
        assert other.sign_in(email_of(alice), PASSWORD).status_code == 200
        old_alice, old_other = session_cookie(alice), session_cookie(other)
        expect_error(alice.post(f"{API}/users/me/password",
                                json={"current_password": "wrong password!",
                                      "new_password": "another long passphrase"}),
                     422, "wrong_password", field="current_password")
        expect(other.get(f"{API}/users/me"), 200)  # a refused change revoked nothing
        expect(alice.post(f"{API}/users/me/password",
                          json={"current_password": PASSWORD,
                                "new_password": "another long passphrase"}), 204)
        new_alice = session_cookie(alice)
        assert new_alice not in (old_alice, old_other)
        expect_error(other.get(f"{API}/users/me"), 401)
        for stale in (old_alice, old_other):
            with cookie_client(live, stale) as replay:
                expect_error(replay.get(f"{API}/users/me"), 401)
        expect(alice.get(f"{API}/users/me"), 200)  # the changing browser goes on
        alice.refresh_csrf()
        expect(alice.patch(f"{API}/users/me", json={"bio": "still here"}), 200)
        assert other.sign_in(email_of(alice), PASSWORD).status_code == 401
        assert other.sign_in(email_of(alice), "another long passphrase").status_code == 200
    finally:
        other.close()


def test_cookie_flags(live: LiveServer, new_person: Any) -> None:
    alice = new_person("Alice")
    with httpx.Client(base_url=live.url) as http:
        response = http.post(f"{API}/session", json={"email": email_of(alice),
                                                     "password": PASSWORD})
    expect(response, 200)
    cookies = [c for c in response.headers.get_list("set-cookie")
               if c.startswith("plein_session=")]
    assert len(cookies) == 1
    flags = {part.strip().split("=")[0].lower(): part.strip()
             for part in cookies[0].split(";")[1:]}
    assert "httponly" in flags
    assert flags["samesite"].lower() == "samesite=lax"
    assert "secure" not in flags  # served over http here; https turns it on
    assert flags["path"] == "Path=/"


def test_passwords_are_stored_as_argon2id(live: LiveServer, new_person: Any) -> None:
    alice = new_person("Alice")
    with sqlite3.connect(live.data_dir / "plein.sqlite3") as db:
        (stored,) = db.execute("select password_hash from users where email = ?",
                               (email_of(alice),)).fetchone()
    assert stored.startswith("$argon2id$")
    params = dict(kv.split("=") for kv in re.search(r"\$m=[^$]+", stored)[0][1:].split(","))
    assert int(params["m"]) >= 19456 and int(params["t"]) >= 2 and int(params["p"]) >= 1
    assert PASSWORD not in stored


# -- CSRF ------------------------------------------------------------------------------------

def _group_names(client: Client) -> set[str]:
    return {g["name"] for g in expect(client.get(f"{API}/groups"), 200)}


@pytest.mark.parametrize("token", [None, "", "wrong-token", "other-session", "\u00e9t\u00e9"])
def test_cookie_requests_need_the_csrf_token(live: LiveServer, new_person: Any,
                                             token: str | None) -> None:
    alice = new_person("Alice")
    if token == "other-session":
        token = new_person("Bob").csrf  # a real token, but bound to another session
    # (Sent as latin-1 bytes: a non-ASCII token must be a 403, never a 500.)
    headers = {} if token is None else {"X-CSRF-Token": token.encode("latin-1")}
    name = unique("csrf")
    with cookie_client(live, session_cookie(alice)) as http:
        expect_error(http.post(f"{API}/groups", json={"name": name, "access": "open"},
                               headers=headers), 403, "csrf_failed")
        expect_error(http.delete(f"{API}/session", headers=headers), 403, "csrf_failed")
        expect_error(http.patch(f"{API}/users/me", json={"bio": "x"}, headers=headers), 403,
                     "csrf_failed")
    assert name not in _group_names(alice)
    expect(alice.get(f"{API}/users/me"), 200)  # the refused sign-out did not sign out
    assert expect(alice.get(f"{API}/users/me"), 200)["bio"] == ""


def test_cross_site_form_post_is_refused(live: LiveServer, new_person: Any) -> None:
    """What a hostile page can make a browser send: a form POST with the cookie, no token."""
    alice = new_person("Alice")
    name = unique("forged")
    with cookie_client(live, session_cookie(alice)) as http:
        form = {"Content-Type": "application/x-www-form-urlencoded",
                "Origin": "https://evil.example"}
        for path, content in ((f"{API}/groups", f"name={name}&access=open"),
                              (f"{API}/tokens", f"name={name}"),
                              (f"{API}/session", "")):
            response = http.post(path, content=content.encode(), headers=form)
            expect_error(response, 403, "csrf_failed")
    assert name not in _group_names(alice)
    assert name not in {t["name"] for t in expect(alice.get(f"{API}/tokens"), 200)}
    expect(alice.get(f"{API}/users/me"), 200)


def test_bearer_requests_need_no_csrf_token(live: LiveServer, new_person: Any) -> None:
    alice = new_person("Alice")
    token = expect(alice.post(f"{API}/tokens", json={"name": "script"}), 201)["token"]
    name = unique("bearer")
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"}) as http:
        expect(http.post(f"{API}/groups", json={"name": name, "access": "open"}), 201)
    assert name in _group_names(alice)


def test_not_signed_in_comes_before_body_validation(live: LiveServer, first_user: Client) -> None:
    with httpx.Client(base_url=live.url) as http:
        expect_error(http.post(f"{API}/groups", json={"bogus": 1}), 401, "not_signed_in")
        expect_error(http.post(f"{API}/groups", content=b"{", headers={
            "Content-Type": "application/json"}), 401, "not_signed_in")


# -- throttling ------------------------------------------------------------------------------

def _sign_in(http: httpx.Client, email: str, password: str) -> httpx.Response:
    return http.post(f"{API}/session", json={"email": email, "password": password})


def _register(http: httpx.Client, name: str) -> str:
    email = f"{unique(name)}@example.nl"
    expect(http.post(f"{API}/users", json={"email": email, "name": name, "password": PASSWORD}),
           201)
    return email


def test_failed_sign_ins_are_slowed_down_not_locked_out(fresh_server: LiveServer) -> None:
    with httpx.Client(base_url=fresh_server.url) as http:
        alice, bob = _register(http, "alice"), _register(http, "bob")
        for _ in range(3):  # settings.login_free_failures
            expect_error(_sign_in(http, alice, "wrong password"), 401, "invalid_credentials")
        limited = _sign_in(http, alice, "wrong password")
        expect_error(limited, 429, "rate_limited")
        first_delay = int(limited.headers["Retry-After"])
        assert first_delay >= 1
        # The right password does not get through during the delay either.
        expect_error(_sign_in(http, alice, PASSWORD), 429)
        # Someone else from the same address is not locked out by it.
        expect(_sign_in(http, bob, PASSWORD), 200)
        http.cookies.clear()

        # After the delay a wrong guess is answered again, and the next delay is longer.
        deadline = time.monotonic() + first_delay + 5
        while (response := _sign_in(http, alice, "wrong password")).status_code == 429:
            assert time.monotonic() < deadline, "the delay did not end"
            time.sleep(0.05)
        expect_error(response, 401)
        second = expect_error_with(_sign_in(http, alice, "wrong password"), 429)
        assert int(second.headers["Retry-After"]) > first_delay

        # Spraying many addresses from one IP hits the per-IP budget (10 × the free failures),
        # after which everyone from that IP waits too.
        failures = 4  # alice's so far
        while failures < 29:
            target = f"{unique('spray')}@example.nl"
            for _ in range(min(3, 29 - failures)):  # never enough for a per-address delay
                expect_error(_sign_in(http, target, "wrong password"), 401)
                failures += 1
        expect(_sign_in(http, bob, PASSWORD), 200)  # one short of the budget
        http.cookies.clear()
        expect_error(_sign_in(http, f"{unique('spray')}@example.nl", "wrong password"), 401)
        expect_error_with(_sign_in(http, bob, PASSWORD), 429)


def expect_error_with(response: httpx.Response, status: int) -> httpx.Response:
    expect_error(response, status)
    assert "Retry-After" in response.headers, describe(response)
    return response


def test_throttling_forgets_old_failures(tmp_path: Path) -> None:
    """Failures long ago must not make every later typo from that address wait 15 minutes
    (an office behind one NAT address collects many over the months)."""
    from datetime import timedelta

    from app.errors import RateLimited
    from app.main import create_app
    from app.services import accounts
    from app.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    app = create_app(settings)
    db = app.state.runtime.db
    try:
        start = accounts.utcnow()
        with db.write() as session:
            for _ in range(60):
                accounts.record_failure(session, "a@example.nl", "10.0.0.1", start)
        with db.read() as session, pytest.raises(RateLimited):
            accounts.check_throttle(session, settings, "a@example.nl", "10.0.0.1",
                                    start + timedelta(minutes=5))
        later = start + timedelta(days=2)
        with db.read() as session:
            accounts.check_throttle(session, settings, "a@example.nl", "10.0.0.1", later)
        # A failure now starts counting afresh: no delay after one more.
        with db.write() as session:
            accounts.record_failure(session, "a@example.nl", "10.0.0.1", later)
        with db.read() as session:
            accounts.check_throttle(session, settings, "a@example.nl", "10.0.0.1",
                                    later + timedelta(seconds=1))
    finally:
        db.dispose()


# -- personal access tokens ------------------------------------------------------------------

def test_personal_access_tokens(live: LiveServer, new_person: Any) -> None:
    alice, bob = new_person("Alice"), new_person("Bob")
    created = expect(alice.post(f"{API}/tokens", json={"name": "backup script"}), 201)
    secret = created["token"]
    assert created["name"] == "backup script" and len(secret) > 40
    listing = alice.get(f"{API}/tokens")
    rows = expect(listing, 200)
    assert [r["id"] for r in rows] == [created["id"]]
    assert "token" not in rows[0] and secret not in listing.text
    assert secret.split("_")[-1] not in listing.text

    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {secret}"}) as api:
        assert expect(api.get(f"{API}/users/me"), 200)["id"] == alice.user["id"]
        # Someone else cannot revoke it, and cannot tell it exists.
        expect_error(bob.delete(f"{API}/tokens/{created['id']}"), 404)
        expect_error(bob.delete(f"{API}/tokens/{missing_id()}"), 404)
        expect(api.get(f"{API}/users/me"), 200)
        expect(alice.delete(f"{API}/tokens/{created['id']}"), 204)
        expect_error(api.get(f"{API}/users/me"), 401, "invalid_token")
        expect_error(api.get(f"{API}/session"), 401)
    assert expect(alice.get(f"{API}/tokens"), 200) == []
    expect_error(alice.delete(f"{API}/tokens/{created['id']}"), 404)
    for bad in ("garbage", "plein_x_y", secret[:-1]):
        with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {bad}"}) as api:
            expect_error(api.get(f"{API}/users/me"), 401, "invalid_token")


def test_document_bound_token_is_refused_by_the_api(live: LiveServer, new_person: Any) -> None:
    """A token bound to one document (for a sync client) must not open the whole account."""
    from app.db import Database
    from app.models import User
    from app.services import accounts

    alice = new_person("Alice")
    db = Database(f"sqlite:///{live.data_dir / 'plein.sqlite3'}")
    try:
        with db.write() as session:
            user = session.get(User, alice.user["id"])
            assert user is not None
            _, bound = accounts.create_token(session, user, "sync", document_id=missing_id())
            _, plain = accounts.create_token(session, user, "script")
    finally:
        db.dispose()
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {bound}"}) as api:
        expect_error(api.get(f"{API}/users/me"), 401, "invalid_token")
        expect_error(api.post(f"{API}/groups", json={"name": "x", "access": "open"}), 401)
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {plain}"}) as api:
        expect(api.get(f"{API}/users/me"), 200)


def test_token_endpoints_negative(live: LiveServer, new_person: Any) -> None:
    alice = new_person("Alice")
    expect_error(alice.post(f"{API}/tokens", json={}), 400, field="name")
    expect_error(alice.post(f"{API}/tokens", json={"name": ""}), 400, field="name")
    expect_error(alice.post(f"{API}/tokens", json={"name": "x", "scope": "all"}), 400,
                 field="scope")
    with httpx.Client(base_url=live.url) as http:
        expect_error(http.post(f"{API}/tokens", json={"name": "x"}), 401)
        expect_error(http.get(f"{API}/tokens"), 401)
        expect_error(http.delete(f"{API}/tokens/{missing_id()}"), 401)


# -- profile ---------------------------------------------------------------------------------

def test_profile_update(live: LiveServer, new_person: Any) -> None:
    alice = new_person("Alice")
    updated = expect(alice.patch(f"{API}/users/me", json={
        "name": "Alice Jansen", "bio": "Beleidsmedewerker\nwater", "organisation": "Gemeente",
        "language": "en"}), 200)
    assert (updated["name"], updated["bio"], updated["organisation"]) == (
        "Alice Jansen", "Beleidsmedewerker\nwater", "Gemeente")
    assert expect(alice.get(f"{API}/users/me"), 200)["name"] == "Alice Jansen"
    # Absent fields stay as they are.
    assert expect(alice.patch(f"{API}/users/me", json={"bio": ""}), 200)["name"] == "Alice Jansen"
    # Optional fields can be emptied again.
    assert expect(alice.patch(f"{API}/users/me", json={"organisation": " "}),
                  200)["organisation"] == ""
    expect_error(alice.patch(f"{API}/users/me", json={"organisation": "a\u202eb"}), 400,
                 field="organisation")
    expect_error(alice.patch(f"{API}/users/me", json={"language": "de"}), 400, field="language")
    expect_error(alice.patch(f"{API}/users/me", json={"name": ""}), 400, field="name")
    expect_error(alice.patch(f"{API}/users/me", json={"is_site_admin": True}), 400,
                 field="is_site_admin")
    expect_error(alice.patch(f"{API}/users/me", json={"email": "x@example.nl"}), 400,
                 field="email")
    assert expect(alice.get(f"{API}/users/me"), 200)["is_site_admin"] is False
    with httpx.Client(base_url=live.url) as http:
        expect_error(http.patch(f"{API}/users/me", json={"bio": "x"}), 401)
