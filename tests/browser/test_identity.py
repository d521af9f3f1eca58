"""Signing in as people in government do, in headless Chromium: two-step sign-in set up on the
profile page with a code computed from the key the page shows, then asked for at the next
sign-in; and single sign-on through a real OpenID provider's own sign-in and consent pages
(tests/oidc_provider.py), with two-step sign-in still asked for after it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect

from tests.live import LiveServer
from tests.oidc_provider import Sso, running_sso

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
PageFor = Callable[[str], Page]


@pytest.fixture
def page_on(chromium: Browser) -> Iterator[PageFor]:
    """A page in a browser context of its own (its own cookies) on the server at a URL."""
    contexts: list[BrowserContext] = []

    def make(base_url: str) -> Page:
        context = chromium.new_context(base_url=base_url, viewport=VIEWPORT, locale="nl-NL")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sso]:
    with running_sso(tmp_path_factory.mktemp("sso-browser")) as started:
        yield started


def signed_in_as(page: Page) -> dict[str, object]:
    expect(page.get_by_role("heading", name="Mijn groepen")).to_be_visible()
    answer = page.request.get("/api/v1/session")
    assert answer.ok
    user: dict[str, object] = answer.json()["user"]
    return user


def password_step(page: Page, email: str) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.get_by_role("main").get_by_role("button", name="Aanmelden").click()


def enrol_two_step(page: Page) -> tuple[pyotp.TOTP, list[str]]:
    """Set up two-step sign-in on the profile page as a person with an authenticator app
    would: read the key the page shows and type in the code the app computes from it."""
    page.goto("/profile#two-step")
    page.locator("#totp-enrol").click()
    expect(page.locator("#totp-qr svg")).to_be_visible()
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text().strip())
    page.fill("#totp-code", totp.now())
    page.locator("#two-step").get_by_role("button", name="Aanzetten").click()
    codes = page.locator("#recovery-codes li").all_inner_texts()
    assert len(codes) == 10, codes
    page.goto("/profile#two-step")
    expect(page.locator("#totp-status")).to_be_visible()
    return totp, codes


def next_code(totp: pyotp.TOTP) -> str:
    """The code of the next 30-second step: the one just used to turn it on is spent (a code
    is accepted once), and the server allows one step of clock drift."""
    return totp.at(time.time() + totp.interval)


def test_two_step_sign_in_set_up_on_the_profile_and_asked_at_sign_in(
        server: LiveServer, page_on: PageFor) -> None:
    email = f"tweestaps-{uuid.uuid4().hex[:8]}@example.nl"
    api = server.client()
    api.sign_up("Twee Stappen", email=email)
    api.close()

    first = page_on(server.url)
    password_step(first, email)
    signed_in_as(first)
    totp, codes = enrol_two_step(first)

    # Signing in again: the password alone is not enough any more.
    again = page_on(server.url)
    password_step(again, email)
    expect(again.get_by_role("heading", name="Inloggen in twee stappen")).to_be_visible()
    again.fill("#otp", next_code(totp))
    again.get_by_role("main").get_by_role("button", name="Aanmelden").click()
    assert signed_in_as(again)["email"] == email

    # Lost the app: a recovery code works, once.
    lost = page_on(server.url)
    password_step(lost, email)
    lost.fill("#otp", codes[0])
    lost.get_by_role("main").get_by_role("button", name="Aanmelden").click()
    signed_in_as(lost)
    lost.goto("/profile#two-step")
    expect(lost.locator("#codes-left")).to_have_attribute("data-left", "9")


def provider_sign_in(page: Page, sso: Sso, login: str) -> None:
    """At the provider's own pages: sign in (any password), then consent."""
    page.wait_for_url(f"{sso.op.url}/**")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "any")
    page.get_by_role("button", name="Sign-in").click()
    page.wait_for_load_state()
    if page.url.startswith(sso.op.url):  # consent, unless the provider remembers it
        page.get_by_role("button", name="Continue").click()


def test_single_sign_on_in_the_browser_and_two_step_after_it(
        sso: Sso, page_on: PageFor) -> None:
    sub, email = f"sub-{uuid.uuid4().hex[:8]}", f"collega-{uuid.uuid4().hex[:8]}@gemeente.example"
    sso.op.account(sub, email, name="Nieuwe Collega")

    page = page_on(sso.server.url)
    page.goto("/login")
    page.locator("#sso-sign-in").click()
    provider_sign_in(page, sso, sub)
    user = signed_in_as(page)
    assert user["email"] == email and user["name"] == "Nieuwe Collega"
    assert user["email_verified"] is True and user["is_site_admin"] is False

    # With two-step sign-in on, single sign-on asks for the code too.
    totp, _codes = enrol_two_step(page)
    later = page_on(sso.server.url)
    later.goto("/login")
    later.locator("#sso-sign-in").click()
    provider_sign_in(later, sso, sub)  # a browser of its own: the provider asks again
    expect(later.get_by_role("heading", name="Inloggen in twee stappen")).to_be_visible()
    later.fill("#otp", next_code(totp))
    later.get_by_role("main").get_by_role("button", name="Aanmelden").click()
    assert signed_in_as(later)["id"] == user["id"]
