"""Worker threads for the bytes of uploads and downloads, apart from the pool the rest of the
server shares.

anyio's default limiter (40 threads) also runs the database transactions and the live-editing
log's appends and fsyncs: a burst of large uploads or downloads holding its tokens would make
an edit wait behind a gigabyte. Blob I/O takes its tokens from its own limiter instead, sized
to the cores (hashing, AES-GCM and ``os.write`` release the GIL, so more threads than cores only
queue for the CPU); uploads beyond it wait their turn, the rest of the server does not.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, Unpack

import anyio
from anyio.lowlevel import RunVar

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

BLOB_IO_THREADS = max(4, 2 * (os.cpu_count() or 1))
# One limiter per event loop (tests run many): an anyio limiter belongs to its loop.
_limiter: RunVar[anyio.CapacityLimiter] = RunVar("blob_io_limiter")


def blob_io_limiter() -> anyio.CapacityLimiter:
    try:
        return _limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(BLOB_IO_THREADS)
        _limiter.set(limiter)
        return limiter


async def run_blob_io(fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
    """``fn(*args)`` in a worker thread counted against the blob I/O limiter."""
    return await anyio.to_thread.run_sync(fn, *args, limiter=blob_io_limiter())
