"""The key ring: key-encryption keys (KEKs) in a key file, and DEK wrapping.

Key file (JSON, mode 0600, outside the database)::

    {"format": "plein-keyring", "version": 1, "active": "<kek_id>",
     "keys": [{"id": "<kek_id>", "key": "<base64 of 32 bytes>",
               "created_at": "<iso utc>", "retired": false}]}

Every blob has its own random data key (DEK).  The DEK is stored in the
database *wrapped*: AES-256-GCM under the active KEK with the associated data
``b"plein-dek-v1" | len | kek_id | len | blob_id`` (2-byte big-endian lengths,
so no two (kek_id, blob_id) pairs share an encoding).  Binding the blob id
means a wrapped key copied onto another blob's row does not unwrap.

Short database values (titles, names, comment bodies) are sealed with
``seal_field``: AES-256-GCM under a *field key* = HKDF-SHA256(KEK, info =
``b"plein-field-v1"``), so the KEK itself never encrypts two kinds of data.
The sealed text is ``v1:<kek_id>:<base64url(nonce | ciphertext | tag)>`` and
the associated data binds the key id and a context string (``table.column``):
a value copied into another column, or relabelled with another key id, fails
authentication instead of decrypting.

Retired KEKs are never used to wrap, but still unwrap: retiring is the step
*after* every row has been rewrapped, and refusing to read a straggler row
would lose data rather than protect it.  Deleting a retired key from the file
is a deliberate manual step.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import stat
import struct
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage import _fs
from storage.errors import IntegrityError, KeyFileError, UnknownKeyError

__all__ = ["FIELD_PREFIX", "KEY_SIZE", "KeyRing", "Keys", "WrappedKey", "field_kek_id",
           "new_data_key"]

KEY_SIZE = 32
_FORMAT = "plein-keyring"
_VERSION = 1
_WRAP_TAG = b"plein-dek-v1"
_WRAPPED_VERSION = 1
_NONCE_SIZE = 12
_WRAPPED_DATA_SIZE = _NONCE_SIZE + KEY_SIZE + 16  # nonce | encrypted DEK | GCM tag
_KEK_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
FIELD_PREFIX = "v1:"
_FIELD_TAG = b"plein-field-v1"
# A key file holding thousands of keys is still far below this; anything
# bigger is not our file and is not read into memory.
_MAX_KEY_FILE_SIZE = 1 << 20


def new_data_key() -> bytes:
    """Return a fresh random 32-byte data key (one per blob, never reused)."""
    return secrets.token_bytes(KEY_SIZE)


def _new_kek_id() -> str:
    return secrets.token_urlsafe(9)  # 12 url-safe characters


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _wrap_ad(kek_id: str, blob_id: str) -> bytes:
    kid = kek_id.encode("utf-8")
    bid = blob_id.encode("utf-8")
    return _WRAP_TAG + struct.pack(">H", len(kid)) + kid + struct.pack(">H", len(bid)) + bid


def _field_ad(kek_id: str, context: str) -> bytes:
    kid = kek_id.encode("utf-8")
    ctx = context.encode("utf-8")
    return _FIELD_TAG + struct.pack(">H", len(kid)) + kid + struct.pack(">H", len(ctx)) + ctx


def field_kek_id(value: str) -> str:
    """The key id a sealed field value names (IntegrityError if it is not one)."""
    if not value.startswith(FIELD_PREFIX):
        raise IntegrityError("sealed value: unknown format version")
    kek_id, sep, _ = value[len(FIELD_PREFIX):].partition(":")
    if not sep or _KEK_ID_RE.fullmatch(kek_id) is None:
        raise IntegrityError("sealed value: malformed key id")
    return kek_id


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A DEK encrypted under the KEK ``kek_id``; ``data`` = nonce | ciphertext | tag.

    ``to_bytes()`` layout (one DB column): version byte (1) | kek_id length
    byte | kek_id (ASCII) | data (60 bytes).
    """

    kek_id: str
    data: bytes

    def to_bytes(self) -> bytes:
        kid = self.kek_id.encode("ascii")
        return bytes([_WRAPPED_VERSION, len(kid)]) + kid + self.data

    @classmethod
    def from_bytes(cls, raw: bytes) -> WrappedKey:
        raw = bytes(raw)
        if len(raw) < 2 or raw[0] != _WRAPPED_VERSION:
            raise IntegrityError("wrapped key: unknown format version")
        n = raw[1]
        kid_raw, data = raw[2 : 2 + n], raw[2 + n :]
        try:
            kek_id = kid_raw.decode("ascii")
        except UnicodeDecodeError:
            raise IntegrityError("wrapped key: malformed key id") from None
        if len(kid_raw) != n or _KEK_ID_RE.fullmatch(kek_id) is None:
            raise IntegrityError("wrapped key: malformed key id")
        if len(data) != _WRAPPED_DATA_SIZE:
            raise IntegrityError("wrapped key: wrong length")
        return cls(kek_id, data)


