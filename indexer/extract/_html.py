"""HTML to text with the stdlib parser: visible text only, never script/style."""

from __future__ import annotations

from html.parser import HTMLParser

from indexer.extract._common import Budget
from indexer.extract._text import decode_text

__all__ = ["extract_html"]

_SKIP = frozenset({"script", "style", "template", "noscript", "svg", "math", "object"})
_BLOCK = frozenset(
    {"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6",
     "section", "article", "header", "footer", "blockquote", "pre", "table", "dt", "dd"}
)


class _TextParser(HTMLParser):
    def __init__(self, budget: Budget) -> None:
        super().__init__(convert_charrefs=True)
        self._budget = budget
        self._skip_depth = 0
        self._in_title = False
        self.title_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip_depth += 1
        elif tag == "title":
            self._in_title = True
        elif tag in _BLOCK and not self._skip_depth:
            self._budget.add("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag == "title":
            self._in_title = False
        elif tag in _BLOCK and not self._skip_depth:
            self._budget.add("\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._in_title:
            self.title_parts.append(data)
            return
        self._budget.add(data)


def extract_html(data: bytes, budget: Budget) -> str:
    """Feed the page to the budget; return the <title> text."""
    parser = _TextParser(budget)
    try:
        parser.feed(decode_text(data))
        parser.close()
    finally:
        title = " ".join("".join(parser.title_parts).split())[:500]
    return title
