"""LocalBlobStore: layout, round trips, range reads, tampering on disk, canary."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from storage import (
    BlobNotFound,
    BlobStore,
    IntegrityError,
    InvalidBlobId,
    KeyRing,
    LocalBlobStore,
    StorageError,
    new_blob_id,
    validate_blob_id,
)
from tests.storage.storage_helpers import (
    CHUNK_SIZE,
    all_files,
    chunk_offset,
    randbytes,
    temp_files,
    write_blob,
)

SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, 4_000_003]


def test_is_a_blob_store(store: LocalBlobStore) -> None:
    _: BlobStore = store  # static check (mypy) that the protocol is satisfied


@pytest.mark.parametrize("size", SIZES)
def test_round_trip(store: LocalBlobStore, size: int) -> None:
    plain = randbytes(size, seed=size)
    with store.open_writer() as w:
        w.write(plain[: size // 3])
        w.write(b"")
        w.write(memoryview(plain)[size // 3 :])
        info = w.commit()
    assert info.blob_id == w.blob_id
    assert info.size == size
    assert info.sha256 == hashlib.sha256(plain).hexdigest()
    path = store.path_of(info.blob_id)
    assert path.stat().st_size == info.stored_size
    assert store.exists(info.blob_id)
    with store.open_reader(info.blob_id, info.wrapped_key) as r:
        assert r.size == size
        assert b"".join(r.iter_chunks()) == plain
    assert store.read_bytes(info.blob_id, info.wrapped_key) == plain
    assert temp_files(store.root) == []


def test_blob_file_mode_is_private(store: LocalBlobStore) -> None:
    blob_id, _ = write_blob(store, b"x")
    path = store.path_of(blob_id)
    assert path.stat().st_mode & 0o077 == 0


def test_range_reads(store: LocalBlobStore) -> None:
    plain = randbytes(5 * CHUNK_SIZE + 123, seed=9)
    blob_id, wrapped = write_blob(store, plain)
    with store.open_reader(blob_id, wrapped) as r:
        for start, end in [
            (0, 0),
            (0, 1),
            (CHUNK_SIZE - 1, CHUNK_SIZE + 1),
            (2 * CHUNK_SIZE - 5, 4 * CHUNK_SIZE + 5),
            (5 * CHUNK_SIZE, 5 * CHUNK_SIZE + 123),
            (0, len(plain)),
        ]:
            assert b"".join(r.iter_range(start, end)) == plain[start:end]


def test_read_bytes_limit(store: LocalBlobStore) -> None:
    blob_id, wrapped = write_blob(store, bytes(1000))
    with pytest.raises(StorageError, match="over"):
        store.read_bytes(blob_id, wrapped, max_size=999)


def test_each_blob_has_own_key_and_salt(store: LocalBlobStore) -> None:
    a_id, a_key = write_blob(store, b"same")
    b_id, b_key = write_blob(store, b"same")
    assert a_id != b_id
    assert store.ring.unwrap(a_key, a_id) != store.ring.unwrap(b_key, b_id)


def blob_path(store: LocalBlobStore, blob_id: str) -> Path:
    return store.path_of(blob_id)


@pytest.mark.parametrize("k", [0, 1, 3])
def test_flipped_byte_on_disk(store: LocalBlobStore, k: int) -> None:
    plain = randbytes(3 * CHUNK_SIZE + 77, seed=10)
    blob_id, wrapped = write_blob(store, plain)
    path = blob_path(store, blob_id)
    data = bytearray(path.read_bytes())
    data[chunk_offset(k) + 40] ^= 0x04
    path.write_bytes(bytes(data))
    got: list[bytes] = []
    with store.open_reader(blob_id, wrapped) as r, pytest.raises(IntegrityError) as info:
        for chunk in r.iter_chunks():
            got.append(chunk)
    assert f"chunk {k}" in str(info.value)
    assert b"".join(got) == plain[: k * CHUNK_SIZE]
    # a range read into the damaged chunk fails too; one before it does not
    with store.open_reader(blob_id, wrapped) as r:
        with pytest.raises(IntegrityError, match=f"chunk {k}"):
            list(r.iter_range(k * CHUNK_SIZE, k * CHUNK_SIZE + 1))
        if 0 < k < 3:
            assert b"".join(r.iter_range(0, 10)) == plain[:10]


def test_truncated_blob_on_disk(store: LocalBlobStore) -> None:
    blob_id, wrapped = write_blob(store, randbytes(3 * CHUNK_SIZE))
    path = blob_path(store, blob_id)
    path.write_bytes(path.read_bytes()[: chunk_offset(2)])
    with pytest.raises(IntegrityError, match="no final chunk"):
        store.read_bytes(blob_id, wrapped)


def test_blob_moved_to_another_id_fails(store: LocalBlobStore) -> None:
    a_id, a_key = write_blob(store, b"alpha")
    b_id, b_key = write_blob(store, b"bravo")
    # the wrapped key of blob A presented for blob B
    with pytest.raises(IntegrityError):
        store.read_bytes(b_id, a_key)
    # blob A's file copied over blob B's, read with A's key under B's id
    blob_path(store, b_id).write_bytes(blob_path(store, a_id).read_bytes())
    with pytest.raises(IntegrityError):
        store.read_bytes(b_id, a_key)
    with pytest.raises(IntegrityError):
        store.read_bytes(b_id, b_key)


def test_missing_blob(store: LocalBlobStore) -> None:
    blob_id, wrapped = write_blob(store, b"x")
    assert store.delete(blob_id) is True
    assert store.delete(blob_id) is False  # deleting a missing blob is fine
    assert not store.exists(blob_id)
    with pytest.raises(BlobNotFound):
        store.open_reader(blob_id, wrapped)
    with pytest.raises(BlobNotFound):
        store.blob_mtime(blob_id)


def test_iter_blob_ids_ignores_temp_and_foreign_files(store: LocalBlobStore) -> None:
    ids = {write_blob(store, bytes([i]))[0] for i in range(5)}
    pending = store.open_writer()
    pending.write(b"in flight")
    (store.root / "README").write_text("not a blob")
    some = next(iter(ids))
    (store.path_of(some).parent / "zzzzzzzzzzzzzzzzzzzzzz").write_text("wrong prefix")
    assert set(store.iter_blob_ids()) == ids
    pending.abort()


BAD_IDS = [
    "",
    "short",
    "a" * 65,
    "../../../../etc/passwd",
    "AAAA/BBBBCCCCDDDDEEEEFFFF",
    ".tmp-AAAABBBBCCCCDDDD",
    "AAAABBBBCCCCDDDD\x00",
    "AAAABBBBCCCCDDDD\n",
    "ÀAAABBBBCCCCDDDDEEEE",
    "AAAA.BBBBCCCCDDDDEEEE",
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_invalid_blob_ids_refused(store: LocalBlobStore, bad: str) -> None:
    _, wrapped = write_blob(store, b"x")
    with pytest.raises(InvalidBlobId):
        store.open_reader(bad, wrapped)
    with pytest.raises(InvalidBlobId):
        store.exists(bad)
    with pytest.raises(InvalidBlobId):
        store.delete(bad)
    with pytest.raises(ValueError):  # InvalidBlobId is also a ValueError
        validate_blob_id(bad)


def test_generated_ids_are_valid_and_unique() -> None:
    ids = {new_blob_id() for _ in range(1000)}
    assert len(ids) == 1000
    for blob_id in ids:
        assert validate_blob_id(blob_id) == blob_id


def test_writer_context_manager_aborts_on_exception(store: LocalBlobStore) -> None:
    with pytest.raises(RuntimeError), store.open_writer() as w:
        w.write(b"partial")
        assert len(temp_files(store.root)) == 1
        raise RuntimeError("client went away")
    assert temp_files(store.root) == []
    assert not store.exists(w.blob_id)
    with pytest.raises(StorageError):
        w.write(b"more")
    with pytest.raises(StorageError):
        w.commit()


def test_writer_context_manager_aborts_when_not_committed(store: LocalBlobStore) -> None:
    with store.open_writer() as w:
        w.write(b"never committed")
    assert temp_files(store.root) == [] and not store.exists(w.blob_id)


def test_commit_twice_refused(store: LocalBlobStore) -> None:
    w = store.open_writer()
    w.write(b"x")
    w.commit()
    with pytest.raises(StorageError):
        w.commit()
    w.abort()  # no effect after commit
    assert store.exists(w.blob_id)


def test_abandoned_writer_cleans_up_on_gc(store: LocalBlobStore) -> None:
    w = store.open_writer()
    w.write(b"abandoned")
    assert len(temp_files(store.root)) == 1
    del w
    import gc

    gc.collect()
    assert temp_files(store.root) == []


def test_canary_never_on_disk(tmp_path: Path, store: LocalBlobStore) -> None:
    canary = b"plein-canary-" + os.urandom(8).hex().encode()
    # the canary straddles a chunk boundary and appears in several chunks
    plain = bytearray(randbytes(3 * CHUNK_SIZE, seed=11))
    for pos in (10, CHUNK_SIZE - 7, 2 * CHUNK_SIZE + 100):
        plain[pos : pos + len(canary)] = canary
    w = store.open_writer()
    w.write(bytes(plain[: CHUNK_SIZE + 5]))
    # while in flight: the temp file holds ciphertext only
    assert len(temp_files(tmp_path)) == 1
    for path in all_files(tmp_path):
        assert canary not in path.read_bytes(), path
    w.write(bytes(plain[CHUNK_SIZE + 5 :]))
    info = w.commit()
    files = all_files(tmp_path)
    assert len(files) == 2  # key file + the blob
    for path in files:
        raw = path.read_bytes()
        assert canary not in raw, path
        assert canary.hex().encode() not in raw
    assert store.read_bytes(info.blob_id, info.wrapped_key) == bytes(plain)


def test_store_reopens_existing_root(tmp_path: Path, ring: KeyRing) -> None:
    store = LocalBlobStore(tmp_path / "blobs", ring)
    blob_id, wrapped = write_blob(store, b"persist")
    again = LocalBlobStore(tmp_path / "blobs", KeyRing.load(ring.path))
    assert again.read_bytes(blob_id, wrapped) == b"persist"


def test_reader_closed(store: LocalBlobStore) -> None:
    blob_id, wrapped = write_blob(store, randbytes(2 * CHUNK_SIZE))
    r = store.open_reader(blob_id, wrapped)
    r.close()
    r.close()
    with pytest.raises(StorageError, match="closed"):
        list(r.iter_chunks())