class Keys(Protocol):
    """What a store needs from the keys: a ``KeyRing``, or the ``KeySource`` that reloads
    one when the key file changes (what a running server uses)."""

    @property
    def active_id(self) -> str: ...

    def wrap(self, dek: bytes, blob_id: str) -> WrappedKey: ...

    def unwrap(self, wrapped: WrappedKey, blob_id: str) -> bytes: ...

    def rewrap(self, wrapped: WrappedKey, blob_id: str) -> WrappedKey: ...


@dataclass(slots=True)
class _Kek:
    id: str
    key: bytes = field(repr=False)
    created_at: str
    retired: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": base64.b64encode(self.key).decode("ascii"),
            "created_at": self.created_at,
            "retired": self.retired,
        }


def _parse_kek(entry: object, path: Path) -> _Kek:
    if not isinstance(entry, dict):
        raise KeyFileError(f"{path}: key entry is not an object")
    kid, key_b64 = entry.get("id"), entry.get("key")
    created_at, retired = entry.get("created_at"), entry.get("retired", False)
    if not isinstance(kid, str) or _KEK_ID_RE.fullmatch(kid) is None:
        raise KeyFileError(f"{path}: key entry has a missing or malformed id")
    if not isinstance(key_b64, str):
        raise KeyFileError(f"{path}: key {kid} has no key material")
    try:
        key = base64.b64decode(key_b64, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"{path}: key {kid} is not valid base64") from None
    if len(key) != KEY_SIZE:
        raise KeyFileError(f"{path}: key {kid} is {len(key)} bytes, expected {KEY_SIZE}")
    if not isinstance(created_at, str) or not isinstance(retired, bool):
        raise KeyFileError(f"{path}: key {kid} has malformed created_at/retired")
    return _Kek(kid, key, created_at, retired)


