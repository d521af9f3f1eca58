"""Blob stores: immutable encrypted blobs addressed by store-generated ids.

A blob is written once (fresh DEK, fresh salt) and never rewritten: a new
version of a file is a new blob, so no (key, nonce) pair can ever repeat.

``LocalBlobStore`` keeps ``root/a/b/<blob_id>`` (fan-out by id prefix keeps
directories small).  A writer streams ciphertext into ``.tmp-*`` in the final
directory and ``commit()`` makes it durable (see ``storage._fs``).  The caller
records the returned ``BlobInfo`` (with its wrapped key) in the database
*after* ``commit()`` returned; blobs whose row never committed are orphans,
removed later by ``storage.maintenance.collect_orphans``.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from storage import _fs
from storage.errors import BlobNotFound, DurableWriteError, StorageError
from storage.ids import BLOB_ID_RE, new_blob_id, validate_blob_id
from storage.keys import Keys, WrappedKey, new_data_key
from storage.stream import Encryptor, SeekableDecryptor

__all__ = [
    "DEFAULT_READ_BYTES_LIMIT",
    "BlobInfo",
    "BlobReader",
    "BlobStore",
    "BlobWriter",
    "LocalBlobReader",
    "LocalBlobStore",
    "LocalBlobWriter",
]

DEFAULT_READ_BYTES_LIMIT = 64 << 20
_DURABLE_DIR_CACHE_SIZE = 1 << 16
# Writes at least this large are hashed in another thread while they are encrypted and
# written (hashlib and AES-GCM both release the GIL); smaller ones are not worth the hop.
PARALLEL_HASH_BYTES = 256 * 1024
_hasher: ThreadPoolExecutor | None = None
_hasher_lock = threading.Lock()


def _hash_pool() -> ThreadPoolExecutor:
    global _hasher
    with _hasher_lock:
        if _hasher is None:
            _hasher = ThreadPoolExecutor(max_workers=max(4, os.cpu_count() or 1),
                                         thread_name_prefix="blob-sha256")
        return _hasher


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What the database stores about a committed blob."""

    blob_id: str
    wrapped_key: WrappedKey
    size: int  # plaintext bytes
    sha256: str  # hex digest of the plaintext
    stored_size: int  # bytes on disk (header + chunks + tags)


