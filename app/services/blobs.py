"""The bridge between the database and :mod:`storage`: blob rows hold the wrapped data keys."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import Blob
from storage import BlobInfo, BlobReader, LocalBlobStore, WrappedKey


def record_blob(db: Session, info: BlobInfo, group_id: str | None) -> Blob:
    blob = Blob(id=info.blob_id, group_id=group_id, wrapped_key=info.wrapped_key.to_bytes(),
                kek_id=info.wrapped_key.kek_id, size=info.size, sha256=info.sha256,
                stored_size=info.stored_size)
    db.add(blob)
    return blob


def open_blob(store: LocalBlobStore, blob: Blob) -> BlobReader:
    # The store's KeySource follows ``plein keys rotate`` run beside the server (it reloads
    # the key file when it changed, and once more on an unknown key id).
    return store.open_reader(blob.id, WrappedKey.from_bytes(blob.wrapped_key))

