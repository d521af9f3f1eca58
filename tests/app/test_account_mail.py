"""Account flows that go through the mailbox (issue 9 items 1 and 7), against a live server that
sends to a real SMTP server on loopback: e-mail verification, resend, password reset,
invitation links, and registration that does not reveal which addresses have accounts."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.app.helpers import API, email_of, expect, expect_error, make_group, uid_of
from tests.live import Client, LiveServer, running_server, unique
from tests.mail_sink import MailSink, body_of, expire_token, token_in

PASSWORD = "correct horse battery staple"
VERIFY = "confirm your e-mail address"
RESET = "set a new password"
TAKEN = "someone tried to register"
INVITE = "invites you to"


@pytest.fixture(scope="module")
def sink() -> Iterator[MailSink]:
    found = MailSink()
    found.controller.start()
    try:
        yield found
    finally:
        found.controller.stop()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, sink: MailSink) -> Iterator[LiveServer]:
    """SMTP configured, verification left at ``auto``: so it is required."""
    with running_server(tmp_path_factory.mktemp("mail") / "data",
                        {"PLEIN_SMTP_URL": sink.url}) as server:
        yield server


@pytest.fixture(scope="module")
def alice(live: LiveServer) -> Iterator[Client]:
    """The first account: verified by being first, so it signs in at once (201)."""
    client = live.client()
    client.sign_up("Alice")
    assert client.user is not None and client.user["email_verified"] is True
    yield client
    client.close()


def address(name: str) -> str:
    return f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.nl"


def post_registration(live: LiveServer, email: str, name: str = "Nieuw",
                      password: str = PASSWORD) -> httpx.Response:
    return httpx.post(f"{live.url}{API}/users",
                      json={"email": email, "name": name, "password": password})


def anonymous_post(live: LiveServer, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{live.url}{API}{path}", json=body)


def verified_person(live: LiveServer, sink: MailSink, name: str) -> Client:
    """Register, open the mailed link, sign in: what a newcomer does."""
    email = address(name)
    expect(post_registration(live, email, name), 202)
    token = token_in(sink.wait_for(email, VERIFY), "/verify-email")
    expect(anonymous_post(live, "/email-verification", {"token": token}), 200)
    client = live.client()
    assert client.sign_in(email, PASSWORD).status_code == 200
    return client


def try_sign_in(live: LiveServer, email: str, password: str) -> httpx.Response:
    client = live.client()
    try:
        return client.sign_in(email, password)
    finally:
        client.close()


def user_count(live: LiveServer, email: str) -> int:
    with sqlite3.connect(live.data_dir / "plein.sqlite3") as db:
        return int(db.execute("select count(*) from users where email = ?",
                              (email.lower(),)).fetchone()[0])


def sentinel(live: LiveServer, sink: MailSink) -> None:
    """Mail leaves in order from one queue: once a later message arrived, any earlier one
    would have too. Lets a test check that something was *not* sent."""
    email = address("sentinel")
    expect(post_registration(live, email, "Sentinel"), 202)
    sink.wait_for(email, VERIFY)


# -- verification --------------------------------------------------------------------------

def test_a_new_account_signs_in_only_after_opening_the_link(live: LiveServer, sink: MailSink,
                                                           alice: Client) -> None:
    email = address("Nieuw")
    body = expect(post_registration(live, email), 202)
    assert body == {"status": "verification_sent"}
    client = live.client()
    try:
        expect_error(client.sign_in(email, PASSWORD), 403, "email_unverified")
        # A wrong password says nothing about the address being unverified.
        expect_error(client.sign_in(email, "wrong password!"), 401, "invalid_credentials")
        message = sink.wait_for(email, VERIFY)
        assert f"{live.url}/verify-email?token=" in body_of(message)
        token = token_in(message, "/verify-email")
        expect_error(anonymous_post(live, "/email-verification", {"token": token + "x"}), 400,
                     "token_invalid")
        assert expect(anonymous_post(live, "/email-verification", {"token": token}), 200) == \
            {"status": "verified"}
        # Single use.
        expect_error(anonymous_post(live, "/email-verification", {"token": token}), 400,
                     "token_invalid")
        assert client.sign_in(email, PASSWORD).status_code == 200
        assert client.user is not None and client.user["email_verified"] is True
    finally:
        client.close()


def test_send_again_replaces_the_link_and_tells_nothing(live: LiveServer, sink: MailSink,
                                                         alice: Client) -> None:
    email = address("Later")
    expect(post_registration(live, email), 202)
    first = token_in(sink.wait_for(email, VERIFY), "/verify-email")
    # Asked again at once: within a minute no second mail (no inbox flooding) ...
    assert expect(anonymous_post(live, "/email-verification/resend", {"email": email}),
                  202) == {"status": "accepted"}
    # ... and the same answer for an unknown address and for a verified one.
    for other in (address("niemand"), email_of(alice)):
        assert expect(anonymous_post(live, "/email-verification/resend", {"email": other}),
                      202) == {"status": "accepted"}
    sentinel(live, sink)
    assert len(sink.to(email)) == 1 and sink.to(email_of(alice)) == []
    # A minute later a new link goes out and the old one stops working.
    with sqlite3.connect(live.data_dir / "plein.sqlite3") as db:
        db.execute("update account_tokens set created_at = '2000-01-01 00:00:00.000000' "
                   "where email = ?", (email,))
    expect(anonymous_post(live, "/email-verification/resend", {"email": email.upper()}), 202)
    second = token_in(sink.wait_for(email, VERIFY, count=2), "/verify-email")
    assert second != first
    expect_error(anonymous_post(live, "/email-verification", {"token": first}), 400,
                 "token_invalid")
    expect(anonymous_post(live, "/email-verification", {"token": second}), 200)


def test_an_expired_verification_link_is_refused(live: LiveServer, sink: MailSink,
                                                 alice: Client) -> None:
    email = address("Traag")
    expect(post_registration(live, email), 202)
    token = token_in(sink.wait_for(email, VERIFY), "/verify-email")
    expire_token(live.data_dir, token)
    expect_error(anonymous_post(live, "/email-verification", {"token": token}), 400,
                 "token_invalid")
    expect_error(try_sign_in(live, email, PASSWORD), 403, "email_unverified")


# -- uniform registration (item 7) ---------------------------------------------------------

def test_registering_a_taken_address_answers_like_a_new_one(live: LiveServer, sink: MailSink,
                                                            alice: Client) -> None:
    owner = verified_person(live, sink, "Eigenaar")
    try:
        taken = email_of(owner)
        fresh = address("Vers")
        answers = [post_registration(live, e, "Indringer", "another password 123")
                   for e in (taken.upper(), fresh)]
        assert [a.status_code for a in answers] == [202, 202]
        assert answers[0].json() == answers[1].json() == {"status": "verification_sent"}
        assert set(answers[0].headers) - {"date", "content-length"} == \
            set(answers[1].headers) - {"date", "content-length"}
        assert user_count(live, taken) == 1 and user_count(live, fresh) == 1
        # The owner is told by mail; nothing changed for them.
        warning = sink.wait_for(taken, TAKEN)
        assert f"{live.url}/forgot-password" in body_of(warning)
        assert "token=" not in body_of(warning)
        # Trying again does not flood the owner's inbox (one such mail per ten minutes).
        expect(post_registration(live, taken, "Indringer", "another password 123"), 202)
        sentinel(live, sink)
        assert len([m for m in sink.to(taken) if TAKEN in str(m["Subject"])]) == 1
        expect(owner.get(f"{API}/users/me"), 200)
        assert try_sign_in(live, taken, PASSWORD).status_code == 200
        expect_error(try_sign_in(live, taken, "another password 123"), 401)
    finally:
        owner.close()


# -- password reset ------------------------------------------------------------------------

def test_password_reset_by_mail(live: LiveServer, sink: MailSink, alice: Client) -> None:
    person = verified_person(live, sink, "Vergeten")
    other_session = live.client()
    try:
        email = email_of(person)
        assert other_session.sign_in(email, PASSWORD).status_code == 200
        made = person.post(f"{API}/tokens", json={"name": "script"})
        assert made.status_code == 201, made.text
        token_header = {"Authorization": f"Bearer {made.json()['token']}"}
        expect(httpx.get(live.url + f"{API}/users/me", headers=token_header), 200)
        unknown = address("onbekend")
        known_answer = anonymous_post(live, "/password-reset", {"email": email.upper()})
        unknown_answer = anonymous_post(live, "/password-reset", {"email": unknown})
        assert known_answer.status_code == unknown_answer.status_code == 202
        assert known_answer.json() == unknown_answer.json() == {"status": "accepted"}
        message = sink.wait_for(email, RESET)
        token = token_in(message, "/reset-password")
        assert sink.to(unknown) == []

        new = "a brand new password"
        expect_error(anonymous_post(live, "/password-reset/confirm",
                                    {"token": token[:-2], "password": new}), 400, "token_invalid")
        expect_error(anonymous_post(live, "/password-reset/confirm",
                                    {"token": token, "password": "short"}), 400)
        expect(anonymous_post(live, "/password-reset/confirm", {"token": token, "password": new}),
               204)
        # Every session ended; the old password is gone, the new one works.
        expect_error(person.get(f"{API}/users/me"), 401)
        expect_error(other_session.get(f"{API}/users/me"), 401)
        expect_error(try_sign_in(live, email, PASSWORD), 401)
        # And every personal access token, as after a password change.
        expect_error(httpx.get(live.url + f"{API}/users/me", headers=token_header), 401)
        assert person.sign_in(email, new).status_code == 200
        # Single use.
        expect_error(anonymous_post(live, "/password-reset/confirm",
                                    {"token": token, "password": "yet another password"}), 400,
                     "token_invalid")
        sentinel(live, sink)
        assert sink.to(unknown) == []
    finally:
        person.close()
        other_session.close()


def test_an_expired_reset_link_is_refused(live: LiveServer, sink: MailSink,
                                          alice: Client) -> None:
    person = verified_person(live, sink, "Laat")
    try:
        email = email_of(person)
        expect(anonymous_post(live, "/password-reset", {"email": email}), 202)
        token = token_in(sink.wait_for(email, RESET), "/reset-password")
        expire_token(live.data_dir, token)
        expect_error(anonymous_post(live, "/password-reset/confirm",
                                    {"token": token, "password": "a brand new password"}), 400,
                     "token_invalid")
        expect(person.get(f"{API}/users/me"), 200)  # nothing happened
    finally:
        person.close()


def test_a_reset_proves_the_address(live: LiveServer, sink: MailSink, alice: Client) -> None:
    """Someone registered (unproven) with your address: resetting the password takes the
    account back and proves the address."""
    email = address("Gekaapt")
    expect(post_registration(live, email, "Kaper", "the squatter's password"), 202)
    sink.wait_for(email, VERIFY)
    expect(anonymous_post(live, "/password-reset", {"email": email}), 202)
    token = token_in(sink.wait_for(email, RESET), "/reset-password")
    expect(anonymous_post(live, "/password-reset/confirm",
                          {"token": token, "password": "the owner's password"}), 204)
    client = live.client()
    try:
        assert client.sign_in(email, "the owner's password").status_code == 200
        assert client.user is not None and client.user["email_verified"] is True
    finally:
        client.close()


# -- invitations ---------------------------------------------------------------------------

def test_an_attacker_registering_an_invited_address_does_not_become_member(
        live: LiveServer, sink: MailSink, alice: Client) -> None:
    """Issue 9 item 1, the regression: the invitation goes to whoever reads the mailbox."""
    group = make_group(alice, unique("Ministerie"))
    gid = group["id"]
    invited = address("x-ministerie")
    members = f"{API}/groups/{gid}/members"
    answer = expect(alice.post(members, json={"email": invited, "role": "admin"}), 201)
    assert answer["state"] == "invited" and answer["email"] == invited
    assert answer["link"] is None  # the mail carries it (issue 17: shown only without mail)
    invitation_mail = sink.wait_for(invited, INVITE)
    assert "Alice" in str(invitation_mail["Subject"]) and group["name"] in body_of(invitation_mail)
    token = token_in(invitation_mail, "/invite")

    # The attacker registers with the invited address: no membership, no sign-in even.
    expect(post_registration(live, invited, "Aanvaller", "attacker password 1"), 202)
    attacker = live.client()
    expect_error(attacker.sign_in(invited, "attacker password 1"), 403, "email_unverified")
    assert [i["email"] for i in expect(alice.get(members), 200)["invitations"]] == [invited]
    # With a verified account of their own, asking to join does not claim it either.
    outsider = verified_person(live, sink, "Buiten")
    try:
        assert expect(outsider.post(f"{API}/groups/{gid}/join"), 200)["state"] == "requested"
        expect_error(outsider.get(f"{API}/folders/{group['root_folder_id']}"), 404)
        expect_error(outsider.post(f"{API}/invitations/accept", json={"token": token + "x"}),
                     400, "token_invalid")
        assert [m["user"]["id"] for m in expect(alice.get(members), 200)["members"]
                if m["state"] == "member"] == [uid_of(alice)]
    finally:
        outsider.close()
        attacker.close()

    # The person who reads the mailbox follows the link, signed in with their own account.
    reader = verified_person(live, sink, "Lezer")
    try:
        accepted = expect(reader.post(f"{API}/invitations/accept", json={"token": token}), 200)
        assert accepted == {"group_id": gid, "role": "admin", "state": "member"}
        expect(reader.get(f"{API}/folders/{group['root_folder_id']}"), 200)
        assert expect(alice.get(members), 200)["invitations"] == []
        expect_error(reader.post(f"{API}/invitations/accept", json={"token": token}), 400,
                     "token_invalid")
    finally:
        reader.close()


def test_a_newcomer_who_proves_the_invited_address_is_a_member(
        live: LiveServer, sink: MailSink, alice: Client) -> None:
    group = make_group(alice, unique("Welkom"))
    invited = address("welkom")
    expect(alice.post(f"{API}/groups/{group['id']}/members", json={"email": invited}), 201)
    sink.wait_for(invited, INVITE)
    expect(post_registration(live, invited, "Welkom"), 202)
    token = token_in(sink.wait_for(invited, VERIFY), "/verify-email")
    expect(anonymous_post(live, "/email-verification", {"token": token}), 200)
    newcomer = live.client()
    try:
        assert newcomer.sign_in(invited, PASSWORD).status_code == 200
        seen = expect(newcomer.get(f"{API}/groups/{group['id']}"), 200)
        assert (seen["my_state"], seen["my_role"]) == ("member", "member")
    finally:
        newcomer.close()


def test_adding_an_account_with_an_unproven_address_invites_it(
        live: LiveServer, sink: MailSink, alice: Client) -> None:
    """The manager types the address; an unproven account there may be a squatter's, so it
    gets the invitation link like a newcomer. A proven one is added at once (as before)."""
    group = make_group(alice, unique("Gemengd"))
    members = f"{API}/groups/{group['id']}/members"
    squatted = address("bezet")
    expect(post_registration(live, squatted, "Kraker", "the squatter's password"), 202)
    invited = expect(alice.post(members, json={"email": squatted}), 201)
    assert invited["state"] == "invited"
    token = token_in(sink.wait_for(squatted, INVITE), "/invite")
    proven = verified_person(live, sink, "Bewezen")
    try:
        added = expect(alice.post(members, json={"email": email_of(proven)}), 201)
        assert added["state"] == "member"
        # The mailbox's reader takes the account back and so the invitation too.
        expect(anonymous_post(live, "/password-reset", {"email": squatted}), 202)
        reset = token_in(sink.wait_for(squatted, RESET), "/reset-password")
        expect(anonymous_post(live, "/password-reset/confirm",
                              {"token": reset, "password": "the owner's password"}), 204)
        owner = live.client()
        try:
            assert owner.sign_in(squatted, "the owner's password").status_code == 200
            assert expect(owner.get(f"{API}/groups/{group['id']}"), 200)["my_state"] == "member"
            # The link went with the invitation it was for.
            expect_error(owner.post(f"{API}/invitations/accept", json={"token": token}), 400,
                         "token_invalid")
        finally:
            owner.close()
    finally:
        proven.close()


def test_an_expired_or_withdrawn_invitation_link_is_refused(
        live: LiveServer, sink: MailSink, alice: Client) -> None:
    group = make_group(alice, unique("Verlopen"))
    members = f"{API}/groups/{group['id']}/members"
    late, withdrawn = address("laat"), address("ingetrokken")
    expect(alice.post(members, json={"email": late}), 201)
    invitation = expect(alice.post(members, json={"email": withdrawn}), 201)
    late_token = token_in(sink.wait_for(late, INVITE), "/invite")
    withdrawn_token = token_in(sink.wait_for(withdrawn, INVITE), "/invite")
    expire_token(live.data_dir, late_token)
    expect(alice.delete(f"{API}/groups/{group['id']}/invitations/{invitation['id']}"), 204)
    person = verified_person(live, sink, "Iemand")
    try:
        for token in (late_token, withdrawn_token):
            expect_error(person.post(f"{API}/invitations/accept", json={"token": token}), 400,
                         "token_invalid")
        assert expect(person.get(f"{API}/groups/{group['id']}"), 200)["my_state"] is None
    finally:
        person.close()


# -- the pages -----------------------------------------------------------------------------

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


def form_post(http: httpx.Client, page: str, action: str, data: dict[str, str]
              ) -> httpx.Response:
    shown = http.get(page)
    assert shown.status_code == 200, shown.text
    found = CSRF_RE.search(shown.text)
    assert found
    return http.post(action, data={**data, "csrf_token": found.group(1)})


def test_the_pages_behind_the_links(live: LiveServer, sink: MailSink, alice: Client) -> None:
    email = address("Pagina")
    with httpx.Client(base_url=live.url, timeout=30) as http:
        registered = form_post(http, "/register", "/register",
                               {"email": email, "name": "Pagina", "password": PASSWORD})
        assert registered.status_code == 200 and 'id="check-email"' in registered.text
        refused = form_post(http, "/login", "/login", {"email": email, "password": PASSWORD})
        assert refused.status_code == 403 and 'id="resend-verification"' in refused.text
        token = token_in(sink.wait_for(email, VERIFY), "/verify-email")
        # Opening the link (a mail scanner does too) shows a button; it uses nothing up.
        for _ in range(2):
            shown = http.get(f"/verify-email?token={token}")
            assert shown.status_code == 200 and 'id="confirm-email"' in shown.text
        done = form_post(http, f"/verify-email?token={token}", "/verify-email", {"token": token})
        assert done.status_code == 200 and 'id="form-notice"' in done.text
        again = form_post(http, f"/verify-email?token={token}", "/verify-email", {"token": token})
        assert again.status_code == 400
        signed_in = form_post(http, "/login", "/login", {"email": email, "password": PASSWORD})
        assert signed_in.status_code == 303

    with httpx.Client(base_url=live.url, timeout=30) as http:
        login_page = http.get("/login")
        assert 'href="/forgot-password"' in login_page.text
        sent = form_post(http, "/forgot-password", "/forgot-password", {"email": email})
        assert sent.status_code == 200 and 'id="check-email"' in sent.text
        token = token_in(sink.wait_for(email, RESET), "/reset-password")
        form = http.get(f"/reset-password?token={token}")
        assert form.status_code == 200 and f'value="{token}"' in form.text
        done = form_post(http, f"/reset-password?token={token}", "/reset-password",
                         {"token": token, "password": "a new page password"})
        assert done.status_code == 200 and 'id="form-notice"' in done.text
        assert form_post(http, "/login", "/login", {"email": email,
                                                   "password": "a new page password"}
                         ).status_code == 303

    group = make_group(alice, unique("Uitnodiging"))
    invited = address("uitgenodigd")
    expect(alice.post(f"{API}/groups/{group['id']}/members", json={"email": invited}), 201)
    token = token_in(sink.wait_for(invited, INVITE), "/invite")
    with httpx.Client(base_url=live.url, timeout=30) as http:
        shown = http.get(f"/invite?token={token}")
        assert shown.status_code == 200 and 'id="invite-sign-in"' in shown.text
        assert group["name"] in shown.text
        assert http.get("/invite?token=nothing").status_code == 400
        form_post(http, "/login", "/login", {"email": email, "password": "a new page password"})
        accepted = form_post(http, f"/invite?token={token}", "/invite", {"token": token})
        assert accepted.status_code == 303
        assert accepted.headers["location"] == f"/groups/{group['id']}"
        assert http.get(f"/groups/{group['id']}").status_code == 200


def test_with_mail_the_invitation_link_is_not_shown(live: LiveServer, sink: MailSink,
                                                     alice: Client) -> None:
    """Issue 17: the link is handed over only when no mail can carry it."""
    from tests.app.test_document_pages import csrf_of

    group = make_group(alice, unique("Post"))
    invited = address("postbus")
    answer = expect(alice.post(f"{API}/groups/{group['id']}/members", json={"email": invited}),
                    201)
    assert answer["link"] is None
    sink.wait_for(invited, INVITE)
    page = alice.http.get(f"/groups/{group['id']}")
    again = f"/groups/{group['id']}/invitations/{answer['id']}/link"
    assert again not in page.text and 'id="invite-link"' not in page.text
    assert alice.http.post(again, data={"csrf_token": csrf_of(page)}).status_code == 404
