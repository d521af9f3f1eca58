"""Two-step sign-in (TOTP, RFC 6238): enrol, confirm, sign in with a code or a recovery code,
throttling, replay, turning it off (API.md, "Identity and audit")."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp

from tests.app.helpers import API, email_of, expect, expect_error
from tests.live import Client
from tests.plugin import Cast, Site

PASSWORD = "correct horse battery staple"


def code_at(secret: str, offset_steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def enrol(client: Client) -> tuple[str, list[str]]:
    """Turn two-step sign-in on for ``client``: (secret, recovery codes)."""
    started = expect(client.post(f"{API}/users/me/totp"), 200)
    secret = started["secret"]
    confirmed = expect(client.post(f"{API}/users/me/totp/confirm",
                                   json={"code": code_at(secret)}), 200)
    return secret, confirmed["recovery_codes"]


def sign_in(site: Site, email: str, **extra: Any) -> tuple[Client, Any]:
    client = site.client()
    response = client.http.post(f"{API}/session",
                                json={"email": email, "password": PASSWORD, **extra})
    return client, response


def test_enrolment_gives_a_secret_its_uri_and_ten_recovery_codes(person: Cast) -> None:
    alice = person("Alice")
    started = expect(alice.post(f"{API}/users/me/totp"), 200)
    assert set(started) == {"secret", "otpauth_uri"}
    uri = urlsplit(started["otpauth_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert parse_qs(uri.query)["secret"] == [started["secret"]]
    assert unquote(uri.path) == f"/Plein:{email_of(alice)}"
    confirmed = expect(alice.post(f"{API}/users/me/totp/confirm",
                                  json={"code": code_at(started["secret"])}), 200)
    codes = confirmed["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    # Once on, enrolling again needs turning it off first.
    expect_error(alice.post(f"{API}/users/me/totp"), 409, "totp_enabled")


def test_a_wrong_code_does_not_confirm(person: Cast, site: Site) -> None:
    alice = person("Alice")
    started = expect(alice.post(f"{API}/users/me/totp"), 200)
    right = code_at(started["secret"])
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    expect_error(alice.post(f"{API}/users/me/totp/confirm", json={"code": wrong}), 422,
                 "invalid_otp", "code")
    # Not on: the password alone still signs in.
    _client, response = sign_in(site, email_of(alice))
    expect(response, 200)


def test_sign_in_needs_the_code_once_it_is_on(person: Cast, site: Site) -> None:
    alice = person("Alice")
    secret, _codes = enrol(alice)
    _c, response = sign_in(site, email_of(alice))
    expect_error(response, 401, "otp_required")
    _c, response = sign_in(site, email_of(alice), otp="000000" if code_at(secret) != "000000"
                           else "111111")
    expect_error(response, 401, "invalid_otp")
    client, response = sign_in(site, email_of(alice), otp=code_at(secret, 1))
    assert expect(response, 200)["id"] == alice.user["id"]  # type: ignore[index]
    assert expect(client.http.get(f"{API}/users/me"), 200)["email"] == email_of(alice)


def test_a_code_is_accepted_once(person: Cast, site: Site) -> None:
    alice = person("Alice")
    secret, _codes = enrol(alice)
    code = code_at(secret, 1)
    _c, first = sign_in(site, email_of(alice), otp=code)
    expect(first, 200)
    _c, replay = sign_in(site, email_of(alice), otp=code)
    expect_error(replay, 401, "invalid_otp")
    # The code of the confirmation step (already used) is refused too: steps only go forward.
    _c, older = sign_in(site, email_of(alice), otp=code_at(secret))
    expect_error(older, 401, "invalid_otp")


def test_a_recovery_code_works_once(person: Cast, site: Site) -> None:
    alice = person("Alice")
    _secret, codes = enrol(alice)
    _c, first = sign_in(site, email_of(alice), otp=codes[0].upper())
    expect(first, 200)
    _c, again = sign_in(site, email_of(alice), otp=codes[0])
    expect_error(again, 401, "invalid_otp")
    _c, other = sign_in(site, email_of(alice), otp=codes[1])
    expect(other, 200)


def test_guessing_codes_is_throttled(person: Cast, site: Site) -> None:
    alice = person("Alice")
    secret, _codes = enrol(alice)
    wrong = "123456" if code_at(secret) != "123456" else "654321"
    statuses = [sign_in(site, email_of(alice), otp=wrong)[1].status_code for _ in range(5)]
    assert statuses[:3] == [401, 401, 401] and 429 in statuses[3:], statuses
    _c, right = sign_in(site, email_of(alice), otp=code_at(secret, 1))
    expect_error(right, 429)


def test_confirming_ends_my_other_sessions(person: Cast, site: Site) -> None:
    alice = person("Alice")
    other, response = sign_in(site, email_of(alice))
    expect(response, 200)
    expect(other.http.get(f"{API}/users/me"), 200)
    enrol(alice)
    expect_error(other.http.get(f"{API}/users/me"), 401)
    expect(alice.get(f"{API}/users/me"), 200)


def test_turning_it_off_needs_a_code(person: Cast, site: Site) -> None:
    alice = person("Alice")
    secret, _codes = enrol(alice)
    expect_error(alice.delete(f"{API}/users/me/totp", json={"code": "not-a-code"}), 422,
                 "invalid_otp")
    expect_error(alice.delete(f"{API}/users/me/totp", json={}), 400, "invalid_field")
    expect(alice.delete(f"{API}/users/me/totp", json={"code": code_at(secret, 1)}), 204)
    _c, response = sign_in(site, email_of(alice))
    expect(response, 200)
    expect_error(alice.delete(f"{API}/users/me/totp", json={"code": code_at(secret, 1)}), 409,
                 "totp_not_enabled")


def test_signed_out_callers_cannot_enrol(anonymous: Client) -> None:
    expect_error(anonymous.post(f"{API}/users/me/totp"), 401)
    expect_error(anonymous.post(f"{API}/users/me/totp/confirm", json={"code": "123456"}), 401)
