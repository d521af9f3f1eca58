"""Comment Markdown → safe HTML, and the mentions in it.

Two layers, so one mistake is not enough: markdown-it renders CommonMark with raw HTML *off*
(a ``<script>`` in a comment is text), then nh3 keeps only a small tag set, only ``http``,
``https`` and ``mailto`` links, and no attributes but the few listed. Images are rendered as
links: an ``<img>`` would load a third-party URL in every reader's browser (a tracking pixel).

Mentions (documented for the web UI and API clients):

- ``@[Display name](user:ID)`` — what the @-autocomplete inserts. The name between the brackets
  is only a fallback: the current name of the member ``ID`` is shown.
- ``@person@example.nl`` — a member's e-mail address after an ``@``.

Inside code spans and code blocks nothing is a mention.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

from sync import SAFE_URL_SCHEMES, url_scheme

_MENTION_ID = re.compile(r"@\[([^\]\n]{1,120})\]\(user:([A-Za-z0-9_-]{1,64})\)")
_MENTION_EMAIL = re.compile(
    r"@([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+)"
)
_WORDISH = re.compile(r"[\w.+-]")

ALLOWED_TAGS = frozenset({"p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol",
                          "li", "a", "h3", "h4", "h5", "h6", "del", "hr", "span"})
# The one URL-scheme check of Plein (sync.urls), shared with the note renderer.
ALLOWED_SCHEMES = SAFE_URL_SCHEMES


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    # nh3 already drops hrefs with other schemes; this also drops relative-looking URLs that
    # spell a scheme in disguise ("jav%09ascript:"), harmless in browsers but not worth keeping.
    if attribute == "href":
        scheme = url_scheme(value)
        if scheme is not None and scheme not in ALLOWED_SCHEMES:
            return None
    return value


_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags={"script", "style"},
    attributes={"a": {"href", "title"}, "ol": {"start"}, "span": {"data-user-id"}},
    allowed_classes={"span": {"mention"}},
    attribute_filter=_attribute_filter,
    link_rel="nofollow noopener noreferrer",
    url_schemes=set(ALLOWED_SCHEMES),
    strip_comments=True,
)


# Notes are rendered to HTML by our own renderer (sync/render.py), which escapes every text
# and attribute and knows a fixed tag set. Its output still goes through nh3 before a page or
# the API shows it, so a renderer mistake is not enough to put script into a page: the same
# link rules as comments, with the wider tag set a note has (all headings, tables, <s>).
NOTE_TAGS = frozenset(ALLOWED_TAGS | {"h1", "h2", "s", "table", "tbody", "tr", "th", "td"})
NOTE_LINK_REL = "noopener noreferrer nofollow"  # what the renderer writes: output is stable
_CODE_CLASS = re.compile(r"language-[A-Za-z0-9_+#.-]{1,40}")


def _note_attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "class":
        return value if tag == "code" and _CODE_CLASS.fullmatch(value) else None
    if attribute in ("colspan", "rowspan", "start"):
        return value if value.isdigit() and len(value) <= 10 else None
    return _attribute_filter(tag, attribute, value)


_NOTE_CLEANER = nh3.Cleaner(
    tags=set(NOTE_TAGS),
    clean_content_tags={"script", "style"},
    attributes={"a": {"href"}, "ol": {"start"}, "code": {"class"}, "th": {"colspan", "rowspan"},
                "td": {"colspan", "rowspan"}},
    attribute_filter=_note_attribute_filter,
    link_rel=NOTE_LINK_REL,
    url_schemes=set(ALLOWED_SCHEMES),
    strip_comments=True,
)


def sanitize_note(fragment: str) -> str:
    """Clean a note's rendered HTML (defence in depth behind sync/render.py's escaping)."""
    return _NOTE_CLEANER.clean(fragment)


@dataclass(frozen=True)
class Mention:
    """A mention as written: by ``user_id`` or by ``email`` (lower-cased)."""

    text: str
    user_id: str | None = None
    email: str | None = None


def _mention_rule(state: StateInline, silent: bool) -> bool:
    pos = state.pos
    if state.src[pos] != "@":
        return False
    if pos > 0 and _WORDISH.match(state.src[pos - 1]):
        return False  # part of an address or a word, not a mention
    match = _MENTION_ID.match(state.src, pos) or _MENTION_EMAIL.match(state.src, pos)
    if match is None:
        return False
    if not silent:
        token = state.push("mention", "", 0)
        token.content = match.group(0)
        if match.re is _MENTION_ID:
            token.meta = {"name": match.group(1), "user_id": match.group(2)}
        else:
            token.meta = {"email": match.group(1).lower()}
    state.pos = match.end()
    return True


def _build() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True,
                                   "typographer": False})
    md.enable("strikethrough")
    md.inline.ruler.before("link", "mention", _mention_rule)
    return md


_MD = _build()


# Render rules are bound to the renderer, hence the unused first argument.

def _render_mention(_: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict,
                    env: EnvType) -> str:
    meta = tokens[idx].meta
    people: Mapping[str, tuple[str, str]] = env.get("people", {})
    key = meta.get("user_id") or ("email:" + meta.get("email", ""))
    found = people.get(key)
    if found is None:
        if env.get("plain"):
            return html.escape("@" + (meta.get("name") or meta.get("email") or ""))
        return html.escape(tokens[idx].content)
    user_id, name = found
    return (f'<span class="mention" data-user-id="{html.escape(user_id)}">@'
            f"{html.escape(name)}</span>")


def _shifted(tag: str) -> int:
    # A comment sits inside a page with its own headings: # and ## become h3 and h4.
    return min(6, int(tag[1:]) + 2)


def _render_heading_open(_: RendererHTML, tokens: Sequence[Token], idx: int,
                         options: OptionsDict, env: EnvType) -> str:
    return f"<h{_shifted(tokens[idx].tag)}>"


def _render_heading_close(_: RendererHTML, tokens: Sequence[Token], idx: int,
                          options: OptionsDict, env: EnvType) -> str:
    return f"</h{_shifted(tokens[idx].tag)}>\n"


def _render_del_open(_: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict,
                     env: EnvType) -> str:
    return "<del>"


def _render_del_close(_: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict,
                      env: EnvType) -> str:
    return "</del>"


def _render_image(_: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict,
                  env: EnvType) -> str:
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = "".join(child.content for child in token.children or []) or src
    return f'<a href="{html.escape(src)}">{html.escape(alt)}</a>'


_RULES: dict[str, Any] = {
    "mention": _render_mention,
    "heading_open": _render_heading_open,
    "heading_close": _render_heading_close,
    "image": _render_image,
    "s_open": _render_del_open,
    "s_close": _render_del_close,
}
for _name, _rule in _RULES.items():
    _MD.add_render_rule(_name, _rule)


def sanitize(fragment: str) -> str:
    """Clean an HTML fragment with the comment policy (also for other rich text)."""
    return _CLEANER.clean(fragment)


def render(body: str, people: Mapping[str, tuple[str, str]] | None = None) -> str:
    """Safe HTML for a comment body. ``people`` maps a mention key (a user id, or
    ``"email:" + address``) to ``(user_id, current name)`` for mentions that name a member;
    other mentions stay plain text."""
    return sanitize(_MD.render(body, {"people": dict(people or {})}))


def mentions(body: str) -> list[Mention]:
    """The mentions of a body, in order, without repeats (code spans and blocks excluded)."""
    found: list[Mention] = []
    seen: set[str] = set()
    for token in _MD.parse(body):
        for child in token.children or []:
            if child.type != "mention":
                continue
            user_id, email = child.meta.get("user_id"), child.meta.get("email")
            key = user_id or f"email:{email}"
            if key not in seen:
                seen.add(key)
                found.append(Mention(child.content, user_id=user_id, email=email))
    return found


def plain_text(body: str, limit: int = 200) -> str:
    """A short plain-text excerpt (for notifications and e-mail); escape it when shown."""
    text = html.unescape(nh3.clean(_MD.render(body, {"people": {}, "plain": True}), tags=set()))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
