"""Streaming multipart uploads straight into the encrypting blob writer.

Starlette's ``request.form()`` spools file parts to a temporary file in plaintext; SECURITY.md
forbids plaintext on disk, so we drive python-multipart's parser ourselves and hand the bytes
of the ``file`` part to :class:`storage.BlobWriter` as they arrive.

A pipeline, so that the disk and the network work at the same time: the event loop receives
and parses the body and cuts each file into batches of ``FLUSH_BYTES``; a short queue
(``QUEUE_BATCHES``) takes them to the part's writer in a blob I/O thread (:mod:`app.http.blob_io`),
which hashes a batch while it encrypts and writes it. When the queue is full the loop stops
reading the body (TCP pushes back on the client), so memory stays at a few batches per upload
whatever the size of the file.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskGroup
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from app.errors import BadRequest, HTTPError, PayloadTooLarge, UnsupportedMediaType
from app.http.blob_io import run_blob_io
from app.i18n import N_
from app.services.documents import ReceivedFile
from indexer import sniff_mime_async
from indexer.extract import SNIFF_BYTES
from storage import BlobInfo, BlobStore, BlobWriter

FLUSH_BYTES = 1024 * 1024
QUEUE_BATCHES = 2
MAX_PARTS = 8  # besides the file parts: form fields
MAX_FIELD_BYTES = 64 * 1024
MAX_FILENAME_CHARS = 255


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


@dataclass
class _Part:
    filename: str
    client_mime: str
    buffer: bytearray = field(default_factory=bytearray)
    sniff: bytearray = field(default_factory=bytearray)
    size: int = 0
    ended: bool = False
    writer: BlobWriter | None = None
    feeder: _Feeder | None = None
    info: BlobInfo | None = None


class _Feeder:
    """Writes one part's batches into its blob writer, in blob I/O threads, in order.

    ``run`` never raises (but for cancellation): a failed write is kept in ``error`` and
    raised to the receiving side by its next ``put`` or by ``drain``; the writer aborted
    itself (no temp file is left)."""

    def __init__(self, writer: BlobWriter) -> None:
        self.writer = writer
        self._send, self._receive = anyio.create_memory_object_stream[bytearray](QUEUE_BATCHES)
        self._stopped = anyio.Event()
        self.error: Exception | None = None

    async def run(self) -> None:
        try:
            async for batch in self._receive:
                await run_blob_io(self.writer.write, batch)
        except Exception as exc:
            self.error = exc
        finally:
            self.close()  # a sender waiting for room fails at once
            self._stopped.set()

    def close(self) -> None:
        self._receive.close()
        self._send.close()

    async def put(self, batch: bytearray) -> None:
        if self.error is None:
            try:
                await self._send.send(batch)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the writer failed meanwhile: its error follows
        if self.error is not None:
            raise self.error

    async def drain(self) -> None:
        """Wait until every batch is written (not yet committed)."""
        self._send.close()
        await self._stopped.wait()
        if self.error is not None:
            raise self.error


class _Receiver:
    """python-multipart callbacks collecting up to ``max_files`` parts named ``file`` (each
    buffered until the next flush) and small text fields."""

    def __init__(self, max_bytes: int, max_files: int) -> None:
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.part_count = 0
        self.header_field = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.current: _Part | str | None = None
        self.field_buffer = bytearray()
        self.fields: dict[str, str] = {}
        self.files: list[_Part] = []
        self.error: HTTPError | None = None

    def on_part_begin(self) -> None:
        self.part_count += 1
        self.headers = {}
        if self.part_count > self.max_files + MAX_PARTS:
            self.error = BadRequest(N_("Too many parts in the upload."), code="too_many_parts")

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
        raw_name = options.get(b"filename")
        if name == "file" and raw_name:
            part = _Part(filename=clean_filename(raw_name.decode("utf-8", "replace")),
                         client_mime=self.headers.get(b"content-type", b"").decode("latin-1")[:120])
            self.files.append(part)
            self.current = part
            if len(self.files) > self.max_files:
                self.error = BadRequest(
                    "Send one file per request." if self.max_files == 1
                    else f"Upload at most {self.max_files} files at once.",
                    code="too_many_files", field="file")
        elif raw_name is not None:
            # Another file input, or the empty part a browser sends for "no file chosen".
            self.current = None
        else:
            self.current = name
            self.field_buffer = bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        chunk = memoryview(data)[start:end]  # no copy until it lands in the part's batch
        if isinstance(self.current, _Part):
            part = self.current
            part.size += len(chunk)
            if part.size > self.max_bytes:
                self.error = PayloadTooLarge(
                    f"The file is larger than the limit of {self.max_bytes} bytes.", field="file")
                return
            if len(part.sniff) < SNIFF_BYTES:
                part.sniff += chunk[: SNIFF_BYTES - len(part.sniff)]
            part.buffer += chunk
        elif self.current is not None:
            self.field_buffer += chunk
            if len(self.field_buffer) > MAX_FIELD_BYTES:
                self.error = PayloadTooLarge(N_("A form field is too large."), field=self.current)

    def on_part_end(self) -> None:
        if isinstance(self.current, _Part):
            self.current.ended = True
        elif self.current is not None:
            self.fields[self.current] = self.field_buffer.decode("utf-8", "replace")
        self.current = None


async def _pump(store: BlobStore, receiver: _Receiver, tasks: TaskGroup) -> None:
    """Queue each part's full batch for its writer; commit the parts that ended."""
    for part in receiver.files:
        if part.info is not None:
            continue
        if part.ended or len(part.buffer) >= FLUSH_BYTES:
            if part.writer is None or part.feeder is None:
                part.writer = await run_blob_io(store.open_writer)
                part.feeder = _Feeder(part.writer)
                tasks.start_soon(part.feeder.run)
            if part.buffer:
                batch, part.buffer = part.buffer, bytearray()
                await part.feeder.put(batch)
            if part.ended:
                await part.feeder.drain()
                part.info = await run_blob_io(part.writer.commit)
                part.writer = part.feeder = None


