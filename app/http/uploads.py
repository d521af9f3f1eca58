"""Streaming multipart uploads straight into the encrypting blob writer.

Starlette's ``request.form()`` spools file parts to a temporary file in plaintext; SECURITY.md
forbids plaintext on disk, so we drive python-multipart's parser ourselves and hand the bytes
of the ``file`` part to :class:`storage.BlobWriter` as they arrive (memory stays bounded by one
buffer whatever the size of the file).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import anyio
import magic
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from app.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from app.services.blobs import refresh_key_ring
from storage import BlobInfo, BlobStore, BlobWriter, LocalBlobStore

FLUSH_BYTES = 1024 * 1024
SNIFF_BYTES = 8192
MAX_PARTS = 8
MAX_FIELD_BYTES = 64 * 1024
MAX_FILENAME_CHARS = 255


@dataclass
class ReceivedFile:
    """A file part that is now a durable, encrypted blob (committed, not yet referenced)."""

    blob: BlobInfo
    filename: str
    mime: str
    client_mime: str
    fields: dict[str, str] = field(default_factory=dict)


def clean_filename(raw: str) -> str:
    """A file name is metadata shown to people, never a path: keep the last path segment, drop
    control and bidi-formatting characters (an RTL override can disguise ``gpj.exe``), limit
    the length, keep the extension where we can."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"))
    name = name.strip().strip(".") or "file"
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_FILENAME_CHARS - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_FILENAME_CHARS]
    return name


class _Receiver:
    def __init__(self, store: BlobStore, max_bytes: int) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.parts = 0
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.current: str | None = None  # "file", a field name, or None (ignored part)
        self.field_buffer = bytearray()
        self.fields: dict[str, str] = {}
        self.file_buffer = bytearray()
        self.file_seen = False
        self.file_size = 0
        self.sniff = bytearray()
        self.filename = ""
        self.client_mime = ""
        self.error: Exception | None = None

    # python-multipart callbacks (synchronous, called from parser.write)
    def on_part_begin(self) -> None:
        self.parts += 1
        self.headers = {}
        if self.parts > MAX_PARTS:
            self.error = BadRequest("Too many parts in the upload.", code="too_many_parts")

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[self.header_field.lower()] = self.header_value
        self.header_field = b""
        self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name == "file" and b"filename" in options:
            if self.file_seen:
                self.error = BadRequest("Send one file per request.", field="file")
                return
            self.file_seen = True
            self.current = "file"
            self.filename = clean_filename(options[b"filename"].decode("utf-8", "replace"))
            self.client_mime = self.headers.get(b"content-type", b"").decode("latin-1")[:120]
        elif b"filename" in options:
            self.current = None
        else:
            self.current = name
            self.field_buffer = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        chunk = data[start:end]
        if self.current == "file":
            self.file_size += len(chunk)
            if self.file_size > self.max_bytes:
                self.error = PayloadTooLarge(
                    f"The file is larger than the limit of {self.max_bytes} bytes.")
                return
            if len(self.sniff) < SNIFF_BYTES:
                self.sniff += chunk[: SNIFF_BYTES - len(self.sniff)]
            self.file_buffer += chunk
        elif self.current is not None:
            self.field_buffer += chunk
            if len(self.field_buffer) > MAX_FIELD_BYTES:
                self.error = PayloadTooLarge("A form field is too large.", field=self.current)

    def on_part_end(self) -> None:
        if self.current not in (None, "file"):
            self.fields[self.current] = self.field_buffer.decode("utf-8", "replace")
        self.current = None


async def receive_file(request: Request, store: BlobStore, max_bytes: int) -> ReceivedFile:
    """Read a ``multipart/form-data`` body with one part named ``file`` into a new blob.

    The blob is committed (fsynced, renamed into place) before this returns; the caller makes
    it visible with a database row, or deletes it. On any error the temporary file is removed."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise UnsupportedMediaType("Upload the file as multipart/form-data with a part 'file'.")
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("The multipart body has no boundary.", code="bad_multipart")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise PayloadTooLarge(f"The file is larger than the limit of {max_bytes} bytes.")

    receiver = _Receiver(store, max_bytes)
    parser = MultipartParser(boundary, callbacks={
        "on_part_begin": receiver.on_part_begin,
        "on_header_field": receiver.on_header_field,
        "on_header_value": receiver.on_header_value,
        "on_header_end": receiver.on_header_end,
        "on_headers_finished": receiver.on_headers_finished,
        "on_part_data": receiver.on_part_data,
        "on_part_end": receiver.on_part_end,
    })
    if isinstance(store, LocalBlobStore):
        await anyio.to_thread.run_sync(refresh_key_ring, store)
    writer: BlobWriter = await anyio.to_thread.run_sync(store.open_writer)
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except Exception as exc:  # python-multipart raises its own parse errors
                raise BadRequest(f"The multipart body is malformed: {exc}",
                                 code="bad_multipart") from exc
            if receiver.error is not None:
                raise receiver.error
            if len(receiver.file_buffer) >= FLUSH_BYTES:
                await _flush(receiver, writer)
        parser.finalize()
        if receiver.error is not None:
            raise receiver.error
        if not receiver.file_seen:
            raise BadRequest("The upload has no part named 'file'.", field="file")
        await _flush(receiver, writer)
        info: BlobInfo = await anyio.to_thread.run_sync(writer.commit)
    except ClientDisconnect:
        await anyio.to_thread.run_sync(writer.abort)
        raise BadRequest("The upload was interrupted.", code="upload_interrupted") from None
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(writer.abort)
        raise
    # The type comes from the bytes; the client's claim is kept only as a hint.
    mime = magic.from_buffer(bytes(receiver.sniff), mime=True) if receiver.sniff else ""
    return ReceivedFile(blob=info, filename=receiver.filename,
                        mime=mime or "application/octet-stream", client_mime=receiver.client_mime,
                        fields=receiver.fields)


async def _flush(receiver: _Receiver, writer: BlobWriter) -> None:
    if not receiver.file_buffer:
        return
    data = bytes(receiver.file_buffer)
    receiver.file_buffer.clear()
    await anyio.to_thread.run_sync(writer.write, data)
