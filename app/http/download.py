"""Streaming downloads of encrypted blobs: Range requests, RFC 6266 file names, and a
Content-Disposition that only shows known-harmless types inline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

from starlette.responses import Response, StreamingResponse

from storage import BlobReader

# Shown in the browser; everything else (HTML, SVG, XML, JS, unknown) is a download, because a
# file that runs script in our origin could act as the person viewing it.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf",
                          "text/plain"})
# libmagic calls JavaScript (and HTML fragments it does not recognise) text/plain. Served as
# text/plain with nosniff they would not run, but text whose name says "active content" goes
# out as a download anyway: what the browser does with a .js/.html must never be decided by a
# guess that happened to say "plain text".
ACTIVE_EXTENSIONS = frozenset({"htm", "html", "xhtml", "shtml", "svg", "svgz", "xml", "xsl",
                               "xslt", "js", "mjs", "cjs", "jsx", "ts", "css", "swf", "hta"})
DOWNLOAD_CSP = "default-src 'none'; img-src 'self'; object-src 'self'; frame-ancestors 'self'"
# Every download and inline view runs in a sandbox (an opaque origin, no script, no forms), PDFs
# too: a PDF is parsed by the browser's viewer, and a viewer flaw or PDF script must not act in
# our origin. Older Chromium refused to render PDFs in a sandboxed *frame* (crbug 413851); a
# top-level PDF under "sandbox allow-downloads" renders in Chromium 156 (checked with the
# Debian build the browser tests use), and its download button keeps working.
SANDBOX = "; sandbox allow-downloads"
SEND_BYTES = 1024 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def content_disposition(filename: str, *, inline: bool) -> str:
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    # Quotes, backslashes and every control character (CR/LF above all: header injection)
    # become "_" in the legacy parameter; filename* carries the exact name percent-encoded.
    ascii_name = re.sub(r'[\x00-\x1f\x7f"\\]', "_", ascii_name) or "file"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def shown_inline(mime: str, filename: str) -> bool:
    if mime not in INLINE_TYPES:
        return False
    if mime != "text/plain":
        return True  # images and PDF are recognised by their signature, whatever the name
    extension = filename.rpartition(".")[2].lower() if "." in filename else ""
    return extension not in ACTIVE_EXTENSIONS


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """``(start, end_exclusive)`` for one satisfiable range, ``None`` for no/ignored Range,
    ``False`` for an unsatisfiable one (416)."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # several ranges or another unit: answer with the whole body (RFC 9110)
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        length = int(last)
        if length == 0 or size == 0:
            return False  # nothing to send: an empty file has no satisfiable range
        return max(0, size - length), size
    start = int(first)
    if last != "" and int(last) < start:
        return None  # an invalid range is ignored, not refused (RFC 9110, 14.2)
    if start >= size:
        return False
    end = size if last == "" else min(int(last) + 1, size)
    return start, end


def blob_response(reader: BlobReader, *, filename: str, mime: str, sha256: str,
                  range_header: str | None, if_none_match: str | None) -> Response:
    size = reader.size
    inline = shown_inline(mime, filename)
    media_type = f"{mime}; charset=utf-8" if mime == "text/plain" else (
        mime if inline else "application/octet-stream")
    headers = {
        "Content-Disposition": content_disposition(filename, inline=inline),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": DOWNLOAD_CSP + SANDBOX,
        "Accept-Ranges": "bytes",
        "ETag": f'"{sha256}"',
        # Decrypted content must not land in a browser's or proxy's disk cache; the ETag still
        # answers a client that revalidates on its own.
        "Cache-Control": "private, no-store",
    }
    if if_none_match and _etag_matches(if_none_match, f'"{sha256}"'):
        reader.close()
        return Response(status_code=304, headers=headers)
    wanted = parse_range(range_header, size)
    if wanted is False:
        reader.close()
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if isinstance(wanted, tuple):
        start, end = wanted
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        return StreamingResponse(_closing(reader, reader.iter_range(start, end)), status_code=206,
                                 media_type=media_type, headers=headers)
    headers["Content-Length"] = str(size)
    return StreamingResponse(_closing(reader, reader.iter_chunks()), media_type=media_type,
                             headers=headers)


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison over a list of tags (RFC 9110, 13.1.2), as If-None-Match asks."""
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


def _closing(reader: BlobReader, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Decrypted chunks in pieces of about a megabyte, closing the reader at the end.

    Starlette runs a synchronous iterator in a worker thread, one hop per item: handing out
    the 64 KiB blob chunks one by one made the thread hops, not the decryption, the cost of a
    large download. Memory stays at one piece."""
    try:
        batch: list[bytes] = []
        size = 0
        for chunk in chunks:
            batch.append(chunk)
            size += len(chunk)
            if size >= SEND_BYTES:
                yield b"".join(batch)
                batch, size = [], 0
        if batch:
            yield b"".join(batch)
    finally:
        reader.close()
