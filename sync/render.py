"""Server-side rendering of a note (the XmlFragment ``default``) to HTML, Markdown, text.

The tree is what y-prosemirror writes for TipTap's schema: ``XmlElement`` nodes
named after ProseMirror node types (paragraph, heading{level}, bulletList,
orderedList{start}, listItem, blockquote, codeBlock{language}, horizontalRule,
hardBreak, table/tableRow/tableHeader/tableCell), with text in ``XmlText``
whose formatting attributes are the marks: ``{"bold": {}}``,
``{"link": {"href": ...}}`` -- mark name as key, the mark's attrs as value.

All of it is untrusted (any editor can write any tag or attribute): HTML output
escapes every text and attribute, knows a fixed set of tags (an unknown element
renders only its children), and keeps links only for http, https and mailto.

Nesting is bounded: any client can nest 3,000 blockquotes, and a recursive walk of that
would fail (RecursionError) for the page, the API, search and restore alike. Below
``max_depth`` levels (a setting of the app, ``MAX_DEPTH`` by default) a subtree is
flattened into its text, gathered without recursion, so nothing is lost but structure.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from sync.urls import safe_href

__all__ = [
    "FRAGMENT",
    "MAX_DEPTH",
    "MIN_DEPTH",
    "MAX_DEPTH_LIMIT",
    "fragment_of",
    "render_html",
    "render_markdown",
    "render_text",
    "safe_href",
]

FRAGMENT = "default"
#: Levels of nesting rendered as structure; deeper content is flattened to text. Each level
#: costs a few Python frames, so the setting is bounded well below the recursion limit.
MAX_DEPTH = 64
MIN_DEPTH = 4
MAX_DEPTH_LIMIT = 200

Node = XmlElement | XmlText | XmlFragment
Run = tuple[str, dict[str, Any]]


def fragment_of(state: bytes | Doc[Any]) -> XmlFragment:
    """The note's fragment, from a full encoded state or a Doc."""
    if isinstance(state, Doc):
        doc = state
    else:
        doc = Doc()
        doc.apply_update(state)
    fragment: XmlFragment = doc.get(FRAGMENT, type=XmlFragment)
    return fragment


def _attr(node: XmlElement, name: str) -> Any:
    return node.attributes.get(name)


def _int_attr(node: XmlElement, name: str, default: int, lo: int, hi: int) -> int:
    raw = _attr(node, name)
    try:
        value = int(float(raw)) if raw is not None else default
    except (TypeError, ValueError, OverflowError):
        value = default
    return min(max(value, lo), hi)


def _runs(node: XmlText) -> list[Run]:
    out: list[Run] = []
    for content, attrs in node.diff():
        if isinstance(content, str) and content:
            out.append((content, dict(attrs or {})))
    return out


def _children(node: Node) -> list[Node]:
    if isinstance(node, XmlText):
        return []
    return list(node.children)


def _inline(node: Node) -> Iterator[Run | None]:
    """Text runs of a block, in document order; None marks a hard break. Iterative: inline
    content nests as deep as a client likes."""
    stack: list[Iterator[Node]] = [iter(_children(node))]
    while stack:
        child = next(stack[-1], None)
        if child is None:
            stack.pop()
        elif isinstance(child, XmlText):
            yield from _runs(child)
        elif isinstance(child, XmlElement) and child.tag == "hardBreak":
            yield None
        else:
            stack.append(iter(_children(child)))


def _plain(node: Node) -> str:
    return "".join("\n" if r is None else r[0] for r in _inline(node))


def _flat_lines(node: Node) -> list[str]:
    """The text of a subtree too deep to render as structure: one line per text block, found
    without recursion."""
    lines: list[str] = []
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, XmlElement) and current.tag in ("paragraph", "heading",
                                                                "codeBlock"):
            lines.append(_plain(current))
        elif isinstance(current, XmlText):
            lines.append("".join(text for text, _ in _runs(current)))
        else:
            stack.extend(reversed(_children(current)))
    return [line for line in lines if line]


# -- HTML ------------------------------------------------------------------------------

