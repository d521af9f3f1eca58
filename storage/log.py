"""An append-only, encrypted record log (used for CRDT updates by ``sync``).

Layout::

    header   = b"PLNL" | version (1) | algorithm (1) | id length (1) | log_id (ASCII)
    record i = length (4, big-endian, of what follows) | nonce (12, random) | ciphertext | tag (16)
    plaintext of record i = flags (1) | batch start (8, big-endian) | payload

* Every log has its own random data key (DEK), wrapped with ``KeyRing.wrap`` under
  the log id exactly like a blob's; the caller stores the ``WrappedKey`` (as it
  stores a blob's).  The record key is ``HKDF-SHA256(DEK, info=b"plein-log-v1" |
  log_id)`` so a log key is never also a blob payload key.
* Associated data = header | record index (8 bytes): a record cannot be moved to
  another position or another log.
* Nonces are random, not counters: after a crash the torn tail is cut off and the
  *same index* is written again with different plaintext.  A counter nonce would
  then repeat under the same key (catastrophic for GCM); a random 96-bit nonce does
  not (logs are compacted long before the 2^32-records-per-key bound matters).
* ``append_many`` is one group commit: all records are written, then one fsync;
  it returns only after the fsync.  ``write_many`` + ``sync`` are its two halves, for
  a writer that commits the batches of many logs in one round (``sync.commit``).
  The last record of a batch carries the COMMIT flag and every record names the
  index its batch started at.

Recovery (``RecordLog.open``) reads records until the first one that is
incomplete or fails authentication.  What follows decides what it was:

* nothing readable, or only records of the *same* batch (their "batch start" is at
  or before the bad record): the last write was torn.  It was never acknowledged
  (its fsync had not returned), so the file is cut back to the end of the last
  committed batch, durably.  A trailing batch without its COMMIT record is cut too.
* an authenticated record of a *later* batch: the damaged batch had been fsynced
  and acknowledged, so this is corruption -> IntegrityError; nothing is truncated.

A bit flip inside the very last batch is indistinguishable from a torn write and
is cut like one; there is no redundancy to tell them apart.
"""

from __future__ import annotations

import os
import secrets
import struct
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage import _fs
from storage.errors import DurableWriteError, IntegrityError, StorageError
from storage.ids import new_blob_id, validate_blob_id
from storage.keys import Keys, WrappedKey, new_data_key

__all__ = ["MAX_RECORD_SIZE", "RecordLog"]

MAGIC = b"PLNL"
VERSION = 1
ALG_AES256GCM_HKDF_SHA256 = 1
NONCE_SIZE = 12
TAG_SIZE = 16
_LEN = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_PLAIN_PREFIX = 1 + _U64.size  # flags | batch start
_FLAG_COMMIT = 0x01
_MIN_BODY = NONCE_SIZE + _PLAIN_PREFIX + TAG_SIZE
#: Largest payload of one record; a length field claiming more is treated as damage.
MAX_RECORD_SIZE = 64 << 20
_MAX_BODY = NONCE_SIZE + _PLAIN_PREFIX + MAX_RECORD_SIZE + TAG_SIZE
_KDF_INFO = b"plein-log-v1"


def _build_header(log_id: str) -> bytes:
    raw = log_id.encode("ascii")
    return MAGIC + bytes([VERSION, ALG_AES256GCM_HKDF_SHA256, len(raw)]) + raw


def _parse_header(data: bytes, expected_id: str) -> bytes:
    if len(data) < 7:
        raise IntegrityError("log header: truncated")
    if data[:4] != MAGIC:
        raise IntegrityError("log header: bad magic (not a Plein record log)")
    if data[4] != VERSION:
        raise IntegrityError(f"log header: unknown format version {data[4]}")
    if data[5] != ALG_AES256GCM_HKDF_SHA256:
        raise IntegrityError(f"log header: unknown algorithm {data[5]}")
    end = 7 + data[6]
    if len(data) < end:
        raise IntegrityError("log header: truncated")
    if data[7:end] != expected_id.encode("ascii"):
        # A log file swapped in from elsewhere: its records would not authenticate
        # anyway, but say so clearly.
        raise IntegrityError("log header: log id does not match")
    return bytes(data[:end])


def _record_aead(dek: bytes, log_id: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KDF_INFO + log_id.encode())
    return AESGCM(hkdf.derive(dek))


class _Parsed:
    __slots__ = ("batch_start", "commit", "end", "payload")

    def __init__(self, payload: bytes, commit: bool, batch_start: int, end: int) -> None:
        self.payload = payload
        self.commit = commit
        self.batch_start = batch_start
        self.end = end