class BlobWriter(Protocol):
    @property
    def blob_id(self) -> str: ...
    def write(self, data: bytes | bytearray | memoryview) -> None: ...
    def commit(self) -> BlobInfo: ...
    def abort(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BlobReader(Protocol):
    @property
    def size(self) -> int: ...
    def iter_chunks(self) -> Iterator[bytes]: ...
    def iter_range(self, start: int, end: int) -> Iterator[bytes]: ...
    def iter_batches(self, start: int, end: int, batch_bytes: int) -> Iterator[memoryview]: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BlobStore(Protocol):
    def open_writer(self) -> BlobWriter: ...
    def open_reader(self, blob_id: str, wrapped_key: WrappedKey) -> BlobReader: ...
    def read_bytes(
        self, blob_id: str, wrapped_key: WrappedKey, *, max_size: int = ...
    ) -> bytes: ...
    def exists(self, blob_id: str) -> bool: ...
    def delete(self, blob_id: str) -> bool: ...
    def iter_blob_ids(self) -> Iterator[str]: ...
    def blob_mtime(self, blob_id: str) -> float: ...
    def clean_temp_files(self, older_than_seconds: float, *, now: float | None = None) -> int: ...


class LocalBlobWriter:
    """Streams one new blob to a temp file; ``commit()`` makes it durable and visible.

    Memory is constant: at most one plaintext chunk is buffered by the encryptor, plus the
    ciphertext of one ``write()``.  Each ``write()`` is on disk (not yet fsynced) when it
    returns, so a failed write is reported by the call that made it.
    Used as a context manager it aborts unless ``commit()`` returned (an
    exception, or simply leaving the block, discards the temp file).
    """

    def __init__(self, store: LocalBlobStore, blob_id: str, path: Path, ring: Keys) -> None:
        self._blob_id = blob_id
        self._path = path
        dek = new_data_key()
        self._wrapped = ring.wrap(dek, blob_id)
        self._enc = Encryptor(dek, blob_id)
        self._sha = hashlib.sha256()
        self._size = 0
        self._state = "open"
        self._file = _fs.DurableFile(path)

    @property
    def blob_id(self) -> str:
        return self._blob_id

    def _require_open(self) -> None:
        if self._state != "open":
            raise StorageError(f"blob writer is {self._state}")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._require_open()
        try:
            view = memoryview(data)
            if view.nbytes >= PARALLEL_HASH_BYTES:
                # The caller keeps ``data`` unchanged until we return, and we return only
                # after the hash has consumed it.
                hashed = _hash_pool().submit(self._sha.update, view)
                try:
                    self._enc.feed(view, self._file.write)
                finally:
                    hashed.result()
            else:
                self._sha.update(view)
                self._enc.feed(view, self._file.write)
            self._size += view.nbytes
        except BaseException:
            self.abort()
            raise

    def commit(self) -> BlobInfo:
        self._require_open()
        try:
            self._enc.finish_into(self._file.write)
            self._file.commit()
        except BaseException:
            self.abort()
            # If only the final directory fsync failed, the rename happened but is
            # not known to be durable: the write failed, so take the file back out
            # (nobody can reference this fresh id yet).
            try:
                os.unlink(self._path)
            except OSError:
                pass
            raise
        self._state = "committed"
        return BlobInfo(
            blob_id=self._blob_id,
            wrapped_key=self._wrapped,
            size=self._size,
            sha256=self._sha.hexdigest(),
            stored_size=self._file.bytes_written,
        )

    def abort(self) -> None:
        """Discard the temp file. Idempotent; no effect after a successful commit."""
        if self._state == "open":
            self._state = "aborted"
        self._file.abort()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state != "committed":
            self.abort()


def _close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass  # nothing useful to do when closing a read-only descriptor fails


class LocalBlobReader:
    """Decrypting reader over one blob file; every chunk is verified as it is read."""

    def __init__(self, path: Path, dek: bytes, blob_id: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise BlobNotFound(f"blob {blob_id} not found") from None
        except OSError as exc:
            raise StorageError(f"cannot open blob {blob_id}: {exc.strerror}") from None
        self._fd: int | None = fd
        self._finalizer = weakref.finalize(self, _close_fd, fd)
        try:
            self.stored_size = os.fstat(fd).st_size
            self._dec = SeekableDecryptor(self._read_at, self.stored_size, dek, blob_id)
        except BaseException:
            self.close()
            raise
        self._blob_id = blob_id

    def _read_at(self, offset: int, length: int) -> bytes:
        if self._fd is None:
            raise StorageError("blob reader is closed")
        try:
            # pread: no shared file position, so ranges can interleave safely.
            return os.pread(self._fd, length, offset)
        except OSError as exc:
            raise StorageError(f"reading blob failed: {exc.strerror}") from None

    @property
    def size(self) -> int:
        """Plaintext size (authenticated once any chunk including the last was read)."""
        return self._dec.size

    def iter_chunks(self) -> Iterator[bytes]:
        return self._dec.iter_chunks()

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        return self._dec.iter_range(start, end)

    def iter_batches(self, start: int, end: int, batch_bytes: int) -> Iterator[memoryview]:
        return self._dec.iter_batches(start, end, batch_bytes)

    def close(self) -> None:
        self._fd = None
        self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LocalBlobStore:
    """Encrypted blobs under ``root`` on a local (POSIX) filesystem."""

    def __init__(self, root: Path, ring: Keys) -> None:
        self.root = Path(root)
        self.ring = ring
        _fs.ensure_dir(self.root)
        # Fan-out directories already made durable by this process (bounded: with
        # millions of blobs this must not grow without limit; a miss costs one fsync).
        self._durable_dirs: set[Path] = set()
        self._dirs_lock = threading.Lock()

    def path_of(self, blob_id: str) -> Path:
        """Where a blob lives: ``root/a/b/<id>``. One character per level gives 4,096 leaf
        folders: a few hundred blobs each at a million blobs, not one folder per blob."""
        validate_blob_id(blob_id)
        return self.root / blob_id[0] / blob_id[1] / blob_id

    def _ensure_fanout(self, directory: Path) -> None:
        with self._dirs_lock:
            if directory in self._durable_dirs:
                return
        for d in (directory.parent, directory):
            _fs.ensure_dir(d)
        with self._dirs_lock:
            if len(self._durable_dirs) >= _DURABLE_DIR_CACHE_SIZE:
                self._durable_dirs.clear()
            self._durable_dirs.add(directory)

    # -- writing -----------------------------------------------------------------

    def open_writer(self) -> LocalBlobWriter:
        blob_id = new_blob_id()
        path = self.path_of(blob_id)
        self._ensure_fanout(path.parent)
        return LocalBlobWriter(self, blob_id, path, self.ring)

    # -- reading -------------------------------------------------------------------

    def open_reader(self, blob_id: str, wrapped_key: WrappedKey) -> LocalBlobReader:
        path = self.path_of(blob_id)
        # Unwrap first: a wrong key fails before any blob byte is touched.
        dek = self.ring.unwrap(wrapped_key, blob_id)
        return LocalBlobReader(path, dek, blob_id)

    def read_bytes(
        self, blob_id: str, wrapped_key: WrappedKey, *, max_size: int = DEFAULT_READ_BYTES_LIMIT
    ) -> bytes:
        """Whole plaintext of a small blob (refuses blobs over ``max_size``)."""
        with self.open_reader(blob_id, wrapped_key) as reader:
            if reader.size > max_size:
                raise StorageError(f"blob {blob_id} is {reader.size} bytes, over {max_size}")
            return b"".join(reader.iter_chunks())

    def exists(self, blob_id: str) -> bool:
        return self.path_of(blob_id).is_file()

    def blob_mtime(self, blob_id: str) -> float:
        try:
            return os.stat(self.path_of(blob_id)).st_mtime
        except FileNotFoundError:
            raise BlobNotFound(f"blob {blob_id} not found") from None

    # -- maintenance -----------------------------------------------------------------

    def delete(self, blob_id: str) -> bool:
        """Durably remove a blob; returns False if it was already gone."""
        return _fs.remove_file(self.path_of(blob_id))

    def _leaf_dirs(self) -> Iterator[Path]:
        for level1 in _scandir(self.root):
            if len(level1.name) == 1 and level1.is_dir(follow_symlinks=False):
                for level2 in _scandir(Path(level1.path)):
                    if len(level2.name) == 1 and level2.is_dir(follow_symlinks=False):
                        yield Path(level2.path)

    def iter_blob_ids(self) -> Iterator[str]:
        """Ids of all committed blobs on disk (temp files excluded), in no set order."""
        for leaf in self._leaf_dirs():
            prefix = leaf.parent.name + leaf.name
            for entry in _scandir(leaf):
                name = entry.name
                if (
                    name.startswith(prefix)
                    and BLOB_ID_RE.fullmatch(name)
                    and entry.is_file(follow_symlinks=False)
                ):
                    yield name

    def clean_temp_files(self, older_than_seconds: float, *, now: float | None = None) -> int:
        """Remove ``.tmp-*`` files not modified for ``older_than_seconds``.

        Leftovers of crashed or killed writers.  A live writer touches its temp
        file on every write, so pick a threshold well above any pause in an upload.
        """
        cutoff = (time.time() if now is None else now) - older_than_seconds
        removed = 0
        for leaf in self._leaf_dirs():
            removed_here = 0
            for entry in _scandir(leaf):
                if not entry.name.startswith(_fs.TEMP_PREFIX):
                    continue
                try:
                    if entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                        continue
                    os.unlink(entry.path)
                except FileNotFoundError:
                    continue  # finished or swept by someone else meanwhile
                except OSError as exc:
                    raise DurableWriteError(f"cannot remove temp file {entry.name}: {exc}") from exc
                removed_here += 1
            if removed_here:
                try:
                    _fs.fsync_dir(leaf)
                except OSError as exc:
                    raise DurableWriteError(f"fsync of {leaf} failed: {exc}") from exc
                removed += removed_here
        return removed


def _scandir(path: Path) -> list[os.DirEntry[str]]:
    """Directory entries, or none if the directory vanished meanwhile."""
    try:
        with os.scandir(path) as it:
            return list(it)
    except FileNotFoundError:
        return []
