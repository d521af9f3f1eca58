"""Confirmations shown after a form post: the handler redirects with ``?saved=KEY`` (Post,
Redirect, Get) and every full page says the matching sentence at the top. Keys, never free
text, so that a link cannot make a page say anything."""

from __future__ import annotations

from starlette.datastructures import QueryParams

from app.i18n import N_
from app.pages.render import gettext

SAVED = {
    "group": N_("The group settings have been saved."),
    "name": N_("The new name has been saved."),
    "access": N_("Who has access has been saved."),
    "folder": N_("The folder has been created."),
}


def saved_notice(query: QueryParams, language: str) -> str | None:
    """The confirmation the page was redirected to show, in ``language``; none for an unknown
    key."""
    msgid = SAVED.get(query.get("saved", ""))
    return gettext(language, msgid) if msgid else None


def saved(url: str, key: str) -> str:
    """``url`` (with an optional ``#fragment``) asking its page to confirm ``key``."""
    if key not in SAVED:
        raise KeyError(key)
    path, hash_mark, fragment = url.partition("#")
    joiner = "&" if "?" in path else "?"
    return f"{path}{joiner}saved={key}{hash_mark}{fragment}"
