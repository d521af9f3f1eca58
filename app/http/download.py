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
DOWNLOAD_CSP = "default-src 'none'; img-src 'self'; object-src 'self'; frame-ancestors 'self'"
# Chromium's PDF viewer refuses to render in a sandboxed document; everything else gets one.
SANDBOX = "; sandbox allow-downloads"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def content_disposition(filename: str, *, inline: bool) -> str:
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    ascii_name = re.sub(r'["\\\r\n]', "_", ascii_name) or "file"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


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
        if length == 0:
            return False
        return max(0, size - length), size
    start = int(first)
    end = size if last == "" else min(int(last) + 1, size)
    if start >= size or start >= end:
        return False
    return start, end


def blob_response(reader: BlobReader, *, filename: str, mime: str, sha256: str,
                  range_header: str | None, if_none_match: str | None) -> Response:
    size = reader.size
    inline = mime in INLINE_TYPES
    media_type = f"{mime}; charset=utf-8" if mime == "text/plain" else (
        mime if inline else "application/octet-stream")
    headers = {
        "Content-Disposition": content_disposition(filename, inline=inline),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": DOWNLOAD_CSP + ("" if mime == "application/pdf" else SANDBOX),
        "Accept-Ranges": "bytes",
        "ETag": f'"{sha256}"',
        "Cache-Control": "private, no-cache",
    }
    if if_none_match and if_none_match.strip() == f'"{sha256}"':
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


def _closing(reader: BlobReader, chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        reader.close()
