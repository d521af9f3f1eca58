"""Marking user-visible text for translation.

Business code raises errors with English messages (the JSON API speaks English); pages show
them in the reader's language. ``N_`` marks such a message where it is written, so Babel's
extraction (``babel.cfg``) puts it in the catalogue; it is translated when shown.
"""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - the name gettext tools know
    """Mark ``message`` for extraction; it is returned unchanged."""
    return message
