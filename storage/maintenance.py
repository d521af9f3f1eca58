"""Housekeeping over a BlobStore: orphan collection, fsck, KEK rotation.

These take plain values from the application (the ids the database knows,
rows of (blob_id, wrapped key)) so storage never needs to import ``app``.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from storage.blobstore import BlobStore
from storage.errors import BlobNotFound, IntegrityError, StorageError, UnknownKeyError
from storage.keys import Keys, WrappedKey

__all__ = ["VerifyResult", "collect_orphans", "rewrap_all", "verify_blob"]


def collect_orphans(
    store: BlobStore,
    known_ids: set[str],
    min_age_seconds: float,
    *,
    now: float | None = None,
) -> list[str]:
    """Delete blobs on disk that the database does not know; return their ids.

    A blob is committed to disk *before* the row that references it, so a
    young unknown blob may be an upload whose row is about to commit: only
    blobs at least ``min_age_seconds`` old are deleted.  Take ``known_ids``
    from a committed read; ``min_age_seconds`` must exceed the longest gap
    between a blob commit and its row commit plus the duration of this scan.
    """
    if min_age_seconds < 0:
        raise ValueError("min_age_seconds must be >= 0")
    cutoff = (time.time() if now is None else now) - min_age_seconds
    removed: list[str] = []
    for blob_id in store.iter_blob_ids():
        if blob_id in known_ids:
            continue
        try:
            if store.blob_mtime(blob_id) > cutoff:
                continue
        except BlobNotFound:
            continue
        if store.delete(blob_id):
            removed.append(blob_id)
    return removed


@dataclass(frozen=True, slots=True)
class VerifyResult:
    blob_id: str
    ok: bool
    reason: str | None = None  # None when ok; a short description for the fsck report


def verify_blob(
    store: BlobStore,
    blob_id: str,
    wrapped_key: WrappedKey,
    expected_sha256: str,
    expected_size: int,
) -> VerifyResult:
    """Read and authenticate a whole blob and compare size and hash (never raises
    for a bad blob: the reason is in the result)."""

    def bad(reason: str) -> VerifyResult:
        return VerifyResult(blob_id, False, reason)

    try:
        with store.open_reader(blob_id, wrapped_key) as reader:
            if reader.size != expected_size:
                return bad(f"size mismatch: expected {expected_size}, stored {reader.size}")
            sha = hashlib.sha256()
            for chunk in reader.iter_chunks():
                sha.update(chunk)
    except BlobNotFound:
        return bad("missing")
    except UnknownKeyError as exc:
        return bad(f"unknown key: {exc}")
    except IntegrityError as exc:
        return bad(f"integrity: {exc}")
    except StorageError as exc:  # includes InvalidBlobId and read errors
        return bad(f"error: {exc}")
    if not hmac.compare_digest(sha.hexdigest(), expected_sha256.lower()):
        return bad("sha256 mismatch")
    return VerifyResult(blob_id, True)


def rewrap_all(
    ring: Keys,
    rows: Iterable[tuple[str, WrappedKey]],
    *,
    skip_active: bool = True,
) -> Iterator[tuple[str, WrappedKey]]:
    """Yield ``(blob_id, new_wrapped_key)`` for rows to move to the active KEK.

    Pure and lazy: the application streams rows in and writes the results back
    in its own batches/transactions.  Blob files are never touched.  With
    ``skip_active`` (default) rows already under the active KEK are not
    yielded, so an interrupted rotation can simply be run again.  A row whose
    key fails to unwrap raises (IntegrityError/UnknownKeyError) — rotation must
    not silently leave a row behind on a key that is about to be retired.
    """
    for blob_id, wrapped in rows:
        if skip_active and wrapped.kek_id == ring.active_id:
            continue
        yield blob_id, ring.rewrap(wrapped, blob_id)
