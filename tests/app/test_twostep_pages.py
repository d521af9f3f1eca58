"""Two-step sign-in in the pages: set it up on the profile (QR code drawn by us), sign in with
the code as a second step, turn it off."""

from __future__ import annotations

import base64
import json
import re
from contextlib import closing

import httpx

from tests.app.helpers import email_of
from tests.app.test_pages import PASSWORD, csrf_of, submit
from tests.app.test_twostep import code_at
from tests.plugin import Cast, Site

PENDING_RE = re.compile(r'name="pending" value="([^"]*)"')
SECRET_RE = re.compile(r'<code id="totp-secret">([A-Z2-7]+)</code>')


def set_up_on_profile(http: httpx.Client) -> tuple[str, list[str]]:
    shown = submit(http, "/profile", "/profile/totp")
    assert shown.status_code == 200, shown.text
    assert '<figure class="qr" id="totp-qr"><svg' in shown.text  # drawn here, inline
    found = SECRET_RE.search(shown.text)
    assert found, shown.text
    secret = found.group(1)
    done = http.post("/profile/totp/confirm", data={"code": code_at(secret),
                                                    "csrf_token": csrf_of(shown)})
    assert done.status_code == 200, done.text
    codes = re.findall(r"<li>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</li>", done.text)
    assert len(codes) == 10
    return secret, codes


def password_step(site: Site, email: str) -> tuple[httpx.Client, httpx.Response]:
    http = site.http(timeout=30, follow_redirects=False)
    return http, submit(http, "/login", "/login", {"email": email, "password": PASSWORD,
                                                   "next": "/profile"})


def test_sign_in_asks_for_the_code_as_a_second_step(site: Site, person: Cast) -> None:
    alice = person("Alice")
    with site.http(timeout=30, follow_redirects=False) as http:
        assert submit(http, "/login", "/login", {"email": email_of(alice),
                                                 "password": PASSWORD}).status_code == 303
        secret, codes = set_up_on_profile(http)

    browser, step_one = password_step(site, email_of(alice))
    with closing(browser):
        assert step_one.status_code == 200 and "plein_session" not in browser.cookies
        assert 'autocomplete="one-time-code"' in step_one.text
        pending = PENDING_RE.search(step_one.text)
        assert pending
        wrong = browser.post("/login/otp", data={"otp": "000000" if code_at(secret, 1)
                                                 != "000000" else "111111",
                                                 "pending": pending.group(1),
                                                 "csrf_token": csrf_of(step_one)})
        assert wrong.status_code == 401 and "plein_session" not in browser.cookies
        done = browser.post("/login/otp", data={"otp": code_at(secret, 1),
                                                "pending": pending.group(1), "next": "/profile",
                                                "csrf_token": csrf_of(step_one)})
        assert done.status_code == 303 and done.headers["location"] == "/profile", done.text
        profile = browser.get("/profile")
        assert 'id="totp-status"' in profile.text and 'data-left="10"' in profile.text

    # A recovery code works in the second step too, once.
    browser, step_one = password_step(site, email_of(alice))
    with closing(browser):
        pending = PENDING_RE.search(step_one.text)
        assert pending
        done = browser.post("/login/otp", data={"otp": codes[0], "pending": pending.group(1),
                                                "csrf_token": csrf_of(step_one)})
        assert done.status_code == 303
        assert 'data-left="9"' in browser.get("/profile").text
        off = submit(browser, "/profile", "/profile/totp/disable", {"code": codes[1]})
        assert off.status_code == 303
    browser, step_one = password_step(site, email_of(alice))
    with closing(browser):
        assert step_one.status_code == 303  # the password alone again


def test_the_second_step_note_cannot_be_forged_or_moved(site: Site, person: Cast) -> None:
    alice = person("Alice")
    with site.http(timeout=30, follow_redirects=False) as http:
        submit(http, "/login", "/login", {"email": email_of(alice), "password": PASSWORD})
        secret, _codes = set_up_on_profile(http)
    browser, step_one = password_step(site, email_of(alice))
    pending = PENDING_RE.search(step_one.text)
    assert pending
    body, mac = pending.group(1).split(".")
    payload = json.loads(base64.urlsafe_b64decode(body))
    longer = base64.urlsafe_b64encode(json.dumps({**payload, "exp": payload["exp"] + 9999})
                                      .encode()).decode()
    with closing(browser):
        forged = browser.post("/login/otp", data={
            "otp": code_at(secret, 1), "pending": f"{longer}.{mac}",
            "csrf_token": csrf_of(step_one)})
        assert forged.status_code == 401 and "plein_session" not in browser.cookies
    # Another browser (its own anonymous cookie) cannot use this browser's note.
    with site.http(timeout=30, follow_redirects=False) as other:
        shown = other.get("/login")
        moved = other.post("/login/otp", data={"otp": code_at(secret, 1),
                                               "pending": pending.group(1),
                                               "csrf_token": csrf_of(shown)})
        assert moved.status_code == 401 and "plein_session" not in other.cookies
