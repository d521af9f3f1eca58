"""Shared helpers for the storage tests (a plain module: conftest is not for imports)."""

from __future__ import annotations

import os
import random
from pathlib import Path

from storage import Encryptor, WrappedKey
from storage.stream import CHUNK_SIZE, CIPHER_CHUNK_SIZE, HEADER_SIZE

__all__ = [
    "CHUNK_SIZE",
    "CIPHER_CHUNK_SIZE",
    "HEADER_SIZE",
    "all_files",
    "chunk_offset",
    "encrypt",
    "randbytes",
    "temp_files",
    "write_blob",
]

BLOB_ID = "AAAAbbbbCCCCddddEEEEffff"


def randbytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def encrypt(plain: bytes, dek: bytes, blob_id: str = BLOB_ID) -> bytes:
    enc = Encryptor(dek, blob_id)
    return enc.update(plain) + enc.finish()


def chunk_offset(index: int) -> int:
    return HEADER_SIZE + index * CIPHER_CHUNK_SIZE


def all_files(root: Path) -> list[Path]:
    return sorted(Path(d) / f for d, _, files in os.walk(root) for f in files)


def temp_files(root: Path) -> list[Path]:
    return [p for p in all_files(root) if p.name.startswith(".tmp-")]


def write_blob(store: object, data: bytes, piece: int = 50_000) -> tuple[str, WrappedKey]:
    from storage import LocalBlobStore

    assert isinstance(store, LocalBlobStore)
    with store.open_writer() as w:
        for i in range(0, len(data), piece):
            w.write(data[i : i + piece])
        info = w.commit()
    assert info.size == len(data)
    return info.blob_id, info.wrapped_key
