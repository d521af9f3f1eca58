"""A note as a Word document (.docx, Office Open XML), because people still send Word files.

Like :mod:`app.services.odt` it reads the note's own HTML (:func:`sync.render_html`, a small
fixed vocabulary) and writes it with a maintained library (python-docx): headings, paragraphs,
bulleted and numbered lists (nesting shown by the list style's level), quotes, code, tables,
bold/italic/strike/code runs and links (as their text followed by the address). Anything
outside the vocabulary keeps its text.
"""

from __future__ import annotations

import io
from html.parser import HTMLParser

import docx
from docx.document import Document
from docx.shared import Pt
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_MARKS = {"strong": "bold", "b": "bold", "em": "italic", "i": "italic", "s": "strike",
          "code": "code"}
_HEADINGS = {f"h{n}": n for n in range(1, 7)}


class _Builder(HTMLParser):
    def __init__(self, document: Document) -> None:
        super().__init__(convert_charrefs=True)
        self.document = document
        self.paragraph: Paragraph | None = None
        self.marks: list[str] = []
        self.lists: list[str] = []  # "ul" / "ol", innermost last
        self.quote = 0
        self.pre = False
        self.link: str | None = None
        self.tables: list[tuple[Table, int]] = []  # table, current row index
        self.cell: _Cell | None = None
        self.cell_used = False
        self.column = 0

    def _container(self) -> Document | _Cell:
        return self.cell if self.cell is not None else self.document

    def _new_paragraph(self, style: str | None = None) -> Paragraph:
        if self.cell is not None and not self.cell_used:
            # A new cell has one empty paragraph already: use it.
            self.cell_used = True
            paragraph = self.cell.paragraphs[0]
            if style:
                paragraph.style = self.document.styles[style]
        else:
            paragraph = self._container().add_paragraph(style=style)
        assert isinstance(paragraph, Paragraph)  # noqa: S101 - python-docx's return, typed Any
        self.paragraph = paragraph
        return paragraph

    def _list_style(self) -> str:
        base = "List Bullet" if self.lists[-1] == "ul" else "List Number"
        level = min(len(self.lists), 3)
        return base if level == 1 else f"{base} {level}"

    def _style(self) -> str | None:
        if self.pre:
            return "macro"
        if self.lists:
            return self._list_style()
        if self.quote:
            return "Quote"
        return None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "p":
            # The first paragraph of a list item carries the bullet; later ones continue it.
            self._new_paragraph(self._style())
        elif tag in _HEADINGS:
            self.paragraph = self.document.add_heading(level=_HEADINGS[tag])
        elif tag in ("ul", "ol"):
            self.lists.append(tag)
        elif tag == "blockquote":
            self.quote += 1
        elif tag == "pre":
            self.pre = True
            self._new_paragraph("macro")
        elif tag == "hr":
            self.document.add_paragraph("―" * 20)
        elif tag == "br":
            if self.paragraph is not None:
                self.paragraph.add_run().add_break()
        elif tag == "table":
            self.tables.append((self.document.add_table(rows=0, cols=0), -1))
        elif tag == "tr" and self.tables:
            table, row = self.tables[-1]
            table.add_row()  # type: ignore[no-untyped-call]  # python-docx leaves it bare
            self.tables[-1] = (table, row + 1)
            self.column = 0
        elif tag in ("td", "th") and self.tables:
            table, row = self.tables[-1]
            if self.column >= len(table.columns):
                table.add_column(Pt(96))
            self.cell = table.rows[row].cells[self.column]
            self.column += 1
            self.cell_used = False
            if tag == "th":
                self.marks.append("bold")
        elif tag == "a":
            self.link = found.get("href")
        elif tag in _MARKS and not self.pre:
            self.marks.append(_MARKS[tag])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("p", "pre") or tag in _HEADINGS:
            self.paragraph = None
            if tag == "pre":
                self.pre = False
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        elif tag == "blockquote" and self.quote:
            self.quote -= 1
        elif tag in ("td", "th"):
            if tag == "th" and "bold" in self.marks:
                self.marks.remove("bold")
            self.cell = None
            self.paragraph = None
        elif tag == "table" and self.tables:
            self.tables.pop()
        elif tag == "a":
            if self.link and self.paragraph is not None:
                self.paragraph.add_run(f" ({self.link})")
            self.link = None
        elif tag in _MARKS and not self.pre and _MARKS[tag] in self.marks:
            self.marks.reverse()
            self.marks.remove(_MARKS[tag])
            self.marks.reverse()

    def handle_data(self, data: str) -> None:
        if not data or (self.paragraph is None and not data.strip()):
            return
        paragraph = self.paragraph or self._new_paragraph(self._style())
        run = paragraph.add_run(data)
        run.bold = "bold" in self.marks or None
        run.italic = "italic" in self.marks or None
        if "strike" in self.marks:
            run.font.strike = True
        if "code" in self.marks or self.pre:
            run.font.name = "Courier New"


def note_to_docx(title: str, html: str) -> bytes:
    """The note's HTML as a .docx package (bytes), with ``title`` as the document's title."""
    document = docx.Document()
    document.core_properties.title = title
    builder = _Builder(document)
    builder.feed(html)
    builder.close()
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
