"""Where a document's CRDT state lives: an encrypted snapshot plus an encrypted update log.

``FileDocumentStore(root, ring)`` keeps, per document::

    root/docs/<document_id>/manifest.json     which snapshot and which log are current
    root/docs/<document_id>/<log_id>.plog     storage.RecordLog: one record per update
    root/docs/<document_id>/blobs/...         storage.LocalBlobStore: the snapshot blob

The manifest is small JSON (ids and wrapped keys, never content), replaced
durably (temp file, fsync, rename, fsync dir): switching it is the single atomic
step of a compaction.  Loading = snapshot + every committed log record.

Compaction (``DocumentHandle.compact(state)``), each step durable before the next:

1. write the full state as a new snapshot blob
2. create a new, empty log
3. switch the manifest to (new snapshot, new log)       <- the commit point
4. delete the old log and the old snapshot

A crash before 3 leaves the old manifest, whose snapshot and log still hold
everything (the new files are orphans); a crash after 3 leaves the new snapshot,
which holds everything the old log did.  Orphans -- unreferenced logs and blobs,
``.tmp-*`` files -- are removed the next time the document is opened.  One process
owns a document at a time (the room manager); the sweep relies on that.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from storage import (
    BlobInfo,
    Keys,
    LocalBlobStore,
    RecordLog,
    StorageError,
    WrappedKey,
    durable_write_bytes,
    ensure_dir,
    fsync_dir,
    new_blob_id,
    remove_file,
)
from sync.errors import DocumentCorrupt, InvalidDocumentId

__all__ = [
    "DOCUMENT_ID_RE",
    "DocumentHandle",
    "DocumentStore",
    "FileDocumentStore",
    "stored_bytes",
    "validate_document_id",
]

log = logging.getLogger(__name__)

DOCUMENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
_MANIFEST = "manifest.json"
_FORMAT = "plein-sync-document"
_VERSION = 1
_LOG_SUFFIX = ".plog"
_TEMP_PREFIX = ".tmp-"
DEFAULT_MAX_SNAPSHOT_BYTES = 64 << 20


def validate_document_id(document_id: object) -> str:
    """Return ``document_id`` if it is safe as a directory name, else InvalidDocumentId."""
    if not isinstance(document_id, str) or DOCUMENT_ID_RE.fullmatch(document_id) is None:
        raise InvalidDocumentId(f"invalid document id {repr(document_id)[:80]}")
    return document_id


def _checkpoint(step: str) -> None:
    """A named point between compaction steps; tests patch this to inject crashes."""


class DocumentHandle(Protocol):
    """One open document.  Blocking methods: the room calls them in a worker thread,
    one at a time."""

    @property
    def log_records(self) -> int: ...
    @property
    def log_bytes(self) -> int: ...
    def load(self) -> list[bytes]:
        """Yjs updates to apply in order: the snapshot's full state (if any), then the
        log's records.  Called once, right after ``open``."""
        ...

    def append_many(self, updates: Sequence[bytes]) -> None:
        """Durably append (one fsync); raise (never return) if not durable."""
        ...

    def write_many(self, updates: Sequence[bytes]) -> None:
        """``append_many`` without the fsync: written, not yet durable (``sync`` follows)."""
        ...

    def sync(self, *, flushed: bool = False) -> None:
        """Make what ``write_many`` wrote durable; raise (never return) if not.
        ``flushed``: its filesystem was just synced whole (``syncfs``) without error."""
        ...

    def fileno(self) -> int:
        """The file descriptor of the log ``write_many`` appends to."""
        ...

    def compact(self, state: bytes) -> None:
        """Replace snapshot + log by ``state``, which must contain every appended update."""
        ...

    def close(self) -> None: ...


class DocumentStore(Protocol):
    def open(self, document_id: str) -> DocumentHandle:
        """Open (creating if new) and recover a document; blocking."""
        ...

    def exists(self, document_id: str) -> bool: ...
    def delete(self, document_id: str) -> bool:
        """Remove a closed document entirely; False if it did not exist."""
        ...


@dataclass(frozen=True, slots=True)
class _Ref:
    id: str
    wrapped_key: WrappedKey

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "wrapped_key": base64.b64encode(self.wrapped_key.to_bytes()).decode(),
        }

    @classmethod
    def from_json(cls, raw: Any) -> _Ref:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise DocumentCorrupt("manifest: malformed reference")
        try:
            wrapped = WrappedKey.from_bytes(base64.b64decode(raw["wrapped_key"], validate=True))
        except (KeyError, TypeError, binascii.Error, ValueError, StorageError):
            raise DocumentCorrupt("manifest: malformed wrapped key") from None
        return cls(raw["id"], wrapped)


