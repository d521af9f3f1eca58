"""Helpers shared by the extractors (they run inside the worker subprocess only)."""

from __future__ import annotations

__all__ = ["Budget", "LimitExceeded", "NotExtractable", "OutputFull"]


class LimitExceeded(Exception):
    """A content limit (pages, zip entries, sizes, ratios) was hit -> status ``limit``."""


class NotExtractable(Exception):
    """The file is broken or not what it claims (binary .txt, encrypted) -> ``failed``."""


class OutputFull(Exception):
    """The output budget is spent: the text so far is kept, marked truncated."""


class Budget:
    """Collects text into pages and stops at ``max_chars`` (raising OutputFull).

    Bounding the output inside the worker keeps one huge file from producing an
    index document (and a stored snippet source) of unbounded size.
    """

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.used = 0
        self.pages: list[str] = []
        self._current: list[str] = []
        self.truncated = False

    def add(self, text: str) -> None:
        if not text:
            return
        room = self.max_chars - self.used
        if len(text) > room:
            self._current.append(text[:room])
            self.used = self.max_chars
            self.truncated = True
            raise OutputFull
        self._current.append(text)
        self.used += len(text)

    def end_page(self) -> None:
        self.pages.append("".join(self._current))
        self._current = []

    def finish(self) -> list[str]:
        if self._current or not self.pages:
            self.end_page()
        return self.pages
