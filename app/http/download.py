"""Streaming downloads of encrypted blobs: Range requests, RFC 6266 file names, and a
Content-Disposition that only shows known-harmless types inline."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.http.blob_io import run_blob_io
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
PREFETCH_PIECES = 2
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
        return BlobStreamResponse(reader, start, end, status_code=206, media_type=media_type,
                                  headers=headers)
    headers["Content-Length"] = str(size)
    return BlobStreamResponse(reader, 0, size, media_type=media_type, headers=headers)


def _etag_matches(header: str, etag: str) -> bool:
    """Weak comparison over a list of tags (RFC 9110, 13.1.2), as If-None-Match asks."""
    tags = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    return "*" in tags or etag in tags


class BlobStreamResponse(Response):
    """Plaintext bytes [start, end) of a blob, decrypted in blob I/O threads (:mod:`app.http.
    blob_io`) up to ``PREFETCH_PIECES`` pieces of ``SEND_BYTES`` ahead of the socket: the next
    piece is read and verified while the last one is sent. Every piece is verified in full
    before any of its bytes is sent. The reader is closed at the end, whatever happened.

    A failure mid-stream (a chunk that does not verify) is raised after the pieces before it
    went out: the body stops short of its Content-Length and the server drops the connection,
    which is how a client learns that a download failed once the status was sent."""

    def __init__(self, reader: BlobReader, start: int, end: int, *, status_code: int = 200,
                 media_type: str, headers: Mapping[str, str]) -> None:
        self.reader = reader
        self.start, self.end = start, end
        self.status_code = status_code
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._stream(receive, send)
        finally:
            # After _stream: its producer thread has stopped using the reader.
            self.reader.close()

    async def _stream(self, receive: Receive, send: Send) -> None:
        pieces = self.reader.iter_batches(self.start, self.end, SEND_BYTES)
        to_socket, from_reader = anyio.create_memory_object_stream[memoryview](PREFETCH_PIECES)
        failure: Exception | None = None

        async def produce() -> None:
            nonlocal failure
            try:
                async with to_socket:
                    while (piece := await run_blob_io(next, pieces, None)) is not None:
                        await to_socket.send(piece)
            except anyio.BrokenResourceError:
                pass  # the sending side stopped (and says why)
            except Exception as exc:
                failure = exc

        async def watch_for_disconnect() -> None:
            # This server's send() ignores a gone client (ASGI spec 2.3): stop decrypting.
            while (await receive())["type"] != "http.disconnect":
                pass
            tasks.cancel_scope.cancel()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watch_for_disconnect)
            tasks.start_soon(produce)
            try:
                await send({"type": "http.response.start", "status": self.status_code,
                            "headers": self.raw_headers})
                async with from_reader:
                    async for piece in from_reader:
                        await send({"type": "http.response.body", "body": piece,
                                    "more_body": True})
                if failure is None:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            except Exception as exc:
                # Kept out of an exception group: a client gone away is an OSError to
                # the server, as it is for any response.
                failure = failure or exc
            tasks.cancel_scope.cancel()
        if failure is not None:
            raise failure