@dataclass(frozen=True, slots=True)
class _Manifest:
    document_id: str
    snapshot: _Ref | None
    log: _Ref

    def to_bytes(self) -> bytes:
        doc = {
            "format": _FORMAT,
            "version": _VERSION,
            "document_id": self.document_id,
            "snapshot": None if self.snapshot is None else self.snapshot.to_json(),
            "log": self.log.to_json(),
        }
        return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, document_id: str) -> _Manifest:
        try:
            doc = json.loads(data)
        except ValueError:
            raise DocumentCorrupt(f"document {document_id}: manifest is not JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise DocumentCorrupt(f"document {document_id}: not a sync manifest")
        if doc.get("version") != _VERSION:
            raise DocumentCorrupt(f"document {document_id}: manifest version {doc.get('version')}")
        if doc.get("document_id") != document_id:
            raise DocumentCorrupt(f"document {document_id}: manifest of another document")
        snap = doc.get("snapshot")
        return cls(
            document_id,
            None if snap is None else _Ref.from_json(snap),
            _Ref.from_json(doc.get("log")),
        )


def stored_bytes(root: Path, document_id: str) -> int:
    """Bytes a document takes on disk in the store at ``root`` (manifest, update log,
    snapshot): what the app counts toward a group's quota. 0 for a document never stored."""
    total = 0
    stack = [Path(root) / "docs" / validate_document_id(document_id)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except FileNotFoundError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                pass  # compaction removed it meanwhile
    return total


class FileDocumentStore:
    """Documents under ``root`` on a local filesystem, encrypted with ``ring``."""

    def __init__(
        self, root: Path, ring: Keys, *, max_snapshot_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES
    ) -> None:
        self.root = Path(root)
        self.ring = ring
        self.max_snapshot_bytes = max_snapshot_bytes
        ensure_dir(self.root / "docs")

    def _dir(self, document_id: str) -> Path:
        return self.root / "docs" / validate_document_id(document_id)

    def exists(self, document_id: str) -> bool:
        return (self._dir(document_id) / _MANIFEST).is_file()

    def open(self, document_id: str) -> FileDocumentHandle:
        return FileDocumentHandle(self, document_id, self._dir(document_id))

    def delete(self, document_id: str) -> bool:
        directory = self._dir(document_id)
        if not directory.exists():
            return False
        # The manifest goes first (durably): a crash midway leaves a directory that
        # opens as a new, empty document, never a half-deleted one that loads.
        remove_file(directory / _MANIFEST)
        shutil.rmtree(directory)
        try:
            fsync_dir(directory.parent)
        except OSError as exc:
            raise StorageError(f"fsync after deleting document {document_id}: {exc}") from exc
        return True


class FileDocumentHandle:
    def __init__(self, store: FileDocumentStore, document_id: str, directory: Path) -> None:
        self._store = store
        self.document_id = document_id
        self._dir = directory
        ensure_dir(directory)
        self._blobs = LocalBlobStore(directory / "blobs", store.ring)
        manifest_path = directory / _MANIFEST
        self._snapshot_state: bytes | None = None
        if manifest_path.is_file():
            self._manifest = _Manifest.from_bytes(manifest_path.read_bytes(), document_id)
            self._sweep()
            self._log, self._records = self._open_log(self._manifest.log)
            if self._manifest.snapshot is not None:
                self._snapshot_state = self._read_snapshot(self._manifest.snapshot)
        else:
            self._sweep(everything=True)  # leftovers of a creation that never committed
            self._log, wrapped = RecordLog.create(
                self._log_path(log_id := new_blob_id()), store.ring, log_id=log_id
            )
            self._records = []
            self._manifest = _Manifest(document_id, None, _Ref(log_id, wrapped))
            try:
                self._write_manifest(self._manifest)
            except BaseException:
                self._log.close()
                raise

    # -- helpers ---------------------------------------------------------------------

    def _log_path(self, log_id: str) -> Path:
        return self._dir / f"{log_id}{_LOG_SUFFIX}"

    def _open_log(self, ref: _Ref) -> tuple[RecordLog, list[bytes]]:
        path = self._log_path(ref.id)
        if not path.is_file():
            raise DocumentCorrupt(f"document {self.document_id}: its log is missing")
        try:
            return RecordLog.open(path, self._store.ring, ref.wrapped_key, log_id=ref.id)
        except StorageError as exc:
            raise DocumentCorrupt(f"document {self.document_id}: log unreadable: {exc}") from exc

    def _read_snapshot(self, ref: _Ref) -> bytes:
        try:
            return self._blobs.read_bytes(
                ref.id, ref.wrapped_key, max_size=self._store.max_snapshot_bytes
            )
        except StorageError as exc:
            raise DocumentCorrupt(
                f"document {self.document_id}: snapshot unreadable: {exc}"
            ) from exc

    def _write_manifest(self, manifest: _Manifest) -> None:
        durable_write_bytes(self._dir / _MANIFEST, [manifest.to_bytes()])

    def _sweep(self, *, everything: bool = False) -> None:
        """Remove files the manifest does not reference (crash leftovers)."""
        keep_log = None if everything else f"{self._manifest.log.id}{_LOG_SUFFIX}"
        snap = None if everything or self._manifest.snapshot is None else self._manifest.snapshot.id
        for entry in os.scandir(self._dir):
            name = entry.name
            if (name.endswith(_LOG_SUFFIX) and name != keep_log) or name.startswith(_TEMP_PREFIX):
                remove_file(Path(entry.path))
        for blob_id in list(self._blobs.iter_blob_ids()):
            if blob_id != snap:
                self._blobs.delete(blob_id)
        self._blobs.clean_temp_files(0)

    # -- DocumentHandle ----------------------------------------------------------------

    @property
    def log_records(self) -> int:
        return self._log.record_count

    @property
    def log_bytes(self) -> int:
        return self._log.size

    def load(self) -> list[bytes]:
        # Handed over once: the room holds the document from here on, and keeping a
        # second copy of a 16 MiB state alive for the life of the room buys nothing.
        head = [] if self._snapshot_state is None else [self._snapshot_state]
        out = head + self._records
        self._snapshot_state, self._records = None, []
        return out

    def append_many(self, updates: Sequence[bytes]) -> None:
        self._log.append_many(updates)

    def write_many(self, updates: Sequence[bytes]) -> None:
        self._log.write_many(updates)

    def sync(self, *, flushed: bool = False) -> None:
        self._log.sync(flushed=flushed)

    def fileno(self) -> int:
        return self._log.fileno()

    def compact(self, state: bytes) -> None:
        _checkpoint("start")
        with self._blobs.open_writer() as writer:
            writer.write(state)
            info: BlobInfo = writer.commit()
        new_log: RecordLog | None = None
        try:
            _checkpoint("snapshot-written")
            log_id = new_blob_id()
            new_log, wrapped = RecordLog.create(
                self._log_path(log_id), self._store.ring, log_id=log_id
            )
            _checkpoint("log-created")
            manifest = _Manifest(
                self.document_id, _Ref(info.blob_id, info.wrapped_key), _Ref(log_id, wrapped)
            )
            self._write_manifest(manifest)
        except Exception:
            # Not switched: the old manifest, log and snapshot stay in charge.  (A real
            # crash skips this cleanup; the next open's sweep does it instead.)
            if new_log is not None:
                new_log.close()
                self._discard(lambda: remove_file(new_log.path))
            self._discard(lambda: self._blobs.delete(info.blob_id))
            raise
        old, old_log = self._manifest, self._log
        self._manifest, self._log = manifest, new_log
        self._snapshot_state, self._records = None, []
        old_log.close()
        _checkpoint("manifest-switched")
        self._discard(lambda: remove_file(old_log.path))
        _checkpoint("old-log-removed")
        if old.snapshot is not None:
            snapshot_id = old.snapshot.id
            self._discard(lambda: self._blobs.delete(snapshot_id))

    def _discard(self, action: Any) -> None:
        try:
            action()
        except StorageError:
            # Only garbage is at stake: the next open sweeps it.
            log.warning(
                "document %s: cleanup after compaction failed", self.document_id, exc_info=True
            )

    def close(self) -> None:
        self._log.close()
        self._records = []
        self._snapshot_state = None


def rewrap_manifests(root: Path, ring: Keys) -> tuple[int, set[str]]:
    """Rewrap the data keys named in every document manifest under the active KEK (key
    rotation); log and snapshot bytes stay untouched. Returns how many manifests changed and
    the KEK ids still referenced afterwards (a manifest that an open room rewrites meanwhile
    may still name an old key: retired keys keep unwrapping, so nothing becomes unreadable).
    """
    changed = 0
    in_use: set[str] = set()
    docs = Path(root) / "docs"
    if not docs.is_dir():
        return 0, in_use
    for directory in sorted(p for p in docs.iterdir() if p.is_dir()):
        path = directory / _MANIFEST
        if not path.is_file():
            continue
        manifest = _Manifest.from_bytes(path.read_bytes(), directory.name)

        def fresh(ref: _Ref) -> _Ref:
            if ref.wrapped_key.kek_id == ring.active_id:
                return ref
            return _Ref(ref.id, ring.rewrap(ref.wrapped_key, ref.id))

        updated = _Manifest(
            manifest.document_id,
            None if manifest.snapshot is None else fresh(manifest.snapshot),
            fresh(manifest.log),
        )
        if updated != manifest:
            durable_write_bytes(path, [updated.to_bytes()])
            changed += 1
        for ref in (updated.snapshot, updated.log):
            if ref is not None:
                in_use.add(ref.wrapped_key.kek_id)
    return changed, in_use
