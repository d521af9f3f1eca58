"""Hostile input in comments (SECURITY.md "Content"): Markdown is rendered without raw HTML and
sanitized with nh3, so none of these payloads leaves anything executable in ``body_html`` —
checked in process for the renderer and through the API for what clients get. Names and
descriptions of groups and folders are stored and returned as plain text (the pages escape
them; a browser check comes with the web UI)."""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Iterator
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest

from app.services import markdown
from tests.app.helpers import API, add_member, expect, make_folder, make_group, uid_of
from tests.inprocess import running_in_process
from tests.live import unique

PAYLOADS = [
    # raw HTML: script, event handlers, frames, SVG, objects
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<iframe src=\"javascript:alert(1)\"></iframe>",
    "<object data=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\"></object>",
    "<embed src=javascript:alert(1)>",
    "<body onload=alert(1)>",
    "<div style=\"background:url(javascript:alert(1))\">x</div>",
    "<a href=\" javascript:alert(1)\">x</a>",
    "<a href=\"jav&#x09;ascript:alert(1)\">x</a>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<form action=javascript:alert(1)><button>x</button></form>",
    "<details open ontoggle=alert(1)>",
    "<<script>script>alert(1)<</script>/script>",
    "<!--<img src=x onerror=alert(1)>-->",
    # Markdown links and images with bad schemes, plain and disguised
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](jav&#x09;ascript:alert(1))",
    "[x](jav&#x0A;ascript:alert(1))",
    "[x](java%0ascript:alert(1))",
    "[x](&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](vbscript:msgbox(1))",
    "[x]( javascript:alert(1) )",
    "[x](<javascript:alert(1)>)",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x\" onerror=\"alert(1)](http://example.nl/a.png)",
    "[x](http://example.nl \"title\\\" onmouseover=alert(1) x=\\\"\")",
    "[ref]\n\n[ref]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "<vbscript:msgbox(1)>",
    "<data:text/html,<script>alert(1)</script>>",
    # quotes, entities, nesting
    "\"><script>alert(1)</script>",
    "'><img src=x onerror=alert(1)>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "> <img src=x onerror=alert(1)>\n> > [x](javascript:alert(1))",
    "- [x](javascript:alert(1))\n  - <svg/onload=alert(1)>",
    "`<script>` and ```\n<script>alert(1)</script>\n```",
    "**<img src=x onerror=alert(1)>**",
    "@[<img src=x onerror=alert(1)>](user:abc) and @[x](user:\"onmouseover=alert(1))",
    "<a href=\"https://example.nl\" onclick=\"alert(1)\" style=\"color:red\">ok</a>",
]

ALLOWED_TAGS = {"p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a",
                "h3", "h4", "h5", "h6", "del", "hr", "span"}
NEVER = {"script", "iframe", "svg", "object", "embed", "style", "img", "math", "form", "base",
         "link", "meta", "frame", "frameset", "details", "body"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "background",
                  "poster", "srcset"}
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):")


def scheme_of(url: str) -> str | None:
    """The scheme a browser would see: entities undone (html.parser did), percent-encoding
    undone, ASCII whitespace and control characters dropped, case folded."""
    decoded = unescape(url)
    for _ in range(3):
        decoded = urllib.parse.unquote(decoded)
    cleaned = re.sub(r"[\x00-\x20\x7f]+", "", decoded).lower()
    match = _SCHEME.match(cleaned)
    return match.group(1) if match else None


class Inspector(HTMLParser):
    def __init__(self, allowed: set[str] = ALLOWED_TAGS) -> None:
        super().__init__(convert_charrefs=True)
        self.allowed = allowed
        self.problems: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in NEVER or tag not in self.allowed:
            self.problems.append(f"element <{tag}>")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"event handler {name} on <{tag}>")
            if name == "style":
                self.problems.append(f"style on <{tag}>")
            if name in URL_ATTRIBUTES:
                scheme = scheme_of(value or "")
                if scheme is not None and scheme not in ("http", "https", "mailto"):
                    self.problems.append(f"{name}={value!r} on <{tag}>")
        if tag == "a" and dict(attrs).get("href") is not None:
            rel = (dict(attrs).get("rel") or "").split()
            if not {"nofollow", "noopener", "noreferrer"} <= set(rel):
                self.problems.append(f"link without rel: {attrs}")

    handle_startendtag = handle_starttag