class RecordLog:
    """One open log file: recovered on open, appended to in group commits.

    Not for concurrent writers in several processes (the document store gives each
    document one owner); appends from several threads are serialized by a lock.
    """

    def __init__(
        self, path: Path, fd: int, aead: AESGCM, header: bytes, count: int, size: int
    ) -> None:
        self._path = path
        self._fd: int | None = fd
        self._aead = aead
        self._header = header
        self._count = count
        self._size = size
        self._header_size = len(header)
        self._broken = False
        self._lock = threading.Lock()
        # Written by ``write_many``, not yet fsynced (so neither counted nor acknowledged).
        self._staged_count = 0
        self._staged_bytes = 0

    # -- construction ---------------------------------------------------------------

    @classmethod
    def create(
        cls, path: Path, ring: Keys, *, log_id: str | None = None
    ) -> tuple[RecordLog, WrappedKey]:
        """Durably create an empty log at ``path`` (never overwrites).

        Returns the open log and the wrapped DEK, which the caller must store
        (like a blob's) *after* this returned.
        """
        log_id = validate_blob_id(log_id if log_id is not None else new_blob_id())
        dek = new_data_key()
        wrapped = ring.wrap(dek, log_id)
        header = _build_header(log_id)
        _fs.durable_write_bytes(Path(path), [header], overwrite=False)
        fd = _open_append(Path(path))
        return cls(Path(path), fd, _record_aead(dek, log_id), header, 0, len(header)), wrapped

    @classmethod
    def open(
        cls, path: Path, ring: Keys, wrapped_key: WrappedKey, *, log_id: str
    ) -> tuple[RecordLog, list[bytes]]:
        """Open an existing log for appending; return it and its committed records.

        A torn tail is cut off durably (see the module docstring); corruption before
        the tail raises IntegrityError and leaves the file untouched.
        """
        path = Path(path)
        validate_blob_id(log_id)
        aead = _record_aead(ring.unwrap(wrapped_key, log_id), log_id)
        fd = _open_append(path)
        try:
            data = _read_all(fd)
            header = _parse_header(data, log_id)
            log = cls(path, fd, aead, header, 0, len(data))
            records, keep = log._recover(data)
            if keep < len(data):
                try:
                    os.ftruncate(fd, keep)
                    os.fsync(fd)
                except OSError as exc:
                    raise DurableWriteError(f"truncating torn tail of {path.name}: {exc}") from exc
            log._count, log._size = len(records), keep
            return log, records
        except BaseException:
            os.close(fd)
            raise

    # -- properties -------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def record_count(self) -> int:
        """Committed records (recovered plus appended)."""
        return self._count

    @property
    def size(self) -> int:
        """Bytes of the file, header included."""
        return self._size

    # -- reading ----------------------------------------------------------------------

    def _parse(self, data: bytes, pos: int, index: int) -> _Parsed | None:
        """The record at ``pos`` if it is complete and authentic as record ``index``."""
        if pos + _LEN.size > len(data):
            return None
        (body,) = _LEN.unpack_from(data, pos)
        end = pos + _LEN.size + body
        if body < _MIN_BODY or body > _MAX_BODY or end > len(data):
            return None
        nonce = data[pos + _LEN.size : pos + _LEN.size + NONCE_SIZE]
        try:
            plain = self._aead.decrypt(
                nonce, data[pos + _LEN.size + NONCE_SIZE : end], self._header + _U64.pack(index)
            )
        except InvalidTag:
            return None
        flags = plain[0]
        (batch_start,) = _U64.unpack_from(plain, 1)
        if flags & ~_FLAG_COMMIT or batch_start > index:
            return None  # authentic but not something we write: refuse rather than guess
        return _Parsed(plain[_PLAIN_PREFIX:], bool(flags & _FLAG_COMMIT), batch_start, end)

    def _recover(self, data: bytes) -> tuple[list[bytes], int]:
        """(committed records, byte length to keep)."""
        pos, index = self._header_size, 0
        records: list[bytes] = []
        committed_end, committed_count = pos, 0
        while pos < len(data):
            rec = self._parse(data, pos, index)
            if rec is None:
                self._check_torn(data, pos, index)
                break
            records.append(rec.payload)
            pos, index = rec.end, index + 1
            if rec.commit:
                committed_end, committed_count = pos, len(records)
        return records[:committed_count], committed_end

    def _check_torn(self, data: bytes, bad_pos: int, bad_index: int) -> None:
        """Raise IntegrityError if an acknowledged batch follows the damaged record."""
        nxt = bad_index + 1
        found: _Parsed | None = None
        if bad_pos + _LEN.size <= len(data):
            (body,) = _LEN.unpack_from(data, bad_pos)
            found = self._parse(data, bad_pos + _LEN.size + body, nxt)
        # The length field itself may be what is damaged: look for the next record
        # at every later offset (recovery only; a torn tail is short).
        pos = bad_pos + 1
        while found is None and pos + _LEN.size + _MIN_BODY <= len(data):
            found = self._parse(data, pos, nxt)
            pos += 1
        while found is not None:
            if found.batch_start > bad_index:
                raise IntegrityError(
                    f"log {self._path.name}: record {bad_index} is damaged and "
                    "acknowledged records follow it"
                )
            nxt += 1
            found = self._parse(data, found.end, nxt)

    # -- writing ----------------------------------------------------------------------

    def _seal(self, index: int, batch_start: int, commit: bool, payload: bytes) -> bytes:
        plain = bytes([_FLAG_COMMIT if commit else 0]) + _U64.pack(batch_start) + payload
        nonce = secrets.token_bytes(NONCE_SIZE)
        sealed = self._aead.encrypt(nonce, plain, self._header + _U64.pack(index))
        return _LEN.pack(NONCE_SIZE + len(sealed)) + nonce + sealed

    def append_many(self, records: Sequence[bytes]) -> None:
        """Append ``records`` and fsync once; return only once they are durable.

        Any OSError fails the whole batch (DurableWriteError), the file is cut back
        to its last committed length (best effort) and the log refuses further
        appends: after a failed fsync the state of the file is unknown, and only
        a reopen (recovery) may decide what it holds.
        """
        with self._lock:
            self._write_locked(records)
            self._sync_locked()

    def write_many(self, records: Sequence[bytes]) -> None:
        """First half of ``append_many``: write ``records`` as one batch, no fsync yet.

        Not durable (nor counted) until ``sync`` returns: a group committer writes the
        batches of many logs, then syncs them all, so their fsyncs share one journal
        commit.  A second ``write_many`` before ``sync`` extends the same batch."""
        with self._lock:
            self._write_locked(records)

    def sync(self, *, flushed: bool = False) -> None:
        """Second half of ``append_many``: fsync what ``write_many`` wrote (no-op if none).

        ``flushed=True``: the caller has just made the whole filesystem durable (a
        successful ``syncfs`` after the write, which since Linux 5.8 reports writeback
        errors), so the batch is counted without another fsync."""
        with self._lock:
            self._sync_locked(flushed=flushed)

    def fileno(self) -> int:
        """The log's file descriptor (for ``os.fstat`` / ``syncfs`` by a group committer)."""
        if self._fd is None:
            raise StorageError("log is closed")
        return self._fd

    def _write_locked(self, records: Sequence[bytes]) -> None:
        for rec in records:
            if len(rec) > MAX_RECORD_SIZE:
                raise StorageError(f"record of {len(rec)} bytes exceeds {MAX_RECORD_SIZE}")
        if not records:
            return
        if self._fd is None:
            raise StorageError("log is closed")
        if self._broken:
            raise DurableWriteError(f"log {self._path.name} failed earlier; reopen it")
        if self._staged_count:
            # One batch per sync: records written so far lose nothing by being joined,
            # but only the last record of a batch may carry the COMMIT flag.
            raise StorageError("write_many twice before sync")
        start, last = self._count, len(records) - 1
        buf = b"".join(
            self._seal(start + i, start, i == last, bytes(rec)) for i, rec in enumerate(records)
        )
        try:
            view = memoryview(buf)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._fail(exc)
        self._staged_count, self._staged_bytes = len(records), len(buf)

    def _sync_locked(self, *, flushed: bool = False) -> None:
        if not self._staged_count:
            return
        if self._fd is None:
            raise StorageError("log is closed")
        try:
            if not flushed:
                os.fsync(self._fd)
        except OSError as exc:
            self._fail(exc)
        self._count += self._staged_count
        self._size += self._staged_bytes
        self._staged_count = self._staged_bytes = 0

    def _fail(self, exc: OSError) -> NoReturn:
        self._broken = True
        self._staged_count = self._staged_bytes = 0
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass  # already failing; recovery will cut the uncommitted tail
        raise DurableWriteError(f"append to {self._path.name} failed: {exc}") from exc

    def append(self, record: bytes) -> None:
        self.append_many([record])

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass  # every acknowledged append was fsynced already

    def __repr__(self) -> str:
        return f"RecordLog({self._path.name!r}, records={self._count})"


def _open_append(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
    except FileNotFoundError:
        raise StorageError(f"log {path.name} not found") from None
    except OSError as exc:
        raise StorageError(f"cannot open log {path.name}: {exc.strerror}") from None


def _read_all(fd: int) -> bytes:
    try:
        size = os.fstat(fd).st_size
        parts: list[bytes] = []
        offset = 0
        while offset < size:
            chunk = os.pread(fd, min(size - offset, 1 << 20), offset)
            if not chunk:
                break
            parts.append(chunk)
            offset += len(chunk)
        return b"".join(parts)
    except OSError as exc:
        raise StorageError(f"reading log failed: {exc.strerror}") from None
