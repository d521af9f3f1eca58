"""Small sample files built in memory: PDFs by hand, office files with zipfile."""

from __future__ import annotations

import io
import zipfile
import zlib
from xml.sax.saxutils import escape


def _pdf(objects: list[bytes], root: int = 1) -> bytes:
    """Assemble numbered objects (1-based) into a PDF with a correct xref table."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, root, xref)
    return bytes(out)


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def _escape(text: str) -> bytes:
    raw = text.encode("latin-1")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def make_pdf(pages: list[str], words_per_line: int | None = None) -> bytes:
    """One page per string, Helvetica, WinAnsi (latin-1 text); with ``words_per_line``, each
    page's text is set in lines of that many words (long texts, as real documents have)."""
    n = len(pages)
    # 1 catalog, 2 pages, 3 font, then (page, content) pairs
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, text in enumerate(pages):
        if words_per_line is None:
            content = b"BT /F1 12 Tf 72 720 Td (" + _escape(text) + b") Tj ET"
        else:
            words = text.split()
            lines = [" ".join(words[j:j + words_per_line])
                     for j in range(0, len(words), words_per_line)]
            content = b"BT /F1 10 Tf 12 TL 50 760 Td " + b" ".join(
                b"(" + _escape(line) + b") Tj T*" for line in lines) + b" ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(_stream(content))
    return _pdf(objects)


def make_pdf_inflating(size: int) -> bytes:
    """One page whose content stream inflates to ``size`` bytes."""
    payload = zlib.compress(b" " * size, 9)
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        _stream(payload, b"/Filter /FlateDecode "),
    ])


def make_pdf_loop() -> bytes:
    """A page tree whose Pages node lists itself as a kid (a reference loop)."""
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length 4 0 R >>\nstream\nBT ET\nendstream",
    ])


def make_pdf_many_pages(count: int) -> bytes:
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count),
    ]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * count
    return _pdf(objects)


def _zip(parts: dict[str, bytes | str], *, first: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if first is not None:  # ODF: "mimetype" first and stored
            zf.writestr(zipfile.ZipInfo(first), parts[first], zipfile.ZIP_STORED)
        for name, data in parts.items():
            if name != first:
                zf.writestr(name, data)
    return buf.getvalue()


_CT = ('<?xml version="1.0"?>'
       '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_A = 'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"'


def make_docx(paragraphs: list[str]) -> bytes:
    body = "".join(f"<w:p><w:r><w:t>{escape(p)}</w:t></w:r></w:p>" for p in paragraphs)
    doc = (f'<?xml version="1.0" encoding="UTF-8"?>'
           f"<w:document {_W}><w:body>{body}</w:body></w:document>")
    return _zip({"[Content_Types].xml": _CT, "word/document.xml": doc})


def make_docx_raw(document_xml: bytes) -> bytes:
    return _zip({"[Content_Types].xml": _CT, "word/document.xml": document_xml})


def make_pptx(slides: list[str]) -> bytes:
    parts: dict[str, bytes | str] = {"[Content_Types].xml": _CT, "ppt/presentation.xml": "<p/>"}
    for i, text in enumerate(slides, 1):
        parts[f"ppt/slides/slide{i}.xml"] = (
            f'<p:sld xmlns:p="p" {_A}><a:p><a:r><a:t>{escape(text)}</a:t></a:r></a:p></p:sld>'
        )
    return _zip(parts)


def make_xlsx(strings: list[str]) -> bytes:
    si = "".join(f"<si><t>{escape(s)}</t></si>" for s in strings)
    return _zip({
        "[Content_Types].xml": _CT,
        "xl/workbook.xml": "<workbook/>",
        "xl/sharedStrings.xml": f'<sst xmlns="x">{si}</sst>',
        "xl/worksheets/sheet1.xml":
            '<worksheet><c t="inlineStr"><is><t>inline cel</t></is></c></worksheet>',
    })


_ODF_NS = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
           'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
           'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"')


def make_odt(paragraphs: list[str]) -> bytes:
    body = "".join(f"<text:p>{escape(p)}</text:p>" for p in paragraphs)
    content = (f"<office:document-content {_ODF_NS}><office:body>"
               f"<office:text>{body}</office:text></office:body></office:document-content>")
    return _zip({"mimetype": "application/vnd.oasis.opendocument.text",
                 "content.xml": content}, first="mimetype")


def make_ods(cells: list[str]) -> bytes:
    row = "".join(
        f"<table:table-cell><text:p>{escape(c)}</text:p></table:table-cell>" for c in cells
    )
    content = (f"<office:document-content {_ODF_NS}><office:body><office:spreadsheet>"
               f"<table:table><table:table-row>{row}</table:table-row></table:table>"
               "</office:spreadsheet></office:body></office:document-content>")
    return _zip({"mimetype": "application/vnd.oasis.opendocument.spreadsheet",
                 "content.xml": content}, first="mimetype")


def make_zip_bomb(size: int) -> bytes:
    """A DOCX whose document.xml is ``size`` bytes of one repeated character."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", _CT)
        with zf.open("word/document.xml", "w", force_zip64=True) as f:
            block = b"a" * (1 << 20)
            for _ in range(size >> 20):
                f.write(block)
    return buf.getvalue()


def lie_about_sizes(data: bytes, name: str, claimed: int) -> bytes:
    """Rewrite the uncompressed size of entry ``name`` in both headers (headers lie)."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    out = bytearray(data)
    out[info.header_offset + 22 : info.header_offset + 26] = claimed.to_bytes(4, "little")
    pos = data.find(b"PK\x01\x02")
    while pos != -1:  # central directory entries
        nlen = int.from_bytes(out[pos + 28 : pos + 30], "little")
        if out[pos + 46 : pos + 46 + nlen] == name.encode():
            out[pos + 24 : pos + 28] = claimed.to_bytes(4, "little")
        pos = data.find(b"PK\x01\x02", pos + 4)
    return bytes(out)
