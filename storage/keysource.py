"""One reloadable view of the key file, shared by every store of a process.

``plein keys rotate`` runs beside live servers: it adds a KEK, rewraps every data key under it
(blob rows, note manifests, sealed database fields) and retires the old one. A server that kept
the ring it loaded at start-up would then meet key ids it has never seen. ``KeySource`` is what
every store holds instead of a ``KeyRing``:

* ``ring()`` stats the key file and reloads it when its (inode, mtime, size) signature changed.
  Rotation replaces the file with ``os.replace``, so the inode changes even where mtimes are
  coarse; the signature is taken *before* loading, so a change during the load only costs one
  extra reload later.
* ``unwrap``/``open_field`` reload once more, unconditionally, on ``UnknownKeyError``: a row
  rewrapped by a rotation whose file change has the same signature (within the clock's
  granularity) is still read.
* ``add_key``/``retire`` change the file through the current ring and adopt the result, so
  the process that rotates uses the new key at once.

A stat per key use is cheap next to the AES work it guards. A key file that cannot be read
at reload time (mid-edit by hand, say) leaves the ring we have in place; the next use tries
again.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from storage.errors import KeyFileError, UnknownKeyError
from storage.keys import KeyRing, WrappedKey

__all__ = ["KeySource"]

log = logging.getLogger("plein.storage")

_Signature = tuple[int, int, int]


def _signature(path: Path) -> _Signature | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class KeySource:
    """The key file at ``path``, reloaded when it changes. Thread-safe."""

    def __init__(self, path: Path, ring: KeyRing, signature: _Signature | None) -> None:
        self._path = Path(path)
        self._ring = ring
        self._signature = signature
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path) -> KeySource:
        path = Path(path)
        signature = _signature(path)
        return cls(path, KeyRing.load(path), signature)

    @classmethod
    def create(cls, path: Path) -> KeySource:
        path = Path(path)
        ring = KeyRing.create(path)
        return cls(path, ring, _signature(path))

    @property
    def path(self) -> Path:
        return self._path

    # -- the current ring ------------------------------------------------------------

    def ring(self) -> KeyRing:
        """The ring as the key file holds it now (reloaded if the file changed)."""
        signature = _signature(self._path)
        if signature is None or signature == self._signature:
            return self._ring
        return self._reload(signature)

    def reload(self) -> KeyRing:
        """Read the key file again whatever its signature says."""
        return self._reload(_signature(self._path), force=True)

    def _reload(self, signature: _Signature | None, *, force: bool = False) -> KeyRing:
        with self._lock:
            if not force and signature == self._signature:
                return self._ring  # another thread reloaded it meanwhile
            try:
                ring = KeyRing.load(self._path)
            except KeyFileError as exc:
                log.warning("key file changed but cannot be read (%s); keeping the loaded keys",
                            exc)
                return self._ring
            self._ring, self._signature = ring, signature
            return ring

    # -- what the stores use (the KeyRing interface they need) -------------------------

    @property
    def active_id(self) -> str:
        return self.ring().active_id

    def key_ids(self) -> list[str]:
        return self.ring().key_ids()

    def is_retired(self, kek_id: str) -> bool:
        return self.ring().is_retired(kek_id)

    def wrap(self, dek: bytes, blob_id: str) -> WrappedKey:
        return self.ring().wrap(dek, blob_id)

    def unwrap(self, wrapped: WrappedKey, blob_id: str) -> bytes:
        try:
            return self.ring().unwrap(wrapped, blob_id)
        except UnknownKeyError:
            return self.reload().unwrap(wrapped, blob_id)

    def rewrap(self, wrapped: WrappedKey, blob_id: str) -> WrappedKey:
        return self.wrap(self.unwrap(wrapped, blob_id), blob_id)

    def seal_field(self, plaintext: bytes, context: str) -> str:
        return self.ring().seal_field(plaintext, context)

    def open_field(self, value: str, context: str) -> bytes:
        try:
            return self.ring().open_field(value, context)
        except UnknownKeyError:
            return self.reload().open_field(value, context)

    # -- changes (``plein keys rotate``) -------------------------------------------------

    def add_key(self) -> str:
        """A new active KEK, saved durably; this process uses it from now on."""
        with self._lock:
            kek_id = self._current_locked().add_key()
            self._signature = _signature(self._path)
            return kek_id

    def retire(self, kek_id: str) -> None:
        with self._lock:
            self._current_locked().retire(kek_id)
            self._signature = _signature(self._path)

    def _current_locked(self) -> KeyRing:
        # Change the file as it is now, not as we loaded it: another rotation may have run.
        if _signature(self._path) != self._signature:
            self._ring = KeyRing.load(self._path)
        return self._ring

    def __repr__(self) -> str:
        return f"KeySource(path={str(self._path)!r})"
