"""One URL-scheme check for notes (sync.render) and comments (app.services.markdown)."""

from __future__ import annotations

import pytest

from sync.urls import SAFE_URL_SCHEMES, safe_href, url_scheme


@pytest.mark.parametrize(("value", "scheme"), [
    ("https://x.org", "https"),
    ("MAILTO:a@b.nl", "mailto"),
    ("java\tscript:alert(1)", "javascript"),
    ("jav%61script:alert(1)", "javascript"),
    ("&#106;avascript:alert(1)", "javascript"),
    ("%2526%2523106;avascript:x", None),  # three layers of percent-encoding at most
    ("/relative", None),
    ("", None),
])
def test_url_scheme_sees_what_a_browser_sees(value: str, scheme: str | None) -> None:
    assert url_scheme(value) == scheme


def test_safe_href_keeps_only_spelled_out_safe_schemes() -> None:
    assert safe_href(" https://x.org") == "https://x.org"
    assert safe_href("https%3A//x.org") is None  # a relative URL to a browser
    assert safe_href("jav%61script:x") is None
    assert safe_href("http://[::1") is None
    assert safe_href(42) is None


def test_comments_and_notes_share_the_check() -> None:
    from app.services import markdown
    from sync import render

    assert markdown.ALLOWED_SCHEMES is SAFE_URL_SCHEMES
    assert markdown.url_scheme is url_scheme and render.safe_href is safe_href
