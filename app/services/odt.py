"""A note as OpenDocument text (.odt), the open document standard Dutch government bodies must
accept (the "pas toe of leg uit" list of Forum Standaardisatie).

The input is the note's own HTML (:func:`sync.render_html`), a small fixed vocabulary: p,
h1-h6, ul/ol/li, blockquote, pre/code, hr, br, tables, strong/em/s/code and links. Each maps
to its ODF counterpart; the package (mimetype stored first, manifest, content, styles) is
written by odfpy, so the result is a valid ODF 1.2 document that LibreOffice and Word open.
Anything outside the vocabulary keeps its text and loses its markup, never the other way.
"""

from __future__ import annotations

import io
from html.parser import HTMLParser
from typing import Any

from odf import style, table, teletype, text
from odf.element import Element
from odf.opendocument import OpenDocumentText

ODT_MIME = "application/vnd.oasis.opendocument.text"
_INLINE_STYLES = {"strong": "Strong", "b": "Strong", "em": "Emphasis", "i": "Emphasis",
                  "s": "Strike", "code": "Code"}
_HEADINGS = {f"h{n}": n for n in range(1, 7)}


def _styles(doc: OpenDocumentText) -> None:
    bold = style.Style(name="Strong", family="text")
    bold.addElement(style.TextProperties(fontweight="bold", fontweightasian="bold",
                                         fontweightcomplex="bold"))
    italic = style.Style(name="Emphasis", family="text")
    italic.addElement(style.TextProperties(fontstyle="italic", fontstyleasian="italic",
                                           fontstylecomplex="italic"))
    strike = style.Style(name="Strike", family="text")
    strike.addElement(style.TextProperties(textlinethroughstyle="solid"))
    code = style.Style(name="Code", family="text")
    code.addElement(style.TextProperties(fontfamily="monospace", fontfamilygeneric="modern"))
    preformatted = style.Style(name="Preformatted_20_Text", displayname="Preformatted Text",
                               family="paragraph")
    preformatted.addElement(style.TextProperties(fontfamily="monospace",
                                                 fontfamilygeneric="modern"))
    quote = style.Style(name="Quotations", family="paragraph")
    quote.addElement(style.ParagraphProperties(marginleft="1cm", marginright="1cm"))
    rule = style.Style(name="Horizontal_20_Line", displayname="Horizontal Line",
                       family="paragraph")
    rule.addElement(style.ParagraphProperties(borderbottom="0.5pt solid #808080"))
    for item in (bold, italic, strike, code, preformatted, quote, rule):
        doc.styles.addElement(item)
    for level in range(1, 7):
        heading = style.Style(name=f"Heading_20_{level}", displayname=f"Heading {level}",
                              family="paragraph", defaultoutlinelevel=str(level))
        heading.addElement(style.TextProperties(fontsize=f"{max(11, 22 - 2 * level)}pt",
                                                fontweight="bold"))
        doc.styles.addElement(heading)


