"""My sessions: list them (device, IP, last seen, this one) and end any (API.md, "Identity
and audit"); another person's session is 404; the sessions page."""

from __future__ import annotations

from tests.app.helpers import API, email_of, expect, expect_error, missing_id
from tests.app.test_pages import csrf_of
from tests.live import Client
from tests.plugin import Cast, Site

PASSWORD = "correct horse battery staple"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def second_browser(site: Site, alice: Client, user_agent: str = FIREFOX) -> Client:
    other = site.client()
    other.http.headers["user-agent"] = user_agent
    assert other.sign_in(email_of(alice), PASSWORD).status_code == 200
    return other


def test_my_sessions_list_device_ip_last_seen_and_which_is_this(person: Cast,
                                                                  site: Site) -> None:
    alice = person("Alice")
    other = second_browser(site, alice)
    try:
        listed = expect(alice.get(f"{API}/users/me/sessions"), 200)
        assert len(listed) == 2
        assert {tuple(sorted(s)) for s in listed} == {
            ("created_at", "current", "device", "id", "ip", "last_seen_at")}
        assert [s["current"] for s in listed].count(True) == 1
        firefox = next(s for s in listed if not s["current"])
        assert firefox["device"] == "Firefox on Linux" and firefox["ip"]
        seen_there = expect(other.get(f"{API}/users/me/sessions"), 200)
        assert {s["id"] for s in seen_there} == {s["id"] for s in listed}
        assert next(s for s in seen_there if s["current"])["id"] == firefox["id"]
    finally:
        other.close()


def test_ending_a_session_signs_that_browser_out_only(person: Cast, site: Site) -> None:
    alice, bob = person("Alice"), person("Bob")
    other = second_browser(site, alice)
    try:
        there = next(s for s in expect(other.get(f"{API}/users/me/sessions"), 200)
                     if s["current"])
        # Not Bob's to end, nor anything's id: the same 404.
        expect_error(bob.delete(f"{API}/users/me/sessions/{there['id']}"), 404)
        expect_error(bob.delete(f"{API}/users/me/sessions/{missing_id()}"), 404)
        expect(other.get(f"{API}/users/me"), 200)
        expect(alice.delete(f"{API}/users/me/sessions/{there['id']}"), 204)
        expect_error(other.get(f"{API}/users/me"), 401)
        expect(alice.get(f"{API}/users/me"), 200)
        assert [s["id"] for s in expect(alice.get(f"{API}/users/me/sessions"), 200)] \
            != [there["id"]]
        expect_error(alice.delete(f"{API}/users/me/sessions/{there['id']}"), 404)
    finally:
        other.close()


def test_ending_my_own_session_signs_me_out(person: Cast) -> None:
    alice = person("Alice")
    mine = next(s for s in expect(alice.get(f"{API}/users/me/sessions"), 200) if s["current"])
    expect(alice.delete(f"{API}/users/me/sessions/{mine['id']}"), 204)
    expect_error(alice.get(f"{API}/users/me"), 401)


def test_signed_out_callers_have_no_sessions(anonymous: Client) -> None:
    expect_error(anonymous.get(f"{API}/users/me/sessions"), 401)


def test_the_sessions_page_ends_a_session_and_revokes_a_token(person: Cast,
                                                              site: Site) -> None:
    alice = person("Alice")
    other = second_browser(site, alice)
    token = expect(alice.post(f"{API}/tokens", json={"name": "sync-laptop"}), 201)
    try:
        there = next(s for s in expect(other.get(f"{API}/users/me/sessions"), 200)
                     if s["current"])
        shown = alice.http.get("/profile/sessions")
        assert shown.status_code == 200
        assert f'id="session-{there["id"]}"' in shown.text and "Firefox on Linux" in shown.text
        assert "sync-laptop" in shown.text
        ended = alice.http.post(f"/profile/sessions/{there['id']}/end",
                                data={"csrf_token": csrf_of(shown)})
        assert ended.status_code == 303
        assert ended.headers["location"] == "/profile/sessions?done=session_ended"
        expect_error(other.get(f"{API}/users/me"), 401)
        revoked = alice.http.post(f"/profile/tokens/{token['id']}/revoke",
                                  data={"csrf_token": csrf_of(shown), "back": "sessions"})
        assert revoked.status_code == 303
        assert expect(alice.get(f"{API}/tokens"), 200) == []
        # Someone else's session id from the page: the not-found page, nothing ended.
        assert alice.http.post(f"/profile/sessions/{missing_id()}/end",
                               data={"csrf_token": csrf_of(shown)}).status_code == 404
    finally:
        other.close()
