"""Marking user-visible text for translation, and what pages show for an error.

Business code raises errors with English messages (the JSON API speaks English); pages show
them in the reader's language. ``N_`` marks such a message where it is written, so Babel's
extraction (``babel.cfg``) puts it in the catalogue; it is translated when shown.

A message that carries values (sizes in bytes, a parser's complaint) is not in any catalogue,
so looking it up by its English text finds nothing: for those errors pages show a fixed text
chosen by the error's stable ``code`` instead (:func:`error_msgid`). ``N_`` returns a
:class:`Msgid` (a plain ``str`` to everything else) so the two kinds can be told apart.
"""

from __future__ import annotations

from typing import Protocol


class Msgid(str):
    """A message marked with ``N_``: fixed text, a key of the catalogue."""

    __slots__ = ()


def N_(message: str) -> str:  # noqa: N802 - the name gettext tools know
    """Mark ``message`` for extraction; its text is returned unchanged."""
    return Msgid(message)


class _Error(Protocol):
    code: str
    message: str


# The page text of each error code that has messages built with values; a test keeps every
# such message raised in app/ covered (or its code named in VALUES_SHOWN_ELSEWHERE).
BY_CODE = {
    "quota_exceeded": N_("The group's storage quota would be exceeded. Remove old versions or "
                         "files from the trash, or ask an administrator for more space."),
    "payload_too_large": N_("The request is too large."),
    "comment_too_long": N_("The comment is too long."),
    "bad_multipart": N_("The upload could not be read; try again."),
    "bad_query": N_("The search could not be understood."),
    "malformed_json": N_("The body is not valid JSON."),
    "too_many_files": N_("Too many files in one upload."),
    "archive_too_large": N_("The archive is larger than this installation accepts."),
    "unsafe_path": N_("The archive holds a file name that points outside it; it was refused."),
    "zip_bomb": N_("The archive unpacks to far more than it holds (a zip bomb?); it was "
                   "refused."),
    "invalid_manifest": N_("The archive's manifest.json is damaged or incomplete."),
    "unsupported_version": N_("This export format version is not supported by this Plein."),
    "missing_file": N_("A file listed in the archive's manifest is missing from it."),
    "hash_mismatch": N_("A file in the archive does not match its checksum: the archive is "
                        "damaged or was changed."),
    "invalid_note": N_("A note in the archive cannot be read."),
    "unknown_owner": N_("No account has that e-mail address."),
}

# Codes shared by value-carrying and fixed messages, whose values pages never show as such:
# rate_limited (the discussion pages say "you are posting quickly" on any 429) and
# invalid_field (the API's schema validation; pages validate their forms themselves).
VALUES_SHOWN_ELSEWHERE = frozenset({"rate_limited", "invalid_field"})


def error_msgid(error: _Error) -> str:
    """The catalogue key a page translates for ``error``: its message when that was marked
    with ``N_`` where it was raised, else (a message built with values) the text kept for its
    code; an unknown code keeps the message, shown as it is."""
    if isinstance(error.message, Msgid):
        return error.message
    return BY_CODE.get(error.code, error.message)
