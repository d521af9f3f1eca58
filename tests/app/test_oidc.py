"""Single sign-on with OpenID Connect against a real provider (tests/oidc_provider.py): the
code flow with PKCE, accounts linked by issuer + subject, and what must be refused (replayed
state, another browser's callback, an expired code, a token for another audience, a tampered
token, an address the provider did not verify)."""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.app.helpers import API
from tests.app.test_pages import csrf_of
from tests.live import LiveServer, unique
from tests.oidc_provider import CLIENT_ID, Sso, running_sso

# A real server and a real provider, each a process of its own.
pytestmark = pytest.mark.server

PASSWORD = "correct horse battery staple"
CODE_TTL = 4


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sso]:
    with running_sso(tmp_path_factory.mktemp("sso"), code_ttl=CODE_TTL) as started:
        yield started


def me(browser: httpx.Client) -> dict[str, object] | None:
    answer = browser.get(f"{API}/session")
    assert answer.status_code == 200
    user: dict[str, object] | None = answer.json()["user"]
    return user


def links(server: LiveServer) -> list[tuple[str, str, str]]:
    with sqlite3.connect(server.data_dir / "plein.sqlite3") as db:
        return list(db.execute("select issuer, subject, user_id from oidc_links"))


def test_the_login_sends_the_browser_to_the_provider_with_pkce_state_and_nonce(
        sso: Sso) -> None:
    with sso.browser() as browser:
        query = parse_qs(urlsplit(sso.to_provider(browser)).query)
    assert query["response_type"] == ["code"] and query["client_id"] == [CLIENT_ID]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["redirect_uri"] == [f"{sso.server.url}/auth/oidc/callback"]
    assert "openid" in query["scope"][0].split()


def test_a_first_sign_on_creates_the_account_and_the_next_finds_it(sso: Sso) -> None:
    sub, email = unique("sub"), f"{unique('new')}@gemeente.example"
    sso.op.account(sub, email, name="Nieuwe Collega")
    with sso.browser() as browser:
        done = browser.get(sso.callback_url(browser, sub))
        assert done.status_code == 303, done.text
        user = me(browser)
        assert user is not None and user["email"] == email and user["name"] == "Nieuwe Collega"
        assert user["email_verified"] is True and user["is_site_admin"] is False
    assert (sso.op.url, sub, user["id"]) in links(sso.server)
    with sso.browser() as again:
        assert again.get(sso.callback_url(again, sub)).status_code == 303
        assert (me(again) or {})["id"] == user["id"]
    assert len([row for row in links(sso.server) if row[1] == sub]) == 1


def test_an_existing_account_is_linked_only_after_its_password(sso: Sso) -> None:
    person = sso.server.client()
    email = f"{unique('existing')}@gemeente.example"
    person.sign_up("Existing", email=email)
    sub = unique("sub")
    sso.op.account(sub, email)
    with sso.browser() as browser:
        asked = browser.get(sso.callback_url(browser, sub))
        assert asked.status_code == 200 and 'action="/auth/oidc/link"' in asked.text
        assert me(browser) is None
        note = asked.text.split('name="note" value="')[1].split('"')[0]
        wrong = browser.post("/auth/oidc/link", data={"note": note, "password": "wrong one!",
                                                      "csrf_token": csrf_of(asked)})
        assert wrong.status_code == 401 and me(browser) is None
        assert not [row for row in links(sso.server) if row[1] == sub]
        right = browser.post("/auth/oidc/link", data={"note": note, "password": PASSWORD,
                                                      "csrf_token": csrf_of(asked)})
        assert right.status_code == 303
        assert (me(browser) or {})["id"] == (person.user or {})["id"]
    person.close()
    # From now on the provider alone signs this person in.
    with sso.browser() as later:
        assert later.get(sso.callback_url(later, sub)).status_code == 303
        assert (me(later) or {})["id"] == (person.user or {})["id"]


def test_an_address_the_provider_did_not_verify_is_not_trusted(sso: Sso) -> None:
    victim = sso.server.client()
    email = f"{unique('victim')}@gemeente.example"
    victim.sign_up("Victim", email=email)
    victim.close()
    sub = unique("attacker")
    sso.op.account(sub, email, verified=False)
    with sso.browser() as browser:
        refused = browser.get(sso.callback_url(browser, sub))
        assert refused.status_code == 400 and 'data-reason="email_unverified"' in refused.text
        assert me(browser) is None
    fresh = unique("fresh")
    sso.op.account(fresh, f"{fresh}@gemeente.example", verified=False)
    with sso.browser() as browser:
        assert browser.get(sso.callback_url(browser, fresh)).status_code == 400
        assert me(browser) is None
    assert not [row for row in links(sso.server) if row[1] in (sub, fresh)]


def test_a_replayed_callback_is_refused(sso: Sso) -> None:
    sub = unique("sub")
    sso.op.account(sub, f"{sub}@gemeente.example")
    with sso.browser() as browser:
        url = sso.callback_url(browser, sub)
        assert browser.get(url).status_code == 303
        browser.cookies.clear()
        # The same state (and code) again: the sign-on it named is used up.
        replay = browser.get(url)
        assert replay.status_code == 400 and 'data-reason="unknown_state"' in replay.text
        assert me(browser) is None


