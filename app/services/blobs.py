"""The bridge between the database and :mod:`storage`: blob rows hold the wrapped data keys."""

from __future__ import annotations

import io
from typing import Any

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



class BlobFile(io.RawIOBase):
    """A stored blob as a read-only, seekable file of its plaintext (what ``zipfile`` needs
    to read an uploaded archive), decrypting only the ranges asked for: no plaintext copy is
    ever written anywhere."""

    def __init__(self, reader: BlobReader) -> None:
        super().__init__()
        self._reader = reader
        self._size = reader.size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        end = min(self._size, self._pos + len(buffer))
        if end <= self._pos:
            return 0
        data = b"".join(self._reader.iter_range(self._pos, end))
        buffer[:len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._reader.close()
        super().close()
