"""Durable filesystem primitives shared by the key file and the blob files.

The one way this package makes bytes durable (SECURITY.md, "Crash safety"):
temp file in the *same directory* as the target, write, fsync the file,
``os.replace`` (or a no-clobber ``os.link``), fsync the directory.

* Same directory: ``rename`` is only atomic within one filesystem, and the
  directory fsync must cover both the old and the new name.
* Any OSError fails the whole operation and removes the temp file.  An fsync
  error in particular is never retried: after a failed fsync the kernel may
  have dropped the dirty pages and a second fsync can report success for data
  that never reached the disk.
* ``os.fsync`` / ``os.write`` are looked up on the ``os`` module at call time
  (never ``from os import fsync``) so fault-injection tests can patch them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import secrets
import sys
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path

from storage.errors import DurableWriteError

__all__ = [
    "TEMP_PREFIX",
    "DurableFile",
    "durable_write_bytes",
    "ensure_dir",
    "fsync_dir",
    "remove_file",
]

TEMP_PREFIX = ".tmp-"
# A large file asks the kernel to start writing back every this many bytes (see
# DurableFile.write): the disk works while the rest still arrives, and commit's fsync only
# waits for the tail instead of the whole file.
WRITEBACK_BYTES = 8 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2  # <linux/fs.h>: start writeback of dirty pages, do not wait


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load_sync_file_range()


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing ``length`` bytes at ``offset`` to the disk, without waiting: a hint
    that spreads the disk's work over the write; durability still comes from fsync only.
    An error is raised (as OSError): the caller fails the write rather than hope that the
    fsync to come reports it too."""
    if _sync_file_range is None:
        return
    if _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE) != 0:
        code = ctypes.get_errno()
        if code in (0, 38, 95):  # ENOSYS, EOPNOTSUPP: a filesystem without it
            return
        raise OSError(code, os.strerror(code))


def fsync_dir(path: Path) -> None:
    """fsync a directory so entries created/renamed/removed in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: Path, *, mode: int = 0o700) -> None:
    """Create ``path`` (and missing parents) and make each new entry durable.

    The parent is fsynced even when the directory already existed: a concurrent
    creator may not have fsynced it yet, and a blob inside a directory whose own
    entry is lost after a crash is lost too.  Callers cache directories they
    have already made durable so this costs one fsync per directory per process.
    """
    try:
        if not path.parent.is_dir():
            ensure_dir(path.parent, mode=mode)
        try:
            os.mkdir(path, mode)
        except FileExistsError:
            if not path.is_dir():
                raise
        fsync_dir(path.parent)
    except OSError as exc:
        raise DurableWriteError(f"cannot create directory {path}: {exc}") from exc


def _discard(fd: int | None, temp_path: Path) -> None:
    """Close and remove a temp file, best effort (used on failure and by GC)."""
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass  # already failing: the unlink below is what matters
    try:
        os.unlink(temp_path)
    except OSError:
        pass  # leftover .tmp- files are removed by the store's temp sweeper


class DurableFile:
    """A file written under a ``.tmp-`` name next to ``target``, then moved into place.

    ``commit()`` makes it durable; ``abort()`` (or any failure, or garbage
    collection of an uncommitted instance) removes the temp file.  Writes go
    straight to the descriptor with ``os.write``: callers write ~64 KiB chunks,
    so a user-space buffer would only add a copy and a flush step that can fail
    separately.
    """

    def __init__(self, target: Path, *, mode: int = 0o600) -> None:
        self.target = target
        self.temp_path = target.parent / f"{TEMP_PREFIX}{secrets.token_urlsafe(12)}"
        self.bytes_written = 0
        self._writeback_from = 0
        try:
            # Mode given at creation: the file is never readable by others, not
            # even between open() and a later chmod().
            self._fd: int | None = os.open(
                self.temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode
            )
        except OSError as exc:
            raise DurableWriteError(f"cannot create temp file in {target.parent}: {exc}") from exc
        # If the owner forgets to commit/abort, don't leak the fd or the temp file.
        self._finalizer = weakref.finalize(self, _discard, self._fd, self.temp_path)

    @property
    def closed(self) -> bool:
        return self._fd is None

    def _fail(self, action: str, exc: OSError) -> DurableWriteError:
        fd, self._fd = self._fd, None
        self._finalizer.detach()
        _discard(fd, self.temp_path)
        return DurableWriteError(f"{action} {self.target.name} failed: {exc}")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data``; on any OSError the temp file is removed."""
        if self._fd is None:
            raise DurableWriteError("write to a closed file")
        view = memoryview(data)
        try:
            while view:
                # os.write may write less than asked (signals, nearly full disk).
                n = os.write(self._fd, view)
                view = view[n:]
                self.bytes_written += n
            if self.bytes_written - self._writeback_from >= WRITEBACK_BYTES:
                start_writeback(self._fd, self._writeback_from,
                                self.bytes_written - self._writeback_from)
                self._writeback_from = self.bytes_written
        except OSError as exc:
            raise self._fail("write", exc) from exc

    def commit(self, *, overwrite: bool = True) -> None:
        """fsync, move into place, fsync the directory.

        With ``overwrite=False`` an existing target is left untouched and
        FileExistsError is raised (after removing the temp file); the link is
        atomic, so two processes racing to create the same file cannot both win.
        """
        if self._fd is None:
            raise DurableWriteError("commit of a closed file")
        fd = self._fd
        try:
            os.fsync(fd)
        except OSError as exc:
            raise self._fail("fsync of", exc) from exc
        self._fd = None
        self._finalizer.detach()
        try:
            # close() can report deferred write errors (e.g. on NFS): still a failure.
            os.close(fd)
            if overwrite:
                os.replace(self.temp_path, self.target)
            else:
                os.link(self.temp_path, self.target)
                os.unlink(self.temp_path)
        except FileExistsError:
            _discard(None, self.temp_path)
            raise
        except OSError as exc:
            _discard(None, self.temp_path)
            raise DurableWriteError(f"moving {self.target.name} into place failed: {exc}") from exc
        try:
            fsync_dir(self.target.parent)
        except OSError as exc:
            # The rename happened but may not survive a crash: still a failed write.
            raise DurableWriteError(
                f"fsync of directory of {self.target.name} failed: {exc}"
            ) from exc

    def abort(self) -> None:
        """Remove the temp file. Idempotent; a no-op after commit."""
        fd, self._fd = self._fd, None
        if self._finalizer.detach() is not None:
            _discard(fd, self.temp_path)


def durable_write_bytes(
    target: Path, chunks: Iterable[bytes | bytearray], *, mode: int = 0o600, overwrite: bool = True
) -> None:
    """Durably write ``chunks`` to ``target`` (see DurableFile.commit for ``overwrite``)."""
    f = DurableFile(target, mode=mode)
    try:
        for chunk in chunks:
            f.write(chunk)
        f.commit(overwrite=overwrite)
    finally:
        f.abort()


def remove_file(path: Path) -> bool:
    """Unlink ``path`` durably; return False if it did not exist."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise DurableWriteError(f"cannot remove {path.name}: {exc}") from exc
    try:
        fsync_dir(path.parent)
    except OSError as exc:
        raise DurableWriteError(f"fsync after removing {path.name} failed: {exc}") from exc
    return True
