"""A readable name for the device behind a browser session, from its User-Agent header.

Only for the person's own sessions page ("Firefox on Linux"), so a rough guess is enough: the
header is whatever the client says, and nothing is decided on it."""

from __future__ import annotations

# Order matters: Edge and Opera say "Chrome" too, Chrome says "Safari", Android says "Linux".
_BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
             ("Chrome/", "Chrome"), ("Chromium/", "Chromium"), ("Safari/", "Safari"),
             ("curl/", "curl"), ("python-httpx/", "httpx"), ("python-requests/", "requests"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iPadOS"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("Macintosh", "macOS"),
            ("CrOS", "ChromeOS"), ("Linux", "Linux"))


def describe(user_agent: str) -> str:
    """``"Firefox on Linux"``, ``"Safari on iOS"``, ``"curl"``; ``""`` when nothing is known."""
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), "")
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system
