"""Orphan collection, temp sweeping, fsck (verify_blob) and KEK rotation."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from storage import (
    KeyRing,
    LocalBlobStore,
    WrappedKey,
    collect_orphans,
    rewrap_all,
    verify_blob,
)
from tests.storage.storage_helpers import CHUNK_SIZE, randbytes, temp_files, write_blob


def age(store: LocalBlobStore, blob_id: str, seconds: float) -> None:
    path = store.path_of(blob_id)
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_collect_orphans(store: LocalBlobStore) -> None:
    known_old, _ = write_blob(store, b"known")
    orphan_old, _ = write_blob(store, b"orphan")
    orphan_young, _ = write_blob(store, b"in flight, row not committed yet")
    age(store, known_old, 7200)
    age(store, orphan_old, 7200)
    age(store, orphan_young, 60)
    pending = store.open_writer()  # temp files are not blobs
    pending.write(b"uploading")

    removed = collect_orphans(store, {known_old}, min_age_seconds=3600)

    assert removed == [orphan_old]
    assert not store.exists(orphan_old)
    assert store.exists(known_old) and store.exists(orphan_young)
    assert len(temp_files(store.root)) == 1
    pending.abort()
    # run again: nothing more to do
    assert collect_orphans(store, {known_old}, min_age_seconds=3600) == []
    with pytest.raises(ValueError):
        collect_orphans(store, set(), min_age_seconds=-1)


def test_clean_temp_files(store: LocalBlobStore) -> None:
    stale = store.open_writer()
    stale.write(b"crashed upload")
    fresh = store.open_writer()
    fresh.write(b"live upload")
    (stale_tmp,) = [
        p
        for p in temp_files(store.root)
        if p.parent == store.path_of(stale.blob_id).parent
    ]
    t = time.time() - 7200
    os.utime(stale_tmp, (t, t))
    kept_blob, wrapped = write_blob(store, b"committed")
    age(store, kept_blob, 7200)

    assert store.clean_temp_files(older_than_seconds=3600) == 1

    assert not stale_tmp.exists()
    remaining = temp_files(store.root)
    assert len(remaining) == 1 and remaining[0] != stale_tmp
    assert store.read_bytes(kept_blob, wrapped) == b"committed"
    info = fresh.commit()  # the live upload is unaffected
    assert store.read_bytes(info.blob_id, info.wrapped_key) == b"live upload"
    stale.abort()  # its file is already gone: no error


def test_verify_blob(store: LocalBlobStore) -> None:
    data = randbytes(2 * CHUNK_SIZE + 1, seed=31)
    sha = hashlib.sha256(data).hexdigest()
    blob_id, wrapped = write_blob(store, data)
    other_id, other_key = write_blob(store, b"other")

    assert verify_blob(store, blob_id, wrapped, sha, len(data)).ok
    assert verify_blob(store, blob_id, wrapped, sha.upper(), len(data)).ok

    r = verify_blob(store, blob_id, wrapped, sha, len(data) + 1)
    assert not r.ok and r.reason is not None and "size mismatch" in r.reason
    r = verify_blob(store, blob_id, wrapped, "0" * 64, len(data))
    assert not r.ok and r.reason == "sha256 mismatch"
    r = verify_blob(store, blob_id, other_key, sha, len(data))
    assert not r.ok and r.reason is not None and r.reason.startswith("integrity")
    r = verify_blob(store, blob_id, WrappedKey("nosuchkey", wrapped.data), sha, len(data))
    assert not r.ok and r.reason is not None and r.reason.startswith("unknown key")
    r = verify_blob(store, "../../etc/passwd", wrapped, sha, len(data))
    assert not r.ok and r.reason is not None and r.reason.startswith("error")

    path = store.path_of(blob_id)
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    r = verify_blob(store, blob_id, wrapped, sha, len(data))
    assert not r.ok and r.reason is not None and "chunk 2" in r.reason

    store.delete(other_id)
    r = verify_blob(store, other_id, other_key, sha, 5)
    assert not r.ok and r.reason == "missing"


def file_digest(store: LocalBlobStore, blob_id: str) -> str:
    path = store.path_of(blob_id)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rotation(tmp_path: Path, store: LocalBlobStore, ring: KeyRing) -> None:
    contents = {}
    rows: list[tuple[str, WrappedKey]] = []
    for i, size in enumerate([0, 1, CHUNK_SIZE, 3 * CHUNK_SIZE + 5, 10_000]):
        data = randbytes(size, seed=40 + i)
        blob_id, wrapped = write_blob(store, data)
        contents[blob_id] = data
        rows.append((blob_id, wrapped))
    digests_before = {b: file_digest(store, b) for b in contents}
    old_kek = ring.active_id

    new_kek = ring.add_key()
    rewrapped = dict(rewrap_all(ring, iter(rows)))

    assert set(rewrapped) == set(contents)
    assert all(w.kek_id == new_kek for w in rewrapped.values())
    for blob_id, data in contents.items():
        assert store.read_bytes(blob_id, rewrapped[blob_id]) == data
    assert {b: file_digest(store, b) for b in contents} == digests_before
    # resumable: rows already on the active key are skipped
    assert list(rewrap_all(ring, rewrapped.items())) == []
    assert len(list(rewrap_all(ring, rewrapped.items(), skip_active=False))) == len(rows)

    ring.retire(old_kek)
    reloaded = KeyRing.load(ring.path)
    assert reloaded.is_retired(old_kek) and reloaded.active_id == new_kek
    store2 = LocalBlobStore(store.root, reloaded)
    for blob_id, data in contents.items():
        assert store2.read_bytes(blob_id, rewrapped[blob_id]) == data
        assert verify_blob(
            store2, blob_id, rewrapped[blob_id], hashlib.sha256(data).hexdigest(), len(data)
        ).ok
    assert {b: file_digest(store2, b) for b in contents} == digests_before
    # new blobs are wrapped under the new key only
    with store2.open_writer() as w:
        w.write(b"after rotation")
        assert w.commit().wrapped_key.kek_id == new_kek


def test_rotation_refuses_a_bad_row(store: LocalBlobStore, ring: KeyRing) -> None:
    a_id, a_key = write_blob(store, b"a")
    b_id, _ = write_blob(store, b"b")
    ring.add_key()
    from storage import IntegrityError

    with pytest.raises(IntegrityError):
        list(rewrap_all(ring, [(b_id, a_key)]))  # a's key on b's row
