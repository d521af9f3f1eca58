"""The access matrix of the links sent by e-mail (issue 9 items 1 and 7): each path that takes a
mailed token × who holds it and in what state, as a readable table checked against a live
server that mails to a real SMTP server on loopback.

Columns (the token in the request, and who sends it):

- ``signed_out``: a fresh, valid token, sent by a signed-out visitor;
- ``other``: a fresh, valid token, sent by a signed-in account other than the one it was made
  for. A link proves that its holder reads the mailbox it went to, not who is signed in:
  verifying proves the *token's* account, a reset sets the *token's* account's password, and an
  invitation goes to whoever accepts it (see docs/configuration.md);
- ``wrong``: a random token; ``used``: a token used once already; ``expired``: past its
  lifetime; ``purpose``: a valid token made for another purpose.

303 on a page: accepted, on to the group. A link's page answers a GET with a form that uses
nothing up; the rows below are for the POSTs (and the invitation page's GET, which shows the
group's name to the token's holder only).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.app.helpers import API, describe, expect, make_group
from tests.live import Client, LiveServer, running_server, unique
from tests.mail_sink import MailSink, expire_token, token_in

PASSWORD = "correct horse battery staple"
COLUMNS = ("signed_out", "other", "wrong", "used", "expired", "purpose")

TABLE = """
path                              signed_out other wrong used expired purpose
API POST /email-verification      200        200   400   400  400     400
API POST /password-reset/confirm  204        204   400   400  400     400
API POST /invitations/accept      401        200   400   400  400     400
PAGE POST /verify-email           200        200   400   400  400     400
PAGE POST /reset-password         200        200   400   400  400     400
PAGE GET /invite                  200        200   400   400  400     400
PAGE POST /invite                 200        303   400   400  400     400
"""

# Which kind of token each path takes (the ``purpose`` column sends another kind).
KIND = {"/email-verification": "verify", "/password-reset/confirm": "reset",
        "/invitations/accept": "invite", "/verify-email": "verify", "/reset-password": "reset",
        "/invite": "invite"}
OTHER_KIND = {"verify": "invite", "reset": "verify", "invite": "reset"}
USE_PATH = {"verify": "/email-verification", "reset": "/password-reset/confirm",
            "invite": "/invitations/accept"}


def parse_table(text: str) -> dict[tuple[str, str], int]:
    lines = [line.split() for line in text.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert tuple(header[1:]) == COLUMNS
    cells = {}
    for row in rows:
        path, values = " ".join(row[:3]), row[3:]
        assert len(values) == len(COLUMNS), row
        for column, value in zip(COLUMNS, values, strict=True):
            cells[(path, column)] = int(value)
    return cells


CELLS = parse_table(TABLE)


class World:
    def __init__(self, live: LiveServer, sink: MailSink, owner: Client, other: Client,
                 other_pages: httpx.Client) -> None:
        self.live, self.sink, self.owner = live, sink, owner
        self.other, self.other_pages = other, other_pages
        self.group = make_group(owner, unique("Matrix"))

    def _register(self) -> str:
        email = f"m-{uuid.uuid4().hex[:10]}@example.nl"
        response = httpx.post(f"{self.live.url}{API}/users",
                              json={"email": email, "name": "Matrix", "password": PASSWORD})
        assert response.status_code == 202, describe(response)
        return email

    def token(self, kind: str) -> str:
        """A fresh token of ``kind``, made the way a person gets one: by mail."""
        if kind == "verify":
            email = self._register()
            return token_in(self.sink.wait_for(email, "confirm your e-mail"), "/verify-email")
        if kind == "reset":
            email = self._register()
            expect(httpx.post(f"{self.live.url}{API}/password-reset", json={"email": email}),
                   202)
            return token_in(self.sink.wait_for(email, "set a new password"), "/reset-password")
        email = f"i-{uuid.uuid4().hex[:10]}@example.nl"
        expect(self.owner.post(f"{API}/groups/{self.group['id']}/members",
                               json={"email": email}), 201)
        return token_in(self.sink.wait_for(email, "invites you to"), "/invite")

    def use(self, kind: str, token: str) -> None:
        body: dict[str, Any] = {"token": token}
        if kind == "reset":
            body["password"] = "a fresh password 1"
        client = self.other if kind == "invite" else None
        if client is not None:
            expect(client.post(f"{API}{USE_PATH[kind]}", json=body), 200)
        else:
            response = httpx.post(f"{self.live.url}{API}{USE_PATH[kind]}", json=body)
            assert response.status_code in (200, 204), describe(response)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    sink = MailSink()
    sink.controller.start()
    try:
        with running_server(tmp_path_factory.mktemp("matrix-accounts") / "data",
                            {"PLEIN_SMTP_URL": sink.url}) as live:
            owner = live.client()
            owner.sign_up("Owner")  # the first account: verified
            other = live.client()
            other_email = f"other-{uuid.uuid4().hex[:8]}@example.nl"
            expect(httpx.post(f"{live.url}{API}/users", json={"email": other_email,
                                                              "name": "Other",
                                                              "password": PASSWORD}), 202)
            token = token_in(sink.wait_for(other_email, "confirm your e-mail"), "/verify-email")
            expect(httpx.post(f"{live.url}{API}/email-verification", json={"token": token}), 200)
            assert other.sign_in(other_email, PASSWORD).status_code == 200
            other_pages = httpx.Client(base_url=live.url, timeout=30)
            login = other_pages.post("/login", data={"email": other_email, "password": PASSWORD,
                                                     "csrf_token": csrf(other_pages, "/login")})
            assert login.status_code == 303, login.text
            try:
                yield World(live, sink, owner, other, other_pages)
            finally:
                other_pages.close()
                other.close()
                owner.close()
    finally:
        sink.controller.stop()


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf(http: httpx.Client, page: str) -> str:
    shown = http.get(page)
    found = CSRF_RE.search(shown.text)
    assert found and found.group(1), shown.text
    return found.group(1)


def token_for(world: World, kind: str, column: str) -> str:
    if column == "wrong":
        return "Zm9vYmFy" + uuid.uuid4().hex
    if column == "purpose":
        return world.token(OTHER_KIND[kind])
    token = world.token(kind)
    if column == "used":
        world.use(kind, token)
    elif column == "expired":
        expire_token(world.live.data_dir, token)
    return token


def send(world: World, path: str, column: str, token: str) -> httpx.Response:
    surface, method, route = path.split()
    if surface == "API":
        body: dict[str, Any] = {"token": token}
        if KIND[route] == "reset":
            body["password"] = "a new password 12"
        if column == "signed_out":
            return httpx.post(f"{world.live.url}{API}{route}", json=body)
        return world.other.post(f"{API}{route}", json=body)
    signed_out = column == "signed_out"
    http = httpx.Client(base_url=world.live.url, timeout=30) if signed_out else world.other_pages
    try:
        if method == "GET":
            return http.get(f"{route}?token={token}")
        data = {"token": token, "csrf_token": csrf(http, "/forgot-password")}
        if KIND[route] == "reset":
            data["password"] = "a new password 12"
        return http.post(route, data=data)
    finally:
        if signed_out:
            http.close()


@pytest.mark.parametrize(("path", "column"), list(CELLS), ids=lambda v: str(v))
def test_account_link_matrix(world: World, path: str, column: str) -> None:
    expected = CELLS[(path, column)]
    token = token_for(world, KIND[path.split()[2]], column)
    response = send(world, path, column, token)
    assert response.status_code == expected, describe(response)
    if path.startswith("API") and expected == 400:
        assert response.json()["error"]["code"] == "token_invalid"


def test_every_link_path_is_in_the_matrix() -> None:
    from app.pages import page_routes
    from app.routes.api import router

    link_api = {r.path.removeprefix("/api/v1") for r in router.api_routes
                if r.body is not None and "token" in r.body.model_fields}
    assert link_api == {p.split()[2] for p in {k[0] for k in CELLS} if p.startswith("API")}
    pages = {getattr(r, "path", "") for r in page_routes()}
    assert {"/verify-email", "/reset-password", "/invite"} <= pages


def test_the_e_mail_forms_answer_the_same_for_any_address(world: World) -> None:
    """No account oracle: known, unknown and verified addresses get one answer, signed in
    or not."""
    known = world._register()
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.nl"
    for path in ("/password-reset", "/email-verification/resend"):
        answers = [httpx.post(f"{world.live.url}{API}{path}", json={"email": email})
                   for email in (known, unknown)]
        answers.append(world.other.post(f"{API}{path}", json={"email": unknown}))
        assert {(a.status_code, a.text) for a in answers} == {(202, '{"status":"accepted"}')}
