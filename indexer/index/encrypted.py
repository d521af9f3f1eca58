"""Encryption at rest for the whoosh index: a whoosh ``Storage`` that seals every file.

whoosh writes each index file once (segments, the TOC, spilled posting runs) and
only reads it afterwards; files are buffered in memory while written and sealed
when closed. On-disk layout of one file::

    b"PLNI" | version (1) | u16 len | file id (ASCII) | u16 len | wrapped DEK | blob v1 stream

* The blob v1 stream is ``storage.stream``'s chunked AES-256-GCM (64 KiB chunks,
  truncation/reordering detected) under a fresh per-file DEK; the DEK is wrapped by
  the ``KeyRing`` exactly like a blob's, bound to the file id (``ix-<random>``).
  The random id, not the name, is bound because whoosh renames files (TOC temp ->
  final) after closing them.
* Reads decrypt lazily, one verified 64 KiB chunk at a time with a small cache, so
  a searcher holds only the chunks it touches, not the whole index, in memory.
* whoosh's scratch space (``temp_storage``: spilled posting runs, compound-file
  staging) is an ``EncryptedFileStorage`` too, under an ephemeral in-memory key:
  those files hold the same words and must not be readable either.
* Lock files are empty (whoosh only locks them); they carry no content.

Authenticated encryption also covers a quieter risk: whoosh unpickles the TOC
and segment lists, so an attacker able to write into the index directory could
otherwise plant a pickle. Without the key, a forged file fails authentication
before anything is unpickled.
"""

from __future__ import annotations

import io
import os
import secrets
import struct
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from whoosh.filedb.filestore import FileStorage
from whoosh.filedb.structfile import BufferFile, StructFile

from indexer.errors import IndexUnavailable
from storage import (
    Decryptor,
    Encryptor,
    Keys,
    SeekableDecryptor,
    StorageError,
    WrappedKey,
    durable_write_bytes,
    new_data_key,
    plaintext_size,
)
from storage.stream import CHUNK_SIZE

__all__ = ["EncryptedFileStorage", "EphemeralKeys", "KeySource", "RingKeys"]

_MAGIC = b"PLNI"
_VERSION = 1
_SMALL = 4 << 20  # files up to this are decrypted whole (C speed, one pass)
_CACHE_CHUNKS = 64  # 4 MiB of plaintext chunks per open large file
_READ_BUFFER = 1 << 13


class KeySource(Protocol):
    """Wraps/unwraps per-file data keys, bound to the file id."""

    def wrap(self, dek: bytes, file_id: str) -> bytes: ...

    def unwrap(self, wrapped: bytes, file_id: str) -> bytes: ...


class RingKeys:
    """Per-file DEKs wrapped under the application's KeyRing (the active KEK)."""

    def __init__(self, ring: Keys) -> None:
        self._ring = ring

    def wrap(self, dek: bytes, file_id: str) -> bytes:
        return self._ring.wrap(dek, file_id).to_bytes()

    def unwrap(self, wrapped: bytes, file_id: str) -> bytes:
        return self._ring.unwrap(WrappedKey.from_bytes(wrapped), file_id)


class EphemeralKeys:
    """A random KEK that lives in this process only: for scratch files that die with it."""

    def __init__(self) -> None:
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))

    def wrap(self, dek: bytes, file_id: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, dek, file_id.encode())

    def unwrap(self, wrapped: bytes, file_id: str) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:12], wrapped[12:], file_id.encode())
        except InvalidTag:
            raise IndexUnavailable("scratch file failed authentication") from None


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _ChunkFile(io.RawIOBase):
    """Read-only, seekable plaintext view of a sealed file; chunks verified on use."""

    def __init__(self, fd: int, base: int, size: int, dek: bytes, blob_id: str) -> None:
        super().__init__()
        self._fd = fd
        self._base = base
        self._dec = SeekableDecryptor(
            lambda off, n: os.pread(fd, n, base + off), size - base, dek, blob_id
        )
        self.size = self._dec.size
        self._pos = 0
        self._cache: OrderedDict[int, bytes] = OrderedDict()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def _chunk(self, index: int) -> bytes:
        chunk = self._cache.get(index)
        if chunk is None:
            try:
                chunk = self._dec.read_chunk(index)
            except StorageError as exc:
                raise IndexUnavailable(f"index file failed authentication: {exc}") from None
            self._cache[index] = chunk
            if len(self._cache) > _CACHE_CHUNKS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(index)
        return chunk

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self.size or not len(view):
            return 0
        index, offset = divmod(self._pos, CHUNK_SIZE)
        chunk = self._chunk(index)
        n = min(len(view), len(chunk) - offset)
        view[:n] = chunk[offset : offset + n]
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
            self._cache.clear()
        super().close()


class _SealOnClose(io.BytesIO):
    """The write buffer of one file; closing it seals it to disk.

    The hook sits on the buffer itself, not on the StructFile's ``onclose``:
    whoosh's posting pool takes ``raw_file()`` and closes *that*.
    """

    def __init__(self, seal: Any) -> None:
        super().__init__()
        self._seal = seal

    def close(self) -> None:
        if not self.closed:
            with self.getbuffer() as view:
                self._seal(view)
        super().close()


