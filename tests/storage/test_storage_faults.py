"""Fault injection: fsync/write/rename errors fail the write, clean up, keep old data."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storage import DurableWriteError, KeyRing, LocalBlobStore, StorageError, verify_blob
from tests.storage.storage_helpers import CHUNK_SIZE, randbytes, temp_files, write_blob


def failing_on_call(
    real: Callable[..., Any], fail_at: int, err: int
) -> tuple[Callable[..., Any], list[int]]:
    """Wrap ``real`` so its ``fail_at``-th call (1-based) raises OSError(err)."""
    calls = [0]

    def wrapper(*args: Any) -> Any:
        calls[0] += 1
        if calls[0] == fail_at:
            raise OSError(err, os.strerror(err))
        return real(*args)

    return wrapper, calls


@pytest.fixture
def previous(store: LocalBlobStore) -> tuple[str, Any, bytes]:
    data = randbytes(2 * CHUNK_SIZE + 9, seed=21)
    blob_id, wrapped = write_blob(store, data)
    return blob_id, wrapped, data


def assert_previous_intact(store: LocalBlobStore, previous: tuple[str, Any, bytes]) -> None:
    import hashlib

    blob_id, wrapped, data = previous
    assert store.read_bytes(blob_id, wrapped) == data
    assert verify_blob(store, blob_id, wrapped, hashlib.sha256(data).hexdigest(), len(data)).ok


@pytest.mark.parametrize("fail_at", [1, 2], ids=["fsync-file", "fsync-dir"])
def test_fsync_eio_during_commit(
    monkeypatch: pytest.MonkeyPatch,
    store: LocalBlobStore,
    previous: tuple[str, Any, bytes],
    fail_at: int,
) -> None:
    w = store.open_writer()
    w.write(randbytes(3 * CHUNK_SIZE))
    boom, calls = failing_on_call(os.fsync, fail_at, errno.EIO)
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(DurableWriteError, match="Input/output error"):
        w.commit()
    monkeypatch.undo()
    assert calls[0] == fail_at  # failed once, never retried
    assert temp_files(store.root) == []
    assert not store.exists(w.blob_id)
    assert set(store.iter_blob_ids()) == {previous[0]}
    assert_previous_intact(store, previous)
    with pytest.raises(StorageError):
        w.commit()  # a failed writer stays failed


def test_enospc_mid_stream(
    monkeypatch: pytest.MonkeyPatch, store: LocalBlobStore, previous: tuple[str, Any, bytes]
) -> None:
    w = store.open_writer()
    boom, calls = failing_on_call(os.write, 4, errno.ENOSPC)  # header, chunk 0, 1, then 2 fails
    monkeypatch.setattr(os, "write", boom)
    with pytest.raises(DurableWriteError, match="No space left"):
        for _ in range(10):
            w.write(randbytes(CHUNK_SIZE))
    monkeypatch.undo()
    assert calls[0] == 4
    assert temp_files(store.root) == []
    assert not store.exists(w.blob_id)
    with pytest.raises(StorageError):
        w.write(b"more")
    assert_previous_intact(store, previous)


def test_enospc_on_final_chunk(monkeypatch: pytest.MonkeyPatch, store: LocalBlobStore) -> None:
    w = store.open_writer()
    w.write(b"small")  # buffered: nothing written yet but the header on the first feed
    boom, _ = failing_on_call(os.write, 1, errno.ENOSPC)
    monkeypatch.setattr(os, "write", boom)
    with pytest.raises(DurableWriteError):
        w.commit()
    monkeypatch.undo()
    assert temp_files(store.root) == [] and not store.exists(w.blob_id)


def test_short_writes_are_completed(monkeypatch: pytest.MonkeyPatch, store: LocalBlobStore) -> None:
    real_write = os.write

    def short_write(fd: int, data: Any) -> int:
        return real_write(fd, bytes(memoryview(data)[:1000]))

    monkeypatch.setattr(os, "write", short_write)
    data = randbytes(2 * CHUNK_SIZE + 5, seed=22)
    blob_id, wrapped = write_blob(store, data)
    monkeypatch.undo()
    assert store.read_bytes(blob_id, wrapped) == data


def test_replace_failure(
    monkeypatch: pytest.MonkeyPatch, store: LocalBlobStore, previous: tuple[str, Any, bytes]
) -> None:
    w = store.open_writer()
    w.write(b"data")

    def boom(*args: Any) -> None:
        raise OSError(errno.EIO, "rename failed")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(DurableWriteError):
        w.commit()
    monkeypatch.undo()
    assert temp_files(store.root) == [] and not store.exists(w.blob_id)
    assert_previous_intact(store, previous)


def test_fsync_failure_creating_fanout_dirs(
    monkeypatch: pytest.MonkeyPatch, store: LocalBlobStore
) -> None:
    def boom(fd: int) -> None:
        raise OSError(errno.EIO, "fsync failed")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(DurableWriteError):
        store.open_writer()
    monkeypatch.undo()
    assert temp_files(store.root) == []


def test_delete_fsync_failure_is_reported(
    monkeypatch: pytest.MonkeyPatch, store: LocalBlobStore
) -> None:
    blob_id, _ = write_blob(store, b"x")

    def boom(fd: int) -> None:
        raise OSError(errno.EIO, "fsync failed")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(DurableWriteError):
        store.delete(blob_id)


@pytest.mark.parametrize("fail_at", [1, 2], ids=["fsync-file", "fsync-dir"])
def test_key_file_fsync_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fail_at: int
) -> None:
    ring = KeyRing.create(tmp_path / "k.json")
    before = ring.path.read_bytes()
    old_active = ring.active_id
    boom, _ = failing_on_call(os.fsync, fail_at, errno.EIO)
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(DurableWriteError):
        ring.add_key()
    monkeypatch.undo()
    # not durable -> not in effect: the ring keeps wrapping under the old key
    assert ring.active_id == old_active and ring.key_ids() == [old_active]
    assert ring.wrap(bytes(32), "AAAAAAAAAAAAAAAAAAAAAAAA").kek_id == old_active
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]
    if fail_at == 1:
        assert ring.path.read_bytes() == before


def test_key_file_create_fsync_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    boom, _ = failing_on_call(os.fsync, 2, errno.EIO)  # 1: parent dir, 2: the key file
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(DurableWriteError):
        KeyRing.create(tmp_path / "keys" / "k.json")
    monkeypatch.undo()
    assert list((tmp_path / "keys").iterdir()) == []
