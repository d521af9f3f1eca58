"""storage.log: the encrypted, group-committed record log."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from storage import DurableWriteError, IntegrityError, KeyRing, RecordLog, WrappedKey
from storage.log import MAX_RECORD_SIZE
from tests.storage.storage_helpers import all_files

LOG_ID = "LogLogLogLogLogLogLog123"


def make_log(tmp_path: Path, ring: KeyRing) -> tuple[RecordLog, WrappedKey, Path]:
    path = tmp_path / "logs" / f"{LOG_ID}.plog"
    path.parent.mkdir(exist_ok=True)
    log, wrapped = RecordLog.create(path, ring, log_id=LOG_ID)
    return log, wrapped, path


def reopen(path: Path, ring: KeyRing, wrapped: WrappedKey) -> tuple[RecordLog, list[bytes]]:
    return RecordLog.open(path, ring, wrapped, log_id=LOG_ID)


def test_round_trip_and_append_after_reopen(tmp_path: Path, ring: KeyRing) -> None:
    log, wrapped, path = make_log(tmp_path, ring)
    log.append(b"first")
    log.append_many([b"second", b"", b"x" * 100_000])
    assert log.record_count == 4
    log.close()
    log2, records = reopen(path, ring, wrapped)
    assert records == [b"first", b"second", b"", b"x" * 100_000]
    log2.append(b"fifth")
    log2.close()
    log3, records = reopen(path, ring, wrapped)
    assert records[-1] == b"fifth" and len(records) == 5
    assert log3.size == path.stat().st_size
    log3.close()


def test_wrong_id_or_key_refused(tmp_path: Path, ring: KeyRing) -> None:
    log, wrapped, path = make_log(tmp_path, ring)
    log.append(b"a")
    log.close()
    other_log, other_wrapped = RecordLog.create(tmp_path / "other.plog", ring)
    other_log.close()
    with pytest.raises(IntegrityError):
        reopen(path, ring, other_wrapped)  # key belongs to another log id
    with pytest.raises(IntegrityError):
        RecordLog.open(path, ring, wrapped, log_id="SomeOtherLogIdentifier00")


def test_create_never_overwrites(tmp_path: Path, ring: KeyRing) -> None:
    log, _, path = make_log(tmp_path, ring)
    log.close()
    with pytest.raises(FileExistsError):
        RecordLog.create(path, ring, log_id=LOG_ID)


def test_torn_tail_truncated_at_every_offset(tmp_path: Path, ring: KeyRing) -> None:
    log, wrapped, path = make_log(tmp_path, ring)
    log.append_many([b"one", b"two"])
    log.append(b"three")
    good_size = log.size
    log.append(b"last record, never acknowledged")
    log.close()
    full = path.read_bytes()
    for cut in range(good_size, len(full)):
        path.write_bytes(full[:cut])
        log2, records = reopen(path, ring, wrapped)
        assert records == [b"one", b"two", b"three"], cut
        assert path.stat().st_size == good_size
        # The cut tail is rewritten with a fresh nonce; the log stays readable.
        log2.append(b"again")
        log2.close()
        assert reopen(path, ring, wrapped)[1][-1] == b"again"


def test_batch_without_commit_record_is_dropped(tmp_path: Path, ring: KeyRing) -> None:
    log, wrapped, path = make_log(tmp_path, ring)
    log.append(b"kept")
    kept = log.size
    log.append_many([b"a", b"b", b"c"])
    log.close()
    full = path.read_bytes()
    # Cut exactly after the first record of the torn batch: the parse is clean but
    # the batch never got its COMMIT record, so none of it was acknowledged.
    body = int.from_bytes(full[kept : kept + 4], "big")
    path.write_bytes(full[: kept + 4 + body])
    log2, records = reopen(path, ring, wrapped)
    assert records == [b"kept"]
    log2.close()


def test_damaged_record_inside_last_batch_is_a_torn_write(tmp_path: Path, ring: KeyRing) -> None:
    # Pages of one unsynced write can reach the disk out of order: the batch's
    # later records may be intact while an earlier one is not.
    log, wrapped, path = make_log(tmp_path, ring)
    log.append(b"kept")
    kept = log.size
    log.append_many([b"a" * 50, b"b" * 50, b"c" * 50])
    log.close()
    data = bytearray(path.read_bytes())
    data[kept + 30] ^= 0x01
    path.write_bytes(bytes(data))
    log2, records = reopen(path, ring, wrapped)
    assert records == [b"kept"]
    log2.close()


@pytest.mark.parametrize("where", ["ciphertext", "length", "nonce"])
def test_mid_file_bit_flip_is_corruption(tmp_path: Path, ring: KeyRing, where: str) -> None:
    log, wrapped, path = make_log(tmp_path, ring)
    offsets = []
    for i in range(5):
        offsets.append(log.size)
        log.append(f"record {i}".encode() * 5)
    log.close()
    data = bytearray(path.read_bytes())
    before = bytes(data)
    pos = offsets[2] + {"length": 2, "nonce": 6, "ciphertext": 30}[where]
    data[pos] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        reopen(path, ring, wrapped)
    # Nothing was "repaired" away.
    assert len(path.read_bytes()) == len(before)


def test_header_damage_refused(tmp_path: Path, ring: KeyRing) -> None:
    log, wrapped, path = make_log(tmp_path, ring)
    log.append(b"a")
    log.close()
    data = bytearray(path.read_bytes())
    data[4] = 9
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="version"):
        reopen(path, ring, wrapped)


def test_fsync_failure_is_not_acknowledged(
    tmp_path: Path, ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    log, wrapped, path = make_log(tmp_path, ring)
    log.append(b"durable")

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "simulated EIO")

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", failing_fsync)
        with pytest.raises(DurableWriteError):
            log.append_many([b"lost-1", b"lost-2"])
    assert log.record_count == 1
    # The log refuses to continue on a file in unknown state.
    with pytest.raises(DurableWriteError):
        log.append(b"after failure")
    log.close()
    log2, records = reopen(path, ring, wrapped)
    assert records == [b"durable"]
    log2.close()


def test_oversized_record_refused(tmp_path: Path, ring: KeyRing) -> None:
    log, _, _ = make_log(tmp_path, ring)

    class Huge(bytes):
        def __len__(self) -> int:
            return MAX_RECORD_SIZE + 1

    with pytest.raises(Exception, match="exceeds"):
        log.append(Huge(b"x"))
    log.close()


def test_canary_never_on_disk(tmp_path: Path, ring: KeyRing) -> None:
    canary = b"CANARY-plein-log-7f3a"
    log, wrapped, path = make_log(tmp_path, ring)
    log.append_many([canary, b"prefix " + canary + b" suffix"])
    log.close()
    for f in all_files(tmp_path):
        assert canary not in f.read_bytes(), f
    assert reopen(path, ring, wrapped)[1][0] == canary