class EncryptedFileStorage(FileStorage):  # type: ignore[misc]  # whoosh is untyped
    """A whoosh FileStorage whose files are sealed with per-file keys (see module doc)."""

    supports_mmap = False  # mmap would expose ciphertext; whoosh falls back to file reads

    def __init__(self, path: str | Path, keys: KeySource, *, durable: bool = True) -> None:
        super().__init__(str(path), supports_mmap=False)
        self._keys = keys
        self._durable = durable

    # -- writing ------------------------------------------------------------

    def create_file(self, name: str, excl: bool = False, mode: str = "wb", **kwargs: Any) -> Any:
        if self.readonly:
            raise IndexUnavailable("storage is read-only")
        return StructFile(_SealOnClose(lambda view: self._seal(name, view)), name=name, **kwargs)

    def _seal(self, name: str, plaintext: memoryview) -> None:
        file_id = "ix-" + secrets.token_urlsafe(18)
        dek = new_data_key()
        wrapped = self._keys.wrap(dek, file_id)
        fid = file_id.encode("ascii")
        prefix = (
            _MAGIC + bytes([_VERSION]) + struct.pack(">H", len(fid)) + fid
            + struct.pack(">H", len(wrapped)) + wrapped
        )
        enc = Encryptor(dek, file_id)
        out: list[bytes | bytearray] = [prefix]
        enc.feed(plaintext, out.append)
        enc.finish_into(out.append)
        path = Path(self._fpath(name))
        if self._durable:
            durable_write_bytes(path, out, mode=0o600)
        else:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as f:
                for piece in out:
                    f.write(piece)

    # -- reading ------------------------------------------------------------

    def _header(self, fd: int) -> tuple[int, str, bytes]:
        """(prefix length, file id, DEK) of an open sealed file."""
        head = os.pread(fd, 4 + 1 + 2, 0)
        if len(head) < 7 or head[:4] != _MAGIC or head[4] != _VERSION:
            raise IndexUnavailable("not a sealed index file (or unknown version)")
        (idlen,) = struct.unpack(">H", head[5:7])
        rest = os.pread(fd, idlen + 2, 7)
        if len(rest) != idlen + 2:
            raise IndexUnavailable("sealed index file: truncated header")
        file_id = rest[:idlen].decode("ascii", "replace")
        (wlen,) = struct.unpack(">H", rest[idlen:])
        wrapped = os.pread(fd, wlen, 9 + idlen)
        if len(wrapped) != wlen:
            raise IndexUnavailable("sealed index file: truncated header")
        try:
            dek = self._keys.unwrap(wrapped, file_id)
        except StorageError as exc:
            raise IndexUnavailable(f"index file key does not unwrap: {exc}") from None
        return 9 + idlen + wlen, file_id, dek

    def open_file(self, name: str, **kwargs: Any) -> Any:
        fd = os.open(self._fpath(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            base, file_id, dek = self._header(fd)
            if size - base <= _SMALL:
                dec = Decryptor(dek, file_id)
                try:
                    plain = dec.update(os.pread(fd, size - base, base)) + dec.finish()
                except StorageError as exc:
                    raise IndexUnavailable(
                        f"index file failed authentication: {exc}"
                    ) from None
                os.close(fd)
                return BufferFile(memoryview(plain), name=name)
            raw = _ChunkFile(fd, base, size, dek, file_id)
        except BaseException:
            try:
                os.close(fd)
            except OSError:
                pass  # already closed on the small-file path
            raise
        return StructFile(io.BufferedReader(raw, _READ_BUFFER), name=name, **kwargs)

    def file_length(self, name: str) -> int:
        fd = os.open(self._fpath(name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            base, _file_id, _dek = self._header(fd)
            try:
                return plaintext_size(os.fstat(fd).st_size - base)
            except StorageError as exc:
                raise IndexUnavailable(f"index file has an impossible size: {exc}") from None
        finally:
            os.close(fd)

    # -- names ----------------------------------------------------------------

    def list(self) -> list[str]:
        # DurableFile temps (".tmp-...") are half-written: never index files.
        return [n for n in super().list() if not n.startswith(".tmp-")]

    def rename_file(self, oldname: str, newname: str, safe: bool = False) -> None:
        if safe and os.path.exists(self._fpath(newname)):
            raise NameError(f"File {newname!r} exists")
        os.replace(self._fpath(oldname), self._fpath(newname))
        if self._durable:
            # The TOC becomes current by this rename: it must survive a crash.
            _fsync_dir(self.folder)

    def temp_storage(self, name: str | None = None) -> EncryptedFileStorage:
        name = name or f"{secrets.token_hex(8)}.tmp"
        tmp = EncryptedFileStorage(
            os.path.join(self.folder, name), EphemeralKeys(), durable=False
        )
        tmp.create()
        return tmp