_BLOCK_TAGS = {
    "paragraph": "p",
    "blockquote": "blockquote",
    "bulletList": "ul",
    "listItem": "li",
    "tableRow": "tr",
}
_MARK_TAGS = (("bold", "strong"), ("italic", "em"), ("strike", "s"), ("code", "code"))


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _html_run(text: str, marks: dict[str, Any]) -> str:
    out = _esc(text)
    for mark, tag in reversed(_MARK_TAGS):
        if mark in marks and marks[mark] is not None:
            out = f"<{tag}>{out}</{tag}>"
    link = marks.get("link")
    href = safe_href(link.get("href")) if isinstance(link, dict) else None
    if href is not None:
        out = f'<a href="{_esc(href)}" rel="noopener noreferrer nofollow">{out}</a>'
    return out


def _html_inline(node: Node) -> str:
    return "".join("<br>" if r is None else _html_run(*r) for r in _inline(node))


def _html_cell(node: XmlElement, tag: str, depth: int) -> str:
    attrs = ""
    for name in ("colspan", "rowspan"):
        n = _int_attr(node, name, 1, 1, 1000)
        if n > 1:
            attrs += f' {name}="{n}"'
    return f"<{tag}{attrs}>{_html_blocks(node, depth)}</{tag}>"


def _html_node(node: Node, depth: int) -> str:
    if depth <= 0:
        return "".join(f"<p>{_esc(line)}</p>" for line in _flat_lines(node))
    depth -= 1
    if isinstance(node, XmlText):
        return "".join(_html_run(*r) for r in _runs(node))
    if isinstance(node, XmlFragment):
        return _html_blocks(node, depth)
    tag = node.tag
    if tag == "paragraph":
        return f"<p>{_html_inline(node)}</p>"
    if tag == "heading":
        level = _int_attr(node, "level", 1, 1, 6)
        return f"<h{level}>{_html_inline(node)}</h{level}>"
    if tag == "orderedList":
        start = _int_attr(node, "start", 1, 0, 1_000_000_000)
        attr = "" if start == 1 else f' start="{start}"'
        return f"<ol{attr}>{_html_blocks(node, depth)}</ol>"
    if tag == "codeBlock":
        lang = _attr(node, "language")
        cls = ""
        if isinstance(lang, str) and re.fullmatch(r"[A-Za-z0-9_+#.-]{1,40}", lang):
            cls = f' class="language-{lang}"'
        return f"<pre><code{cls}>{_esc(_plain(node))}</code></pre>"
    if tag == "horizontalRule":
        return "<hr>"
    if tag == "hardBreak":
        return "<br>"
    if tag == "table":
        return f"<table><tbody>{_html_blocks(node, depth)}</tbody></table>"
    if tag == "tableHeader":
        return _html_cell(node, "th", depth)
    if tag == "tableCell":
        return _html_cell(node, "td", depth)
    if tag in _BLOCK_TAGS:
        t = _BLOCK_TAGS[tag]
        return f"<{t}>{_html_blocks(node, depth)}</{t}>"
    return _html_blocks(node, depth)  # unknown element: its content only


def _html_blocks(node: Node, depth: int) -> str:
    return "".join(_html_node(c, depth) for c in _children(node))


def render_html(state: bytes | Doc[Any], *, max_depth: int = MAX_DEPTH) -> str:
    """Escaped HTML of the note (no wrapper element)."""
    return _html_blocks(fragment_of(state), _depth(max_depth))


def _depth(max_depth: int) -> int:
    return min(max(max_depth, MIN_DEPTH), MAX_DEPTH_LIMIT)


# -- Markdown ----------------------------------------------------------------------------

_MD_ESCAPE = re.compile(r"([\\`*_\[\]<>~|])")
_MD_LINE_START = re.compile(r"^(\s*)([#+\-=]|\d+[.)])", re.MULTILINE)


def _md_escape(text: str) -> str:
    return _MD_LINE_START.sub(
        lambda m: m.group(1) + "\\" + m.group(2), _MD_ESCAPE.sub(r"\\\1", text)
    )


