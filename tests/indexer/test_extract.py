"""Every extractor on small real samples, through the worker subprocess."""

from __future__ import annotations

import codecs

import pytest

from indexer import ExtractionStatus, extract_text
from tests.indexer import samples


def test_pdf_keeps_pages_and_page_numbers() -> None:
    pages = [f"Pagina {i} over de begroting" for i in range(1, 11)]
    pages[6] += " kwartelkoning"
    result = extract_text(samples.make_pdf(pages), filename="verslag.pdf")
    assert result.status is ExtractionStatus.OK, result.reason
    assert result.kind == "pdf" and result.mime == "application/pdf"
    assert len(result.pages) == 10
    assert [i for i, p in enumerate(result.pages, 1) if "kwartelkoning" in p] == [7]


@pytest.mark.parametrize(
    ("build", "kind", "expected"),
    [
        (lambda: samples.make_docx(["Eerste alinea", "Tweede & derde"]), "docx",
         ["Eerste alinea", "Tweede & derde"]),
        (lambda: samples.make_pptx(["Dia een", "Dia twee"]), "pptx", ["Dia een", "Dia twee"]),
        (lambda: samples.make_xlsx(["Begroting", "Gemeente"]), "xlsx",
         ["Begroting", "Gemeente", "inline cel"]),
        (lambda: samples.make_odt(["Open formaat", "tekst"]), "odt", ["Open formaat"]),
        (lambda: samples.make_ods(["Rekenblad", "cel"]), "ods", ["Rekenblad"]),
    ],
)
def test_office_formats(build: object, kind: str, expected: list[str]) -> None:
    result = extract_text(build())  # type: ignore[operator]
    assert result.status is ExtractionStatus.OK, result.reason
    assert result.kind == kind
    for word in expected:
        assert word in result.text


def test_pptx_has_one_page_per_slide() -> None:
    result = extract_text(samples.make_pptx(["een", "twee", "drie"]))
    assert [p.strip() for p in result.pages] == ["een", "twee", "drie"]


def test_html_text_only_without_script_and_style() -> None:
    page = (b"<html><head><title>Raads&shy;besluit</title><style>.x{color:red}</style>"
            b"<script>var geheim = 'zwaluw';</script></head>"
            b"<body><h1>Besluit</h1><p>Over de dijken &amp; sluizen</p></body></html>")
    result = extract_text(page, filename="besluit.html")
    assert result.status is ExtractionStatus.OK
    assert result.kind == "html"
    assert "Over de dijken & sluizen" in result.text
    assert "zwaluw" not in result.text and "color" not in result.text
    assert result.title.startswith("Raads")


@pytest.mark.parametrize(
    "encoded",
    [
        "Één café in Zeeland".encode(),
        codecs.BOM_UTF8 + "Één café in Zeeland".encode(),
        "Één café in Zeeland".encode("utf-16"),  # with BOM
        "Één café in Zeeland".encode("utf-16-be").join([codecs.BOM_UTF16_BE, b""]),
        "Één café in Zeeland".encode("cp1252"),
    ],
    ids=["utf8", "utf8-bom", "utf16-le-bom", "utf16-be-bom", "cp1252"],
)
def test_text_encodings(encoded: bytes) -> None:
    result = extract_text(encoded, filename="notitie.txt")
    assert result.status is ExtractionStatus.OK, result.reason
    assert result.text.strip() == "Één café in Zeeland"


def test_cp1252_quotes() -> None:
    result = extract_text("“citaat” – €5".encode("cp1252"), filename="a.txt")
    assert result.text == "“citaat” – €5"


def test_csv_and_markdown() -> None:
    csv = extract_text(b"naam;plaats\nJan;Middelburg\n", filename="lijst.csv")
    md = extract_text(b"# Kop\n\nDit is *Markdown*.", filename="lees.md")
    assert "Middelburg" in csv.text and csv.status is ExtractionStatus.OK
    assert "Markdown" in md.text and md.status is ExtractionStatus.OK


def test_unsupported_type_is_metadata_only() -> None:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))
    result = extract_text(png, filename="foto.png")
    assert result.status is ExtractionStatus.UNSUPPORTED
    assert result.pages == () and result.mime == "image/png"


def test_output_cap_truncates() -> None:
    from indexer import ExtractionLimits

    result = extract_text(b"woord " * 10_000, filename="a.txt",
                          limits=ExtractionLimits(max_output_chars=1000))
    assert result.status is ExtractionStatus.OK and result.truncated
    assert len(result.text) == 1000


# -- type sniffing for uploads (issue 9, item 10) -------------------------------------------

def test_sniff_mime_runs_libmagic_in_a_worker() -> None:
    from indexer import sniff_mime
    from indexer.extract import SNIFF_BYTES

    assert sniff_mime(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n") == "application/pdf"
    assert sniff_mime(b"<!DOCTYPE html><html><body>x</body></html>\n") == "text/html"
    assert sniff_mime(b"Gewoon een tekst.\n") == "text/plain"
    assert sniff_mime(b"") == "application/octet-stream"
    # Only the first SNIFF_BYTES cross over: a PNG signature followed by a lot is still a PNG.
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")
    assert sniff_mime(png + bytes(10 * SNIFF_BYTES)) == "image/png"


def test_sniff_mime_survives_a_worker_that_is_killed() -> None:
    from indexer import ExtractionLimits, sniff_mime

    # Too little address space for the interpreter and libmagic: the worker dies, the
    # caller gets "unknown" (never an exception, never a guess).
    starved = ExtractionLimits(memory_bytes=16 * (1 << 20), cpu_seconds=5, wall_seconds=10.0)
    assert sniff_mime(b"%PDF-1.4\n", limits=starved) == "application/octet-stream"