def assert_harmless(fragment: str, allowed: set[str] = ALLOWED_TAGS) -> None:
    inspector = Inspector(allowed)
    inspector.feed(fragment)
    inspector.close()
    assert inspector.problems == [], fragment


def test_there_are_enough_payloads() -> None:
    assert len(PAYLOADS) >= 30 and len(set(PAYLOADS)) == len(PAYLOADS)


def test_the_inspector_catches_what_it_should() -> None:
    for bad in ['<script>x</script>', '<a href="jav&#x09;ascript:x">y</a>',
                '<a href="JAVA%0ASCRIPT:x">y</a>', '<p onclick="x">y</p>', '<svg></svg>',
                '<a href="data:text/html,x" rel="nofollow noopener noreferrer">y</a>']:
        inspector = Inspector()
        inspector.feed(bad)
        assert inspector.problems, bad


@pytest.mark.parametrize("payload", PAYLOADS)
def test_renderer_leaves_nothing_executable(payload: str) -> None:
    people = {"abc": ("abc", '<img src=x onerror=alert(1)> "quoted"')}
    assert_harmless(markdown.render(payload, people))
    assert_harmless(markdown.render(payload))


def test_all_payloads_in_one_comment() -> None:
    assert_harmless(markdown.render("\n\n".join(PAYLOADS)))


# -- through the API -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("xss") / "data"
    with running_in_process(data_dir, comments_per_minute=0) as server:
        alice, mallory = server.client(), server.client()
        try:
            alice.sign_up("Alice")
            mallory.sign_up('<img src=x onerror=alert(1)>"Mallory',
                            unique("mallory") + "@example.nl")
            group = make_group(alice, unique("XSS"))
            add_member(alice, group["id"], mallory)
            doc = expect(alice.post(f"{API}/folders/{group['root_folder_id']}/files",
                                    files={"file": ("x.txt", os.urandom(16), "text/plain")}),
                         201)
            yield {"alice": alice, "mallory": mallory, "group": group, "doc": doc["id"]}
        finally:
            alice.close()
            mallory.close()


@pytest.mark.parametrize("index", range(len(PAYLOADS)))
def test_comment_payloads_through_the_api(world: dict[str, Any], index: int) -> None:
    payload = PAYLOADS[index]
    mallory = world["mallory"]
    posted = expect(mallory.post(f"{API}/documents/{world['doc']}/comments",
                                 json={"body": payload}), 201)
    assert posted["body"] == payload  # stored as written
    assert_harmless(posted["body_html"])
    again = expect(mallory.get(f"{API}/comments/{posted['id']}"), 200)
    assert again["body_html"] == posted["body_html"]


def test_hostile_member_name_in_a_mention(world: dict[str, Any]) -> None:
    alice, mallory = world["alice"], world["mallory"]
    body = f"Hoi @[Mallory](user:{uid_of(mallory)})"
    posted = expect(alice.post(f"{API}/documents/{world['doc']}/comments", json={"body": body}),
                    201)
    assert_harmless(posted["body_html"])
    assert "&lt;img src=x onerror=alert(1)&gt;" in posted["body_html"]
    candidates = expect(alice.get(f"{API}/documents/{world['doc']}/mention-candidates"), 200)
    assert candidates[0]["name"] == '<img src=x onerror=alert(1)>"Mallory'
    # What the autocomplete inserts is still one mention, rendered harmless.
    inserted = expect(alice.post(f"{API}/documents/{world['doc']}/comments",
                                 json={"body": candidates[0]["mention"]}), 201)
    assert_harmless(inserted["body_html"])
    assert f'data-user-id="{uid_of(mallory)}"' in inserted["body_html"]


NAME_PAYLOADS = [p for p in PAYLOADS if "\n" not in p and len(p) <= 120]


