"""A real OpenID Provider for the single sign-on tests: panva/oidc-provider (OpenID
Certified) run by Node from tests/oidc/op.mjs, with its development sign-in pages, and a
client that walks a browser's way through them; :func:`running_sso` starts it with a Plein
server configured to sign people on with it (the SSO tests of the server and browser layers)."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from tests.live import REPO, LiveServer, free_port

OP_DIR = REPO / "tests" / "oidc"
FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


def provider_available() -> str | None:
    """Why the provider cannot run here, or None if it can (`scripts/setup --test` installs
    it, so its absence is a failure to see)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        return "tests/oidc/node_modules/oidc-provider missing (cd tests/oidc && npm ci)"
    return None


class OpenIdProvider:
    def __init__(self, url: str, proc: subprocess.Popen[str]) -> None:
        self.url = url
        self.proc = proc

    def control(self, what: str, **body: Any) -> None:
        response = httpx.post(f"{self.url}/test/{what}", json=body, timeout=10)
        assert response.status_code == 204, response.text

    def account(self, sub: str, email: str, *, verified: bool = True, name: str = "") -> None:
        self.control("accounts", sub=sub, email=email, email_verified=verified,
                     name=name or sub)

    def sign_in(self, authorization_url: str, login: str) -> str:
        """Sign in at the provider as ``login`` and consent, as a person would in the browser;
        returns the URL the provider sends the browser back to (the callback, with its code)."""
        with httpx.Client(timeout=10, follow_redirects=False) as browser:
            url = authorization_url
            for _ in range(12):
                response = browser.get(url)
                if response.is_redirect:
                    target = urljoin(url, response.headers["location"])
                    if not target.startswith(self.url):
                        return target
                    url = target
                    continue
                assert response.status_code == 200, response.text
                action = FORM_ACTION.search(response.text)
                assert action, response.text
                prompt = "login" if 'name="login"' in response.text else "consent"
                form = {"prompt": prompt}
                if prompt == "login":
                    form.update(login=login, password="any")
                posted = browser.post(urljoin(url, action.group(1)), data=form)
                assert posted.is_redirect, posted.text
                url = urljoin(url, posted.headers["location"])
                if not url.startswith(self.url):
                    return url
        raise AssertionError("the provider did not send the browser back")


@contextmanager
def running_provider(client_id: str, client_secret: str, redirect_uri: str, *,
                     code_ttl: int = 60, log: Path | None = None) -> Iterator[OpenIdProvider]:
    problem = provider_available()
    assert problem is None, f"{problem}; run scripts/setup --test"
    port = free_port()
    with (log.open("ab") if log else open("/dev/null", "wb")) as errors:
        proc = subprocess.Popen(
            ["node", str(OP_DIR / "op.mjs"), str(port), client_id, client_secret, redirect_uri,
             str(code_ttl)], cwd=OP_DIR, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("ready "), f"the provider did not start: {line!r}"
            yield OpenIdProvider(line.split()[1], proc)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


CLIENT_ID = "plein"


@dataclass
class Sso:
    """A real Plein server whose single sign-on goes to a real provider."""

    server: LiveServer
    op: OpenIdProvider

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=30, follow_redirects=False)

    def to_provider(self, browser: httpx.Client, next_url: str = "") -> str:
        started = browser.get("/auth/oidc/login" + (f"?next={next_url}" if next_url else ""))
        assert started.status_code == 303, started.text
        location = started.headers["location"]
        assert location.startswith(self.op.url)
        return location

    def callback_url(self, browser: httpx.Client, login: str) -> str:
        back = self.op.sign_in(self.to_provider(browser), login)
        assert back.startswith(f"{self.server.url}/auth/oidc/callback?"), back
        return back


@contextmanager
def running_sso(root: Path, *, code_ttl: int = 60) -> Iterator[Sso]:
    """A provider and a server that trusts it; the server's first account (the site
    administrator) is made before anyone signs on."""
    server = LiveServer(root / "data")
    secret = secrets.token_urlsafe(24)
    with running_provider(CLIENT_ID, secret, f"{server.url}/auth/oidc/callback",
                          code_ttl=code_ttl, log=root / "op.log") as op:
        server.extra_env.update({"PLEIN_BASE_URL": server.url, "PLEIN_OIDC_ISSUER": op.url,
                                 "PLEIN_OIDC_CLIENT_ID": CLIENT_ID,
                                 "PLEIN_OIDC_CLIENT_SECRET": secret})
        server.start()
        try:
            admin = server.client()
            admin.sign_up("Admin")
            admin.close()
            yield Sso(server, op)
        finally:
            server.stop()
