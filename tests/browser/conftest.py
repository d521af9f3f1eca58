"""Headless Chromium (Debian's build, driven by Playwright) for the browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


# Module scope: the browser is closed as soon as the browser tests are done.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    # No skip: the test command installs Chromium, so a missing browser is a failure to see.
    assert CHROMIUM.exists(), f"no Chromium at {CHROMIUM}: run scripts/setup --test"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
