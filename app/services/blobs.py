"""The bridge between the database and :mod:`storage`: blob rows hold the wrapped data keys."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Blob, DocumentVersion
from storage import BlobInfo, BlobReader, KeyRing, LocalBlobStore, UnknownKeyError, WrappedKey


def record_blob(db: Session, info: BlobInfo, group_id: str | None) -> Blob:
    blob = Blob(id=info.blob_id, group_id=group_id, wrapped_key=info.wrapped_key.to_bytes(),
                kek_id=info.wrapped_key.kek_id, size=info.size, sha256=info.sha256,
                stored_size=info.stored_size)
    db.add(blob)
    return blob


def refresh_key_ring(store: LocalBlobStore, *, force: bool = False) -> None:
    """Reload the key file if it changed on disk, so a server follows ``plein keys rotate``
    run beside it: new uploads wrap under the new active key, rewrapped keys unwrap.

    The file is compared by (inode, mtime, size): rotation replaces it with ``os.replace``, so
    the inode changes even where mtimes are coarse. The first call of a process reloads
    unconditionally: the ring was loaded at start-up, and a rotation between start-up and the
    first upload or download would otherwise be recorded as "already seen" and missed."""
    path = store.ring.path
    try:
        st = path.stat()
    except OSError:
        return  # keep the ring we have; the next call tries again
    signature = (st.st_ino, st.st_mtime_ns, st.st_size)
    with _KEY_FILE_LOCK:
        if not force and _KEY_FILE_SIGNATURES.get(path) == signature:
            return
        # Stat before load: if the file changes in between we load the newer one and simply
        # reload once more on the next call.
        store.ring = KeyRing.load(path)
        _KEY_FILE_SIGNATURES[path] = signature


_KEY_FILE_SIGNATURES: dict[Path, tuple[int, int, int]] = {}
_KEY_FILE_LOCK = threading.Lock()


def open_blob(store: LocalBlobStore, blob: Blob) -> BlobReader:
    refresh_key_ring(store)
    wrapped = WrappedKey.from_bytes(blob.wrapped_key)
    try:
        return store.open_reader(blob.id, wrapped)
    except UnknownKeyError:
        # A row rewrapped by a rotation whose key-file change we have not seen yet (same
        # signature within the clock's granularity): read the file again before giving up.
        refresh_key_ring(store, force=True)
        return store.open_reader(blob.id, wrapped)


def blob_is_referenced(db: Session, blob_id: str) -> bool:
    return db.scalar(select(DocumentVersion.id).where(DocumentVersion.blob_id == blob_id)
                     .limit(1)) is not None


def known_blob_ids(db: Session) -> set[str]:
    return set(db.scalars(select(Blob.id)))
