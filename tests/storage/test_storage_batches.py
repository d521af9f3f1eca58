"""Blob I/O in batches (issue 18): a large write reaches the disk in one call, a download
reads and verifies many chunks per read, and the format on disk is the one it always was."""

from __future__ import annotations

import hashlib
import os
import random
from typing import Any

import pytest

from storage import LocalBlobStore
from storage.errors import IntegrityError
from storage.stream import CHUNK_SIZE, CIPHER_CHUNK_SIZE, HEADER_SIZE, Encryptor
from tests.storage.storage_helpers import randbytes


def test_a_large_write_reaches_the_disk_in_one_call(
        monkeypatch: pytest.MonkeyPatch, store: LocalBlobStore) -> None:
    writes: list[int] = []
    real_write = os.write

    def counting(fd: int, data: Any) -> int:
        writes.append(memoryview(data).nbytes)
        return int(real_write(fd, data))

    data = randbytes(16 * CHUNK_SIZE + 1, seed=181)
    with store.open_writer() as w:
        w.write(data[:1])  # the header goes out; one byte waits to know if it is the last
        monkeypatch.setattr(os, "write", counting)
        w.write(data[1:])
        monkeypatch.undo()
        info = w.commit()
    # 16 sealed chunks in one call (not sixteen); the last byte is held back for commit.
    assert writes == [16 * CIPHER_CHUNK_SIZE]
    assert store.read_bytes(info.blob_id, info.wrapped_key) == data


def test_batched_reads_verify_every_chunk_before_returning_any(
        monkeypatch: pytest.MonkeyPatch, store: LocalBlobStore) -> None:
    data = randbytes(40 * CHUNK_SIZE + 3, seed=182)
    with store.open_writer() as w:
        w.write(data)
        info = w.commit()
    reads: list[int] = []
    real_pread = os.pread

    def counting(fd: int, length: int, offset: int) -> bytes:
        reads.append(length)
        return real_pread(fd, length, offset)

    monkeypatch.setattr(os, "pread", counting)
    with store.open_reader(info.blob_id, info.wrapped_key) as reader:
        pieces = [bytes(p) for p in reader.iter_batches(5, len(data) - 7, 16 * CHUNK_SIZE)]
    monkeypatch.undo()
    assert b"".join(pieces) == data[5:-7]
    # The header; the last chunk (3 bytes), verified first since the range stops short of
    # it; then chunks 0-39 in three reads of up to 16 chunks.
    assert reads == [HEADER_SIZE, 3 + 16, 16 * CIPHER_CHUNK_SIZE, 16 * CIPHER_CHUNK_SIZE,
                     8 * CIPHER_CHUNK_SIZE]
    assert [len(p) for p in pieces][:2] == [16 * CHUNK_SIZE - 5, 16 * CHUNK_SIZE]

    # One flipped bit in the 20th chunk: the batch holding it yields nothing at all.
    path = store.path_of(info.blob_id)
    raw = bytearray(path.read_bytes())
    raw[HEADER_SIZE + 19 * CIPHER_CHUNK_SIZE + 100] ^= 1
    path.write_bytes(bytes(raw))
    got: list[bytes] = []
    with store.open_reader(info.blob_id, info.wrapped_key) as reader:
        with pytest.raises(IntegrityError, match="chunk 19"):
            for piece in reader.iter_batches(0, len(data), 16 * CHUNK_SIZE):
                got.append(bytes(piece))
    assert got == [data[: 16 * CHUNK_SIZE]]


def test_the_format_on_disk_is_unchanged() -> None:
    """A known answer from before issue 18 (fixed key, salt and id; writes of every shape):
    the batched encryptor writes byte for byte what the chunk-by-chunk one wrote, so every
    existing blob still reads."""
    data = random.Random(18).randbytes(5 * CHUNK_SIZE + 77)
    out: list[bytes | bytearray] = []
    enc = Encryptor(bytes(range(32)), "kat18blobid", salt=bytes(range(16)))
    for piece in (data[:1], data[1:CHUNK_SIZE], data[CHUNK_SIZE : 3 * CHUNK_SIZE + 5],
                  data[3 * CHUNK_SIZE + 5 :]):
        enc.feed(piece, out.append)
    enc.finish_into(out.append)
    assert hashlib.sha256(b"".join(out)).hexdigest() == (
        "a182f3c227ce48629c40f669fe9817d3889e71904af615db1e1943c5d614edea")
