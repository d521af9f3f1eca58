"""Which links may be kept: the one URL-scheme check of Plein (notes here, comments in the
app's Markdown sanitizer use it too)."""

from __future__ import annotations

import html
import re
import urllib.parse

__all__ = ["SAFE_URL_SCHEMES", "safe_href", "url_scheme"]

SAFE_URL_SCHEMES = frozenset({"http", "https", "mailto"})
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
# Controls and whitespace browsers strip from a URL before looking at its scheme
# ("java\tscript:" is "javascript:" to them).
_URL_NOISE = re.compile(r"[\x00-\x20\x7f]+")


def url_scheme(value: str) -> str | None:
    """The scheme a browser would see (lower case), after undoing what could disguise one:
    entities, percent-encoding, whitespace and control characters. None: no scheme (a
    relative URL)."""
    decoded = html.unescape(value)
    for _ in range(3):
        decoded = urllib.parse.unquote(decoded)
    match = _SCHEME.match(_URL_NOISE.sub("", decoded))
    return match.group(1).lower() if match else None


def safe_href(value: object) -> str | None:
    """``value`` (without the characters browsers ignore) if it is a well-formed absolute
    http(s)/mailto URL, else None: relative URLs and disguised schemes are no links."""
    if not isinstance(value, str):
        return None
    href = _URL_NOISE.sub("", value)
    scheme = url_scheme(href)
    # Spelled out, not only after decoding: "https%3A//x" is a relative URL to a browser.
    if scheme not in SAFE_URL_SCHEMES or not href.lower().startswith(f"{scheme}:"):
        return None
    try:
        urllib.parse.urlsplit(href)
    except ValueError:
        return None  # e.g. "http://[::1": no browser would follow it
    return href
