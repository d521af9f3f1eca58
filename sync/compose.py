"""Building note content as CRDT operations (the reverse of ``sync.render``).

* ``markdown_to_update`` / ``text_to_update``: a new note's initial content, built
  on a fresh Doc's XmlFragment ``default`` exactly as y-prosemirror would hold
  TipTap's document.  Hand the result to ``RoomManager.initialize`` -- once, at
  creation (SYNC.md: never rebuild a document that has state from text).
* ``restore_update``: "restore this version" as *new edits on top* of the current
  state -- the current content is deleted and the version's content inserted, so
  history is never rewritten and connected clients simply receive an update.

Markdown is parsed by markdown-it-py (CommonMark + tables + strikethrough) with
raw HTML disabled: ``<script>`` in the source becomes text, never a node.
"""

from __future__ import annotations

from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.tree import SyntaxTreeNode
from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from sync.render import (
    FRAGMENT,
    MAX_DEPTH,
    MAX_DEPTH_LIMIT,
    MIN_DEPTH,
    Node,
    _flat_lines,
)
from sync.urls import safe_href

__all__ = ["markdown_to_update", "restore_update", "text_to_update"]

Parent = XmlFragment | XmlElement
Marks = dict[str, Any]

_MARK_OF = {"strong": "bold", "em": "italic", "s": "strike"}


def _parser(max_depth: int) -> MarkdownIt:
    # markdown-it stops nesting at maxNesting (and drops what is deeper). Bounded here by the
    # note depth, and never above the preset's 20, so its parse and the tree walk below stay
    # shallow whatever the input; markdown_to_update keeps the text of deeper input.
    return MarkdownIt("commonmark", {"html": False, "maxNesting": min(max_depth, 20)}).enable(
        ["table", "strikethrough"])


def _new_doc() -> tuple[Doc[Any], XmlFragment]:
    doc: Doc[Any] = Doc()
    return doc, doc.get(FRAGMENT, type=XmlFragment)


class _InlineWriter:
    """Appends runs to a block, opening an XmlText when needed (hard breaks split them)."""

    def __init__(self, parent: XmlElement) -> None:
        self.parent = parent
        self.text: XmlText | None = None

    def write(self, value: str, marks: Marks) -> None:
        if not value:
            return
        if self.text is None:
            self.text = self.parent.children.append(XmlText())
        self.text.insert(len(self.text), value, dict(marks) if marks else None)

    def hard_break(self) -> None:
        self.parent.children.append(XmlElement("hardBreak"))
        self.text = None


def _inline(node: SyntaxTreeNode, out: _InlineWriter, marks: Marks) -> None:
    for child in node.children:
        kind = child.type
        if kind == "text":
            out.write(child.content, marks)
        elif kind == "softbreak":
            out.write(" ", marks)
        elif kind == "hardbreak":
            out.hard_break()
        elif kind == "code_inline":
            out.write(child.content, {**marks, "code": {}})
        elif kind in _MARK_OF:
            _inline(child, out, {**marks, _MARK_OF[kind]: {}})
        elif kind == "link":
            href = safe_href(child.attrs.get("href"))
            _inline(child, out, {**marks, "link": {"href": href}} if href else marks)
        elif kind == "image":
            # The editor has no image node: keep the description as text.
            _inline(child, out, marks)
        else:
            out.write(child.content, marks)


def _block(node: SyntaxTreeNode, parent: Parent) -> None:
    kind = node.type
    if kind == "paragraph":
        el = parent.children.append(XmlElement("paragraph"))
        for child in node.children:
            _inline(child, _InlineWriter(el), {})
    elif kind == "heading":
        el = parent.children.append(XmlElement("heading"))
        el.attributes["level"] = int(node.tag[1:])  # a number, as ProseMirror's attrs
        for child in node.children:
            _inline(child, _InlineWriter(el), {})
    elif kind in ("bullet_list", "ordered_list", "blockquote", "list_item"):
        name = {
            "bullet_list": "bulletList",
            "ordered_list": "orderedList",
            "blockquote": "blockquote",
            "list_item": "listItem",
        }[kind]
        attrs: dict[str, Any] = {}
        if kind == "ordered_list":
            start = node.attrs.get("start", 1)
            attrs["start"] = int(start) if isinstance(start, int | float | str) else 1
        el = parent.children.append(XmlElement(name))
        for key, value in attrs.items():
            el.attributes[key] = value
        for child in node.children:
            _block(child, el)
    elif kind in ("code_block", "fence"):
        info = node.info.strip().split(" ")[0] if kind == "fence" else ""
        el = parent.children.append(XmlElement("codeBlock", {"language": info} if info else {}))
        text = node.content[:-1] if node.content.endswith("\n") else node.content
        if text:
            el.children.append(XmlText()).insert(0, text)
    elif kind == "hr":
        parent.children.append(XmlElement("horizontalRule"))
    elif kind == "table":
        table = parent.children.append(XmlElement("table"))
        for section in node.children:  # thead, tbody
            for row in section.children:
                tr = table.children.append(XmlElement("tableRow"))
                for cell in row.children:
                    name = "tableHeader" if cell.type == "th" else "tableCell"
                    td = tr.children.append(XmlElement(name))
                    para = td.children.append(XmlElement("paragraph"))
                    for child in cell.children:
                        _inline(child, _InlineWriter(para), {})
    else:
        # html_block is disabled; anything else unknown keeps its text as a paragraph.
        if node.content:
            el = parent.children.append(XmlElement("paragraph"))
            _InlineWriter(el).write(node.content, {})


