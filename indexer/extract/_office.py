"""OOXML (DOCX/PPTX/XLSX) and ODF (ODT/ODS/ODP): zip + XML text.

The zip container is told apart by its parts, not by libmagic's guess: a minimal
but valid DOCX often sniffs as plain ``application/zip``.
"""

from __future__ import annotations

import re

from indexer.extract._common import Budget, NotExtractable
from indexer.extract._result import ExtractionLimits
from indexer.extract._xml import walk_text
from indexer.extract._zip import SafeZip

__all__ = ["OFFICE_MIMES", "extract_office", "office_kind"]

OFFICE_MIMES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "odt": "application/vnd.oasis.opendocument.text",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odp": "application/vnd.oasis.opendocument.presentation",
}
_ODF_BY_MIME = {mime: kind for kind, mime in OFFICE_MIMES.items() if kind.startswith("od")}
_DOCX_PARTS = re.compile(r"word/(document|footnotes|endnotes|comments|header\d*|footer\d*)\.xml")
_SLIDE = re.compile(r"ppt/slides/slide(\d+)\.xml")
_SHEET = re.compile(r"xl/worksheets/sheet(\d+)\.xml")


def office_kind(zf: SafeZip) -> str | None:
    names = set(zf.names())
    if "mimetype" in names and "content.xml" in names:
        mime = zf.read("mimetype", max_bytes=200).decode("ascii", "replace").strip()
        return _ODF_BY_MIME.get(mime)
    if "[Content_Types].xml" in names:
        if "word/document.xml" in names:
            return "docx"
        if any(_SLIDE.fullmatch(n) for n in names):
            return "pptx"
        if "xl/workbook.xml" in names:
            return "xlsx"
    return None


def _numbered(names: list[str], pattern: re.Pattern[str]) -> list[str]:
    found = [(int(m.group(1)), n) for n in names if (m := pattern.fullmatch(n))]
    return [n for _, n in sorted(found)]


def extract_office(data: bytes, budget: Budget, limits: ExtractionLimits) -> str:
    """Feed the document's text to the budget; return the detected kind."""
    zf = SafeZip(data, limits)
    kind = office_kind(zf)
    if kind is None:
        raise NotExtractable("zip: not an office document")
    names = zf.names()
    if kind == "docx":
        # document.xml first, then notes/headers/comments in a stable order.
        parts = sorted((n for n in names if _DOCX_PARTS.fullmatch(n)),
                       key=lambda n: (n != "word/document.xml", n))
        for part in parts:
            walk_text(zf.read(part), budget.add, text_in={"t"}, breaks={"br", "cr"})
    elif kind == "pptx":
        for part in _numbered(names, _SLIDE):  # one budget page per slide
            walk_text(zf.read(part), budget.add, text_in={"t"}, breaks={"br"})
            budget.end_page()
    elif kind == "xlsx":
        if "xl/sharedStrings.xml" in names:
            walk_text(zf.read("xl/sharedStrings.xml"), budget.add, text_in={"t"}, breaks=(),
                      end_breaks={"si"})
        for part in _numbered(names, _SHEET):  # inline strings live in the sheets
            walk_text(zf.read(part), budget.add, text_in={"t"}, breaks=(), end_breaks={"is"})
    else:
        walk_text(zf.read("content.xml"), budget.add, text_in=None,
                  breaks={"line-break"}, spaces={"s"},
                  end_breaks={"p", "h", "table-cell"})
    return kind