def test_a_callback_in_another_browser_is_refused(sso: Sso) -> None:
    sub = unique("sub")
    sso.op.account(sub, f"{sub}@gemeente.example")
    with sso.browser() as started, sso.browser() as other:
        url = sso.callback_url(started, sub)
        moved = other.get(url)
        assert moved.status_code == 400 and 'data-reason="other_browser"' in moved.text
        assert me(other) is None
        # And it is used up for the browser that started it too.
        assert started.get(url).status_code == 400 and me(started) is None


def test_an_expired_code_is_refused(sso: Sso) -> None:
    sub = unique("sub")
    sso.op.account(sub, f"{sub}@gemeente.example")
    with sso.browser() as browser:
        url = sso.callback_url(browser, sub)
        time.sleep(CODE_TTL + 1.5)
        late = browser.get(url)
        assert late.status_code == 400 and 'data-reason="code_refused"' in late.text
        assert me(browser) is None


def test_state_that_names_nothing_and_provider_errors_are_refused(sso: Sso) -> None:
    with sso.browser() as browser:
        sso.to_provider(browser)
        made_up = browser.get("/auth/oidc/callback", params={"state": "x" * 43, "code": "y"})
        assert made_up.status_code == 400 and me(browser) is None
        url = urlsplit(sso.to_provider(browser))
        state = parse_qs(url.query)["state"][0]
        denied = browser.get("/auth/oidc/callback",
                             params={"state": state, "error": "access_denied"})
        assert denied.status_code == 400 and 'data-reason="provider_refused"' in denied.text


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    loaded: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return loaded


def test_id_tokens_are_checked_signature_audience_issuer_nonce(sso: Sso, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    """Plein's verifier, on real tokens of the provider: one issued to another client (wrong
    audience), one with its payload altered (the signature no longer matches), a wrong nonce."""
    from app.services.oidc import OidcFailure, Provider
    from app.settings import Settings

    other_id, other_secret = "other-app", secrets.token_urlsafe(16)
    other_redirect = "http://127.0.0.1:9/cb"
    sso.op.control("clients", client_id=other_id, client_secret=other_secret,
                   redirect_uri=other_redirect)
    sub = unique("sub")
    sso.op.account(sub, f"{sub}@gemeente.example")

    def token_for(client_id: str, secret: str, redirect: str, nonce: str) -> str:
        from authlib.oauth2.rfc7636 import create_s256_code_challenge
        verifier = secrets.token_urlsafe(48)
        authorize = httpx.URL(f"{sso.op.url}/auth", params={
            "response_type": "code", "client_id": client_id, "redirect_uri": redirect,
            "scope": "openid email", "state": "s" * 20, "nonce": nonce,
            "code_challenge": create_s256_code_challenge(verifier),
            "code_challenge_method": "S256"})
        back = sso.op.sign_in(str(authorize), sub)
        code = parse_qs(urlsplit(back).query)["code"][0]
        answer = httpx.post(f"{sso.op.url}/token", auth=(client_id, secret), data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "code_verifier": verifier})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["id_token"])

    monkeypatch.setenv("PLEIN_DATA_DIR", str(tmp_path))
    ours = Provider(Settings(oidc_issuer=sso.op.url, oidc_client_id=CLIENT_ID,
                             oidc_client_secret="unused"))
    theirs = token_for(other_id, other_secret, other_redirect, "n" * 20)
    assert _claims(theirs)["aud"] == other_id
    with pytest.raises(OidcFailure, match="bad_id_token: claims"):
        ours.verify_id_token(theirs, nonce="n" * 20)
    # The same token is good for the client it was issued to: the refusal is the audience.
    assert Provider(Settings(oidc_issuer=sso.op.url, oidc_client_id=other_id)
                    ).verify_id_token(theirs, nonce="n" * 20).subject == sub

    header, payload, signature = theirs.split(".")
    claims = _claims(theirs)
    claims["aud"] = CLIENT_ID
    tampered = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(OidcFailure, match="bad_id_token: signature"):
        ours.verify_id_token(tampered, nonce="n" * 20)
    unsigned = f"{_b64(json.dumps({'alg': 'none'}).encode())}.{_b64(json.dumps(claims).encode())}."
    with pytest.raises(OidcFailure, match="bad_id_token"):
        ours.verify_id_token(unsigned, nonce="n" * 20)
    with pytest.raises(OidcFailure, match="bad_id_token: claims"):
        Provider(Settings(oidc_issuer=sso.op.url, oidc_client_id=other_id)
                 ).verify_id_token(theirs, nonce="another nonce")


def test_a_rotated_signing_key_is_fetched_when_a_token_names_it(sso: Sso) -> None:
    sub = unique("sub")
    sso.op.account(sub, f"{sub}@gemeente.example")
    with sso.browser() as browser:  # the server now holds the provider's current keys
        assert browser.get(sso.callback_url(browser, sub)).status_code == 303
    sso.op.control("rotate")
    with sso.browser() as browser:
        done = browser.get(sso.callback_url(browser, sub))
        assert done.status_code == 303, done.text
        assert me(browser) is not None