def _read_key_file(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"key file {path} cannot be opened: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        # Readable-by-group is a deployment choice (e.g. a shared service group);
        # writable-by-others means someone else can swap our keys: refuse.
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise KeyFileError(
                f"key file {path} is group- or world-writable "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it"
            )
        if st.st_size > _MAX_KEY_FILE_SIZE:
            raise KeyFileError(f"key file {path} is too large to be a key file")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(_MAX_KEY_FILE_SIZE + 1)
    except OSError as exc:
        raise KeyFileError(f"key file {path} cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)


class KeyRing:
    """The set of KEKs from one key file; one of them is active (used to wrap).

    Thread-safe: mutations and the lookups they race with hold one lock.
    """

    def __init__(self, path: Path, keys: list[_Kek], active_id: str) -> None:
        self._path = path
        self._keys = {k.id: k for k in keys}
        self._active_id = active_id
        self._aead: dict[str, AESGCM] = {}
        self._field_aead: dict[str, AESGCM] = {}
        self._lock = threading.RLock()

    # -- construction -------------------------------------------------------

    @classmethod
    def create(cls, path: Path) -> KeyRing:
        """Create a new key file with one active KEK. Refuses to overwrite."""
        path = Path(path)
        kek = _Kek(_new_kek_id(), secrets.token_bytes(KEY_SIZE), _utc_now(), False)
        ring = cls(path, [kek], kek.id)
        if path.exists() or path.is_symlink():
            raise KeyFileError(f"key file {path} already exists; refusing to overwrite it")
        _fs.ensure_dir(path.parent)
        try:
            ring._write(overwrite=False)
        except FileExistsError:
            raise KeyFileError(
                f"key file {path} already exists; refusing to overwrite it"
            ) from None
        return ring

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """Load and validate a key file; any problem raises KeyFileError."""
        path = Path(path)
        raw = _read_key_file(path)
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise KeyFileError(f"key file {path} is not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise KeyFileError(f"{path} is not a Plein key file (format is not {_FORMAT!r})")
        if doc.get("version") != _VERSION:
            raise KeyFileError(f"key file {path} has unsupported version {doc.get('version')!r}")
        entries = doc.get("keys")
        if not isinstance(entries, list) or not entries:
            raise KeyFileError(f"key file {path} holds no keys")
        keys = [_parse_kek(e, path) for e in entries]
        if len({k.id for k in keys}) != len(keys):
            raise KeyFileError(f"key file {path} has duplicate key ids")
        active = doc.get("active")
        by_id = {k.id: k for k in keys}
        if not isinstance(active, str) or active not in by_id:
            raise KeyFileError(f"key file {path}: active key {active!r} is not in the file")
        if by_id[active].retired:
            raise KeyFileError(f"key file {path}: active key {active} is marked retired")
        return cls(path, keys, active)

    @classmethod
    def load_or_create(cls, path: Path) -> KeyRing:
        """Load the key file, creating it first if it does not exist (first run)."""
        path = Path(path)
        if not path.exists() and not path.is_symlink():
            try:
                return cls.create(path)
            except KeyFileError:
                if not path.exists():
                    raise
                # Lost a creation race with another process: use its file.
        return cls.load(path)

    # -- persistence ----------------------------------------------------------

    def _write(self, *, overwrite: bool) -> None:
        doc = {
            "format": _FORMAT,
            "version": _VERSION,
            "active": self._active_id,
            "keys": [k.to_json() for k in self._keys.values()],
        }
        data = (json.dumps(doc, indent=2) + "\n").encode("utf-8")
        _fs.durable_write_bytes(self._path, [data], mode=0o600, overwrite=overwrite)

    def save(self) -> None:
        """Durably rewrite the key file from the in-memory ring."""
        with self._lock:
            self._write(overwrite=True)

    # -- key management -------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def active_id(self) -> str:
        return self._active_id

    def key_ids(self) -> list[str]:
        """All KEK ids in file order (oldest first), retired ones included."""
        with self._lock:
            return list(self._keys)

    def is_retired(self, kek_id: str) -> bool:
        with self._lock:
            return self._get(kek_id).retired

    def add_key(self) -> str:
        """Add a new KEK, make it active, save durably; return its id."""
        with self._lock:
            kek = _Kek(_new_kek_id(), secrets.token_bytes(KEY_SIZE), _utc_now(), False)
            previous = self._active_id
            self._keys[kek.id] = kek
            self._active_id = kek.id
            try:
                self._write(overwrite=True)
            except BaseException:
                # Not durable -> not in effect: never wrap with a key that may be lost.
                del self._keys[kek.id]
                self._active_id = previous
                raise
            return kek.id

    def retire(self, kek_id: str) -> None:
        """Mark a KEK retired (never used to wrap again) and save durably."""
        with self._lock:
            kek = self._get(kek_id)
            if kek_id == self._active_id:
                raise KeyFileError(f"refusing to retire the active key {kek_id}")
            if kek.retired:
                return
            kek.retired = True
            try:
                self._write(overwrite=True)
            except BaseException:
                kek.retired = False
                raise

    def _get(self, kek_id: str) -> _Kek:
        try:
            return self._keys[kek_id]
        except KeyError:
            raise UnknownKeyError(f"key {kek_id!r} is not in the key ring") from None

    def _aead_for(self, kek_id: str) -> AESGCM:
        with self._lock:
            aead = self._aead.get(kek_id)
            if aead is None:
                aead = self._aead[kek_id] = AESGCM(self._get(kek_id).key)
            return aead

    # -- wrapping ---------------------------------------------------------------

    def wrap(self, dek: bytes, blob_id: str) -> WrappedKey:
        """Encrypt ``dek`` for ``blob_id`` under the active KEK."""
        if len(dek) != KEY_SIZE:
            raise ValueError(f"data key must be {KEY_SIZE} bytes")
        with self._lock:
            kek_id = self._active_id
            aead = self._aead_for(kek_id)
        nonce = secrets.token_bytes(_NONCE_SIZE)
        sealed = aead.encrypt(nonce, bytes(dek), _wrap_ad(kek_id, blob_id))
        return WrappedKey(kek_id, nonce + sealed)

    def unwrap(self, wrapped: WrappedKey, blob_id: str) -> bytes:
        """Recover the DEK of ``blob_id``; IntegrityError if it belongs elsewhere."""
        aead = self._aead_for(wrapped.kek_id)
        if len(wrapped.data) != _WRAPPED_DATA_SIZE:
            raise IntegrityError("wrapped key: wrong length")
        nonce, ct = wrapped.data[:_NONCE_SIZE], wrapped.data[_NONCE_SIZE:]
        try:
            return aead.decrypt(nonce, ct, _wrap_ad(wrapped.kek_id, blob_id))
        except InvalidTag:
            raise IntegrityError(
                f"wrapped key for blob {blob_id} failed authentication "
                f"(wrong blob, wrong key {wrapped.kek_id}, or corrupted)"
            ) from None

    def rewrap(self, wrapped: WrappedKey, blob_id: str) -> WrappedKey:
        """Unwrap with the key's own KEK, wrap again under the active KEK."""
        return self.wrap(self.unwrap(wrapped, blob_id), blob_id)

    # -- sealed database fields ---------------------------------------------------

    def _field_aead_for(self, kek_id: str) -> AESGCM:
        with self._lock:
            aead = self._field_aead.get(kek_id)
            if aead is None:
                hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=None,
                            info=_FIELD_TAG)
                aead = self._field_aead[kek_id] = AESGCM(hkdf.derive(self._get(kek_id).key))
            return aead

    def seal_field(self, plaintext: bytes, context: str) -> str:
        """Encrypt a short value for the place ``context`` (e.g. ``"comments.body"``)."""
        with self._lock:
            kek_id = self._active_id
            aead = self._field_aead_for(kek_id)
        nonce = secrets.token_bytes(_NONCE_SIZE)
        sealed = aead.encrypt(nonce, plaintext, _field_ad(kek_id, context))
        return f"{FIELD_PREFIX}{kek_id}:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open_field(self, value: str, context: str) -> bytes:
        """Decrypt ``seal_field``'s output; IntegrityError if tampered, moved or malformed,
        UnknownKeyError if it names a key this ring does not hold."""
        kek_id = field_kek_id(value)
        aead = self._field_aead_for(kek_id)
        body = value[len(FIELD_PREFIX) + len(kek_id) + 1:]
        try:
            raw = base64.urlsafe_b64decode(body.encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise IntegrityError(f"sealed value in {context}: not base64") from None
        if len(raw) < _NONCE_SIZE + 16:
            raise IntegrityError(f"sealed value in {context}: too short")
        try:
            return aead.decrypt(raw[:_NONCE_SIZE], raw[_NONCE_SIZE:], _field_ad(kek_id, context))
        except InvalidTag:
            raise IntegrityError(
                f"sealed value in {context} failed authentication "
                f"(moved from another column, wrong key {kek_id}, or corrupted)"
            ) from None

    def __repr__(self) -> str:  # never show key material
        return f"KeyRing(path={str(self._path)!r}, active={self._active_id!r})"