def _md_code_span(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_run(text: str, marks: dict[str, Any]) -> str:
    # Markdown emphasis cannot start or end with a space: keep the spaces outside.
    core = text.strip(" ")
    if not core:
        return text
    lead, trail = text[: len(text) - len(text.lstrip(" "))], text[len(text.rstrip(" ")) :]
    out = _md_code_span(core) if "code" in marks else _md_escape(core)
    if "strike" in marks:
        out = f"~~{out}~~"
    if "italic" in marks:
        out = f"*{out}*"
    if "bold" in marks:
        out = f"**{out}**"
    link = marks.get("link")
    href = safe_href(link.get("href")) if isinstance(link, dict) else None
    if href is not None:
        out = f"[{out}](<{href.replace('>', '%3E').replace('<', '%3C')}>)"
    return lead + out + trail


def _md_inline(node: Node) -> str:
    return "".join("\\\n" if r is None else _md_run(*r) for r in _inline(node))


def _indent(text: str, first: str, rest: str) -> str:
    lines = text.split("\n")
    return "\n".join([first + lines[0]] + [(rest + ln) if ln else ln for ln in lines[1:]])


def _md_table(node: XmlElement) -> str:
    rows = []
    for row in _children(node):
        cells = [
            _md_inline(cell).replace("\\\n", " ").replace("\n", " ") for cell in _children(row)
        ]
        rows.append(cells)
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def _md_node(node: Node, depth: int) -> str:
    if depth <= 0:
        return "\n\n".join(_md_escape(line) for line in _flat_lines(node))
    depth -= 1
    if isinstance(node, XmlText):
        return "".join(_md_run(*r) for r in _runs(node))
    if isinstance(node, XmlFragment):
        return _md_blocks(node, depth)
    tag = node.tag
    if tag == "paragraph":
        return _md_inline(node)
    if tag == "heading":
        return "#" * _int_attr(node, "level", 1, 1, 6) + " " + _md_inline(node).replace("\\\n", " ")
    if tag in ("bulletList", "orderedList"):
        start = _int_attr(node, "start", 1, 0, 1_000_000_000)
        items = []
        for i, item in enumerate(_children(node)):
            marker = "- " if tag == "bulletList" else f"{start + i}. "
            items.append(_indent(_md_blocks(item, depth), marker, " " * len(marker)))
        return "\n".join(items)
    if tag == "blockquote":
        return _indent(_md_blocks(node, depth), "> ", "> ").replace("\n\n", "\n>\n")
    if tag == "codeBlock":
        text = _plain(node)
        longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
        fence = "`" * (longest + 1)
        lang = _attr(node, "language")
        info = (
            lang if isinstance(lang, str) and re.fullmatch(r"[A-Za-z0-9_+#.-]{1,40}", lang) else ""
        )
        return f"{fence}{info}\n{text}\n{fence}"
    if tag == "horizontalRule":
        return "---"
    if tag == "hardBreak":
        return "\\\n"
    if tag == "table":
        return _md_table(node)
    return _md_blocks(node, depth)


def _md_blocks(node: Node, depth: int) -> str:
    return "\n\n".join(s for s in (_md_node(c, depth) for c in _children(node)) if s)


def render_markdown(state: bytes | Doc[Any], *, max_depth: int = MAX_DEPTH) -> str:
    """CommonMark (+ GFM tables and strikethrough) for the note; ends with a newline."""
    out = _md_blocks(fragment_of(state), _depth(max_depth))
    return out + "\n" if out else ""


# -- plain text ----------------------------------------------------------------------------

_TEXT_BLOCKS = frozenset({"paragraph", "heading", "codeBlock"})


def _text_node(node: Node, depth: int) -> list[str]:
    if depth <= 0:
        return _flat_lines(node)
    depth -= 1
    if isinstance(node, XmlText):
        return ["".join(t for t, _ in _runs(node))]
    if isinstance(node, XmlElement) and node.tag in _TEXT_BLOCKS:
        return [_plain(node)]
    if isinstance(node, XmlElement) and node.tag == "tableRow":
        return ["\t".join(" ".join(_text_blocks(c, depth)) for c in _children(node))]
    return _text_blocks(node, depth)


def _text_blocks(node: Node, depth: int) -> list[str]:
    return [s for c in _children(node) for s in _text_node(c, depth)]


def render_text(state: bytes | Doc[Any], *, max_depth: int = MAX_DEPTH) -> str:
    """Plain text (for the search index and previews): one block per line."""
    return "\n".join(_text_blocks(fragment_of(state), _depth(max_depth)))
