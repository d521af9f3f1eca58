"""sync.render / sync.compose: note <-> HTML, Markdown, text; CRDT operations from text."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, XmlElement, XmlFragment, XmlText

from sync import (
    MAX_DEPTH,
    markdown_to_update,
    render_html,
    render_markdown,
    render_text,
    restore_update,
    text_to_update,
)
from sync.render import safe_href

POLICY = """\
# Policy on *open* data

Intro with **bold**, *italic*, ~~gone~~, `code` and a [link](https://example.org/a?b=1&c=2).
Soft line.

## Scope

- first
- second with **strong**
  1. nested
  2. list

3. three
4. four

> quoted **text**
> more

```python
print("<hi>")
```

---

| Name | Role |
|------|------|
| ë€😀 | *lead* |
"""


def doc_of(update: bytes) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    doc.apply_update(update)
    return doc


def test_markdown_builds_tiptap_tree() -> None:
    doc = doc_of(markdown_to_update(POLICY))
    frag = doc.get("default", type=XmlFragment)
    tags = [c.tag for c in frag.children if isinstance(c, XmlElement)]
    assert tags == [
        "heading", "paragraph", "heading", "bulletList", "orderedList",
        "blockquote", "codeBlock", "horizontalRule", "table",
    ]  # fmt: skip
    heading = next(iter(frag.children))
    assert isinstance(heading, XmlElement)
    assert heading.attributes.get("level") in (1, 1.0)
    # Marks are formatting attributes, as y-prosemirror writes them.
    para = list(frag.children)[1]
    assert isinstance(para, XmlElement)
    text = next(iter(para.children))
    assert isinstance(text, XmlText)
    runs = text.diff()
    assert ("bold", {"bold": {}}) in runs
    assert ("link", {"link": {"href": "https://example.org/a?b=1&c=2"}}) in runs
    # List items hold paragraphs (ProseMirror's listItem content is block+).
    ul = list(frag.children)[3]
    assert isinstance(ul, XmlElement)
    item = next(iter(ul.children))
    assert isinstance(item, XmlElement) and item.tag == "listItem"
    assert [c.tag for c in item.children if isinstance(c, XmlElement)] == ["paragraph"]


def test_html_rendering() -> None:
    html = render_html(markdown_to_update(POLICY))
    assert html.startswith("<h1>Policy on <em>open</em> data</h1>")
    assert "<strong>bold</strong>" in html and "<s>gone</s>" in html
    assert "<code>code</code>" in html
    assert '<a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer nofollow">' in html
    assert '<ol start="3"><li><p>three</p></li>' in html
    assert '<pre><code class="language-python">print(&quot;&lt;hi&gt;&quot;)</code></pre>' in html
    assert "<hr>" in html
    assert "<th><p>Name</p></th>" in html and "<td><p>ë€😀</p></td>" in html
    assert "<blockquote><p>quoted <strong>text</strong> more</p></blockquote>" in html


def test_markdown_round_trip_is_stable() -> None:
    once = render_markdown(markdown_to_update(POLICY))
    twice = render_markdown(markdown_to_update(once))
    assert once == twice
    assert "# Policy on *open* data" in once
    assert "[link](<https://example.org/a?b=1&c=2>)" in once
    assert "| Name | Role |" in once
    assert '```python\nprint("<hi>")\n```' in once


def test_plain_text() -> None:
    text = render_text(markdown_to_update(POLICY))
    lines = text.split("\n")
    assert lines[0] == "Policy on open data"
    assert "first" in lines and "nested" in lines
    assert "Name\tRole" in lines
    assert 'print("<hi>")' in lines


def test_hostile_content_is_escaped() -> None:
    src = (
        "<script>alert(1)</script>\n\n"
        "[x](javascript:alert(1)) [y](JaVa\tScRiPt:alert(2)) [z](data:text/html,hi) "
        "[ok](mailto:a@example.org) <img src=x onerror=alert(1)>"
    )
    html = render_html(markdown_to_update(src))
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html
    assert "javascript" not in html.lower().replace("javascript:alert(1)", "")  # text only
    assert 'href="mailto:a@example.org"' in html
    assert html.count("<a ") == 1


def test_editor_written_tree_with_unknown_and_hostile_attributes() -> None:
    # What a hostile editor could write directly, bypassing Markdown.
    doc: Doc[Any] = Doc()
    frag = doc.get("default", type=XmlFragment)
    heading = frag.children.append(XmlElement("heading"))
    heading.attributes["level"] = '7"><script>'
    t = heading.children.append(XmlText())
    t.insert(0, "<b>title</b>", {"link": {"href": "javascript:evil()"}, "bold": {}})
    weird = frag.children.append(XmlElement("iframe"))
    weird.children.append(XmlText()).insert(0, "inner")
    code = frag.children.append(XmlElement("codeBlock"))
    code.attributes["language"] = 'x" onclick="y'
    code.children.append(XmlText()).insert(0, "a < b")
    html = render_html(doc)
    assert html == (
        "<h1><strong>&lt;b&gt;title&lt;/b&gt;</strong></h1>inner<pre><code>a &lt; b</code></pre>"
    )


def test_hard_breaks_and_text_import() -> None:
    update = text_to_update("line one\nline two\n\nsecond paragraph\r\n")
    assert render_html(update) == "<p>line one<br>line two</p><p>second paragraph</p>"
    assert render_text(update) == "line one\nline two\nsecond paragraph"
    assert render_markdown(update) == "line one\\\nline two\n\nsecond paragraph\n"
    md = render_markdown(text_to_update("# not a heading\n* not a list"))
    assert md == "\\# not a heading\\\n\\* not a list\n"
    assert render_html(markdown_to_update(md)).startswith("<p># not a heading<br>* not a list")


def test_restore_as_new_edits_on_top() -> None:
    v1 = markdown_to_update("# Version one\n\nfirst text")
    current = doc_of(v1)
    edit = current.get("default", type=XmlFragment)
    para = edit.children.append(XmlElement("paragraph"))
    para.children.append(XmlText()).insert(0, "added later")
    state_now = current.get_update()
    update = restore_update(state_now, v1)
    restored = doc_of(state_now)
    restored.apply_update(update)
    assert render_html(restored) == render_html(v1)
    # It is an update on top: the old state's history is still contained.
    assert doc_of(state_now).get_state() != restored.get_state()


def test_safe_href() -> None:
    assert safe_href("https://x.org") == "https://x.org"
    assert safe_href(" http://x.org") == "http://x.org"
    assert safe_href("/relative") is None
    assert safe_href("java\nscript:alert(1)") is None
    assert safe_href("vbscript:x") is None
    assert safe_href(None) is None
    assert safe_href("http://[::1") is None


# -- nesting depth (issue 9, item 17) ------------------------------------------------------

def _nested(levels: int, tag: str = "blockquote") -> bytes:
    doc: Doc[Any] = Doc()
    node: Any = doc.get("default", type=XmlFragment)
    with doc.transaction():
        for _ in range(levels):
            node = node.children.append(XmlElement(tag))
        node.children.append(XmlElement("paragraph")).children.append(XmlText("bodem"))
        inline = node.children.append(XmlElement("paragraph"))
        for _ in range(levels):  # unknown inline elements nest too
            inline = inline.children.append(XmlElement("span"))
        inline.children.append(XmlText("binnenin"))
    return doc.get_update()


def test_deep_nesting_is_flattened_not_recursed() -> None:
    deep = _nested(3000)
    html = render_html(deep)
    assert html.count("<blockquote>") == MAX_DEPTH
    assert "<p>bodem</p>" in html and "binnenin" in html
    assert render_text(deep).splitlines() == ["bodem", "binnenin"]
    assert "bodem" in render_markdown(deep) and "binnenin" in render_markdown(deep)
    shallow = render_html(deep, max_depth=8)
    assert shallow.count("<blockquote>") == 8 and "bodem" in shallow
    current = _nested(1)
    doc: Doc[Any] = Doc()
    doc.apply_update(current)
    doc.apply_update(restore_update(current, deep))
    assert render_text(doc).splitlines() == ["bodem", "binnenin"]


def test_nesting_below_the_limit_keeps_its_structure() -> None:
    html = render_html(_nested(MAX_DEPTH - 2))
    assert html.count("<blockquote>") == MAX_DEPTH - 2


def test_markdown_import_is_shallow_whatever_the_input() -> None:
    for text in ("> " * 3000 + "x", "*" * 3000 + "x" + "*" * 3000,
                 "".join("  " * i + "- x\n" for i in range(3000)), "[" * 3000 + "x"):
        update = markdown_to_update(text)
        assert "x" in render_text(update)
