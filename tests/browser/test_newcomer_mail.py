"""The newcomer's story with a mailbox, in headless Chromium: invited by e-mail, registers,
cannot sign in before confirming the address, follows the mailed link, signs in and finds the
group. The server mails to a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.app.helpers import API, make_group
from tests.live import LiveServer, running_server, unique
from tests.mail_sink import MailSink, token_in

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}


@pytest.fixture
def mail_server(tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[LiveServer, MailSink]]:
    sink = MailSink()
    sink.controller.start()
    try:
        with running_server(tmp_path_factory.mktemp("newcomer") / "data",
                            {"PLEIN_SMTP_URL": sink.url}) as live:
            yield live, sink
    finally:
        sink.controller.stop()


def test_newcomer_invited_by_mail_confirms_and_finds_the_group(
        chromium: Browser, mail_server: tuple[LiveServer, MailSink]) -> None:
    live, sink = mail_server
    alice = live.client()
    alice.sign_up("Alice", email=f"alice-{uuid.uuid4().hex[:8]}@example.nl")  # first: verified
    group = make_group(alice, unique("Dossier A12"))
    newcomer = f"nieuw-{uuid.uuid4().hex[:8]}@example.nl"
    response = alice.post(f"{API}/groups/{group['id']}/members", json={"email": newcomer})
    assert response.status_code == 201, response.text
    alice.close()
    invite_token = token_in(sink.wait_for(newcomer, "invites you to"), "/invite")

    context = chromium.new_context(base_url=live.url, viewport=VIEWPORT, locale="nl-NL")
    context.set_default_timeout(15_000)
    try:
        page: Page = context.new_page()
        page.goto(f"/invite?token={invite_token}")
        expect(page.get_by_text(group["name"])).to_be_visible()
        page.locator("#invite-register").click()
        page.fill("#name", "Nieuw Lid")
        page.fill("#email", newcomer)
        page.fill("#password", PASSWORD)
        page.get_by_role("main").get_by_role("button", name="Account aanmaken").click()
        expect(page.locator("#check-email")).to_contain_text(newcomer)

        # Before confirming: the sign-in page says why, and offers the link again.
        page.goto("/login")
        page.fill("#email", newcomer)
        page.fill("#password", PASSWORD)
        page.get_by_role("main").get_by_role("button", name="Aanmelden").click()
        expect(page.locator("#resend-verification")).to_be_visible()

        verify_token = token_in(sink.wait_for(newcomer, "confirm your e-mail"), "/verify-email")
        page.goto(f"/verify-email?token={verify_token}")
        page.locator("#confirm-email").click()
        expect(page.locator("#form-notice")).to_be_visible()
        page.get_by_role("main").get_by_role("link", name="Aanmelden").click()
        page.fill("#email", newcomer)
        page.fill("#password", PASSWORD)
        page.get_by_role("main").get_by_role("button", name="Aanmelden").click()
        expect(page.get_by_role("heading", name="Mijn groepen")).to_be_visible()
        # Confirming the invited address claimed the invitation.
        expect(page.get_by_role("link", name=group["name"])).to_be_visible()
    finally:
        context.close()
