"""Streaming keeps memory constant whatever the blob size."""

from __future__ import annotations

import hashlib
import tracemalloc

from storage import LocalBlobStore

MIB = 1 << 20
TOTAL_MIB = 200
LIMIT = 4 * MIB


def test_large_blob_constant_memory(store: LocalBlobStore) -> None:
    piece = bytearray(range(256)) * (MIB // 256)
    expected = hashlib.sha256()
    tracemalloc.start()
    try:
        with store.open_writer() as w:
            for i in range(TOTAL_MIB):
                piece[:4] = i.to_bytes(4, "big")  # vary the content, reuse the buffer
                expected.update(piece)
                w.write(piece)
            info = w.commit()
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()

        got = hashlib.sha256()
        with store.open_reader(info.blob_id, info.wrapped_key) as r:
            for chunk in r.iter_chunks():
                got.update(chunk)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == TOTAL_MIB * MIB
    assert info.sha256 == expected.hexdigest() == got.hexdigest()
    assert write_peak < LIMIT, f"write peak {write_peak / MIB:.1f} MiB"
    assert read_peak < LIMIT, f"read peak {read_peak / MIB:.1f} MiB"