def test_group_and_folder_names_are_plain_text(world: dict[str, Any]) -> None:
    alice = world["alice"]
    assert len(NAME_PAYLOADS) >= 30
    for payload in NAME_PAYLOADS[:30]:
        group = expect(alice.post(f"{API}/groups", json={
            "name": payload, "description": payload + "\n" + payload, "access": "closed"}),
            201)
        assert group["name"] == payload.strip()
        assert group["description"] == payload + "\n" + payload
        fetched = expect(alice.get(f"{API}/groups/{group['id']}"), 200)
        assert fetched["name"] == group["name"]
        folder = make_folder(alice, group["root_folder_id"], payload)
        assert expect(alice.get(f"{API}/folders/{folder['id']}"), 200)["name"] == payload.strip()
    # Activity and notifications carry names as the same plain text.
    hostile = NAME_PAYLOADS[0]
    expect(alice.patch(f"{API}/groups/{world['group']['id']}", json={"name": hostile}), 200)
    feed = expect(alice.get(f"{API}/groups/{world['group']['id']}/activity"), 200)
    assert {item["group"]["name"] for item in feed["items"]} == {hostile}


# -- note HTML: sanitized behind the renderer (issue 9, item 10) ---------------------------

NOTE_TAGS = ALLOWED_TAGS | {"h1", "h2", "s", "table", "tbody", "tr", "th", "td"}


class Events(HTMLParser):
    """A fragment as start tags (with attributes), end tags and text: equal events, equal
    meaning, whatever entities each serializer prefers."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[object] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append((tag, sorted(attrs, key=lambda a: a[0])))

    def handle_endtag(self, tag: str) -> None:
        self.events.append(f"/{tag}")

    def handle_data(self, data: str) -> None:
        self.events.append(data)


def events_of(fragment: str) -> list[object]:
    parser = Events()
    parser.feed(fragment)
    parser.close()
    return parser.events


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if "<" in p])
def test_note_sanitizer_cleans_what_a_renderer_mistake_could_emit(payload: str) -> None:
    """The note renderer escapes everything; were it ever to emit raw markup, the sanitizer
    behind it (the comment policy with a note's tags) still leaves nothing executable."""
    assert_harmless(markdown.sanitize_note(payload), NOTE_TAGS)
    assert_harmless(markdown.sanitize_note(f"<table><tr><td>{payload}</td></tr></table>"),
                    NOTE_TAGS)


def test_note_sanitizer_keeps_only_plain_attribute_values() -> None:
    cleaned = markdown.sanitize_note('<pre><code class="x onclick=y">z</code></pre><table><tr>'
                                     '<td colspan="2 onmouseover=x">c</td><th rowspan="3">d</th>'
                                     '</tr></table><ol start="-1"><li>e</li></ol>'
                                     '<pre><code class="language-python">f</code></pre>')
    assert "<code>z</code>" in cleaned and "<td>c</td>" in cleaned
    assert '<th rowspan="3">' in cleaned and "<ol>" in cleaned
    assert '<code class="language-python">' in cleaned


def test_note_html_is_sanitized_and_keeps_its_structure() -> None:
    from pycrdt import Doc

    from app.services import notes
    from sync import markdown_to_update, render_html

    text = ("# Kop \"x\" & <y>\n\n## Twee\n\n**vet** *schuin* ~~weg~~ `code` "
            "[link](https://example.nl/?a=1&b=2) 'q'\n\n3. drie\n4. vier\n\n> citaat\n\n"
            "```python\nprint(\"<b>\")\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n---\n")
    doc: Doc[object] = Doc()
    doc.apply_update(markdown_to_update(text))
    state = doc.get_update()
    shown = notes.render(state, "html")
    assert shown == markdown.sanitize_note(render_html(state))  # the sanitizer is in the path
    assert events_of(shown) == events_of(render_html(state))  # and takes nothing a note has
    assert {"h1", "table", "ol", "s", "code"} <= {e[0] for e in events_of(shown)
                                                  if isinstance(e, tuple)}
    assert_harmless(shown, NOTE_TAGS)