def _inline_depth(tokens: list[Token]) -> int:
    depth = deepest = 0
    for token in tokens:
        depth += token.nesting
        deepest = max(deepest, depth)
    return deepest


def markdown_to_update(markdown: str, *, max_depth: int = MAX_DEPTH) -> bytes:
    """A full update holding ``markdown`` as a TipTap document."""
    limit = min(max_depth, 20)
    tokens = _parser(max_depth).parse(markdown)
    if max((token.level for token in tokens), default=0) >= limit - 1:
        # At maxNesting markdown-it drops the rest of the input; so near it we keep all the
        # text instead of its structure: the Markdown source, as plain paragraphs.
        return text_to_update(markdown)
    doc, fragment = _new_doc()
    for token in tokens:
        # Emphasis pairs are matched after parsing, past maxNesting: "*" * 3000 nests 1,500
        # levels, and the tree walk would recurse that deep. Such a run keeps its text only.
        if token.type == "inline" and _inline_depth(token.children or []) > limit:
            token.children = [Token("text", "", 0, content=token.content)]
    tree = SyntaxTreeNode(tokens)
    with doc.transaction():
        for node in tree.children:
            _block(node, fragment)
    return doc.get_update()


def text_to_update(text: str) -> bytes:
    """Plain text as paragraphs (blank lines separate them; single newlines are hard breaks)."""
    doc, fragment = _new_doc()
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    with doc.transaction():
        for block in normalized.split("\n\n"):
            if not block.strip("\n"):
                continue
            para = fragment.children.append(XmlElement("paragraph"))
            out = _InlineWriter(para)
            for i, line in enumerate(block.strip("\n").split("\n")):
                if i:
                    out.hard_break()
                out.write(line, {})
    return doc.get_update()


def _copy(source: Node, target: Parent, depth: int) -> None:
    if depth <= 0:
        # Too deep to copy as structure (a recursive copy would fail): keep the text.
        for line in _flat_lines(source):
            target.children.append(XmlElement("paragraph")).children.append(XmlText(line))
        return
    for child in list(source.children) if not isinstance(source, XmlText) else []:
        if isinstance(child, XmlText):
            text = target.children.append(XmlText())
            for content, attrs in child.diff():
                if isinstance(content, str):
                    text.insert(len(text), content, dict(attrs) if attrs else None)
        elif isinstance(child, XmlElement):
            el = target.children.append(XmlElement(child.tag or "paragraph"))
            # XmlAttributesView.__iter__ is typed as returning an Iterable, not an Iterator.
            for key, value in child.attributes.__iter__():
                el.attributes[key] = value
            _copy(child, el, depth - 1)


def restore_update(current_state: bytes, version_state: bytes, *,
                   max_depth: int = MAX_DEPTH) -> bytes:
    """An update that, applied on top of ``current_state``, makes the note's content
    equal to ``version_state``'s -- as new operations, history kept."""
    doc, fragment = _new_doc()
    doc.apply_update(current_state)
    before = doc.get_state()
    version: Doc[Any] = Doc()
    version.apply_update(version_state)
    with doc.transaction():
        del fragment.children[0 : len(fragment.children)]
        _copy(version.get(FRAGMENT, type=XmlFragment), fragment,
              min(max(max_depth, MIN_DEPTH), MAX_DEPTH_LIMIT))
    return doc.get_update(before)