async def _discard(store: BlobStore, parts: list[_Part]) -> None:
    """Called once no feeder runs any more (their task group has exited)."""
    with anyio.CancelScope(shield=True):
        for part in parts:
            if part.feeder is not None:
                part.feeder.close()
            if part.writer is not None:
                await run_blob_io(part.writer.abort)
            if part.info is not None:
                await run_blob_io(store.delete, part.info.blob_id)


async def _receive(request: Request, parser: MultipartParser, receiver: _Receiver,
                   store: BlobStore, tasks: TaskGroup) -> None:
    async for chunk in request.stream():
        try:
            parser.write(chunk)
        except Exception as exc:  # python-multipart raises its own parse errors
            raise BadRequest(f"The multipart body is malformed: {exc}",
                             code="bad_multipart") from exc
        if receiver.error is not None:
            raise receiver.error
        await _pump(store, receiver, tasks)
    parser.finalize()
    if receiver.error is not None:
        raise receiver.error
    await _pump(store, receiver, tasks)


async def receive_files(request: Request, store: BlobStore, max_bytes: int, *,
                        max_files: int = 1) -> list[ReceivedFile]:
    """Every non-empty ``file`` part of a ``multipart/form-data`` body, each now a committed
    (fsynced, renamed into place) blob that the caller makes visible with a database row, or
    deletes (:func:`delete_blobs`). On any error every blob and temp file of it is removed."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise UnsupportedMediaType(N_("Upload the file as multipart/form-data with a part 'file'."))
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest(N_("The multipart body has no boundary."), code="bad_multipart")
    declared = request.headers.get("content-length", "")
    if max_files == 1 and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise PayloadTooLarge(f"The file is larger than the limit of {max_bytes} bytes.",
                              field="file")
    receiver = _Receiver(max_bytes, max_files)
    parser = MultipartParser(boundary, callbacks={
        "on_part_begin": receiver.on_part_begin,
        "on_header_field": receiver.on_header_field,
        "on_header_value": receiver.on_header_value,
        "on_header_end": receiver.on_header_end,
        "on_headers_finished": receiver.on_headers_finished,
        "on_part_data": receiver.on_part_data,
        "on_part_end": receiver.on_part_end,
    })
    try:
        failure: Exception | None = None
        async with anyio.create_task_group() as tasks:
            try:
                await _receive(request, parser, receiver, store, tasks)
            except Exception as exc:
                # Raised below, after the feeders stopped, as itself (not in an
                # exception group): callers answer HTTPError and storage errors by type.
                failure = exc
                tasks.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if not receiver.files:
            raise BadRequest(N_("The upload has no part named 'file'."), field="file",
                             code="no_file")
    except ClientDisconnect:
        await _discard(store, receiver.files)
        raise BadRequest(N_("The upload was interrupted."), code="upload_interrupted") from None
    except BaseException:
        await _discard(store, receiver.files)
        raise
    received = []
    for part in receiver.files:
        assert part.info is not None  # noqa: S101 - every part ended and was committed
        # The type comes from the bytes; the client's claim is kept only as a hint. libmagic
        # parses those untrusted bytes in the extractor's limited worker, not in the server.
        mime = await sniff_mime_async(bytes(part.sniff)) if part.sniff else ""
        received.append(ReceivedFile(blob=part.info, filename=part.filename,
                                     mime=mime or "application/octet-stream",
                                     client_mime=part.client_mime, fields=receiver.fields))
    return received


async def delete_blobs(store: BlobStore, received: list[ReceivedFile]) -> None:
    for item in received:
        await run_blob_io(store.delete, item.blob.blob_id)