class _Builder(HTMLParser):
    def __init__(self, body: Element) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[Element] = [body]
        self.tags: list[str] = ["body"]
        self.paragraph_style: list[str] = []
        self.tables: list[tuple[Element, int]] = []  # table, widest row so far
        self.row_cells = 0

    @property
    def top(self) -> Element:
        return self.stack[-1]

    def _push(self, tag: str, element: Element) -> None:
        self.top.addElement(element)
        self.stack.append(element)
        self.tags.append(tag)

    def _text_container(self) -> Element:
        """Where inline content goes: the open paragraph, or a new one (text directly in a
        list item, cell or quote is not allowed in ODF)."""
        if self.tags[-1] in ("p", "pre", "a", "span") or self.tags[-1] in _HEADINGS \
                or self.tags[-1] in _INLINE_STYLES:
            return self.top
        self._push("p", text.P(stylename=self._paragraph_style()))
        return self.top

    def _paragraph_style(self) -> str:
        return self.paragraph_style[-1] if self.paragraph_style else "Standard"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "p":
            self._close_implicit_paragraph()
            self._push("p", text.P(stylename=self._paragraph_style()))
        elif tag in _HEADINGS:
            self._close_implicit_paragraph()
            level = _HEADINGS[tag]
            self._push(tag, text.H(outlinelevel=level, stylename=f"Heading_20_{level}"))
        elif tag in ("ul", "ol"):
            self._close_implicit_paragraph()
            self._push(tag, text.List())
        elif tag == "li":
            self._push("li", text.ListItem())
        elif tag == "blockquote":
            self._close_implicit_paragraph()
            self.paragraph_style.append("Quotations")
            self.tags.append("blockquote")
            self.stack.append(self.top)  # paragraphs inside take the quote style
        elif tag == "pre":
            self._close_implicit_paragraph()
            self._push("pre", text.P(stylename="Preformatted_20_Text"))
        elif tag == "hr":
            self._close_implicit_paragraph()
            self.top.addElement(text.P(stylename="Horizontal_20_Line"))
        elif tag == "br":
            self._text_container().addElement(text.LineBreak())
        elif tag == "table":
            self._close_implicit_paragraph()
            element = table.Table(name=f"Table{len(self.tables) + 1}")
            self._push("table", element)
            self.tables.append((element, 0))
        elif tag == "tr":
            self.row_cells = 0
            self._push("tr", table.TableRow())
        elif tag in ("td", "th"):
            span = found.get("colspan") or "1"
            cell = table.TableCell(valuetype="string")
            if span.isdigit() and int(span) > 1:
                cell.setAttribute("numbercolumnsspanned", span)
            self.row_cells += int(span) if span.isdigit() else 1
            self._push(tag, cell)
        elif tag == "a":
            href = found.get("href") or ""
            self._push("a", text.A(href=href, type="simple"))
        elif tag in _INLINE_STYLES and self.tags[-1] != "pre":
            self._text_container()
            self._push(tag, text.Span(stylename=_INLINE_STYLES[tag]))
        # tbody and unknown tags: their content only

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self.tables:
            element, widest = self.tables[-1]
            self.tables[-1] = (element, max(widest, self.row_cells))
        if tag == "table" and self.tables:
            element, widest = self.tables.pop()
            # ODF wants the columns declared before the rows.
            columns = table.TableColumn(numbercolumnsrepeated=max(widest, 1))
            if element.firstChild is not None:
                element.insertBefore(columns, element.firstChild)
            else:
                element.addElement(columns)
        if tag not in self.tags:
            return
        while self.tags:
            closed = self.tags.pop()
            self.stack.pop()
            if closed == "blockquote":
                self.paragraph_style.pop()
            if closed == tag:
                break

    def _close_implicit_paragraph(self) -> None:
        if self.tags[-1] == "p":
            self.tags.pop()
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if not data:
            return
        if self.tags[-1] in ("body", "ul", "ol", "table", "tr") and not data.strip():
            return  # whitespace between blocks
        container = self._text_container()
        if "pre" in self.tags:
            # Line breaks, tabs and runs of spaces are markup in ODF (text:line-break, text:tab,
            # text:s); teletype writes them so code keeps its shape.
            teletype.addTextToElement(container, data)
        else:
            container.addText(data)


def note_to_odt(title: str, html: str, *, metadata: dict[str, Any] | None = None) -> bytes:
    """The note's HTML as an .odt package (bytes), with ``title`` as document title."""
    from odf import dc, meta

    doc = OpenDocumentText()
    _styles(doc)
    doc.meta.addElement(dc.Title(text=title))
    for key, value in (metadata or {}).items():
        doc.meta.addElement(meta.UserDefined(name=key, text=str(value)))
    builder = _Builder(doc.text)
    builder.feed(html)
    builder.close()
    out = io.BytesIO()
    doc.write(out)
    return out.getvalue()
