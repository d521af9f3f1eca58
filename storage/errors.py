"""Exceptions raised by the storage package.

Everything the package raises on purpose derives from one base, so callers can
catch storage failures without catching programming errors::

    StorageError
    ├── KeyFileError        key file missing, unreadable, corrupt, or group/world-writable
    ├── UnknownKeyError     a wrapped key names a KEK the key ring does not hold
    ├── IntegrityError      any authentication or format failure (names the chunk index)
    ├── BlobNotFound        no blob file for this id
    ├── InvalidBlobId       an id that is not one the store could have generated
    │                       (also a ValueError)
    └── DurableWriteError   an OSError during write/flush/fsync/rename/unlink;
                            the write failed and was cleaned up, never acknowledged

None of the messages contain key material or plaintext.
"""

from __future__ import annotations

__all__ = [
    "BlobNotFound",
    "DurableWriteError",
    "IntegrityError",
    "InvalidBlobId",
    "KeyFileError",
    "StorageError",
    "UnknownKeyError",
]


class StorageError(Exception):
    """Base class of every error the storage package raises deliberately."""


class KeyFileError(StorageError):
    """The key file is missing, unreadable, corrupt, or unsafely writable."""


class UnknownKeyError(StorageError):
    """A key-encryption key id is not present in the key ring."""


class IntegrityError(StorageError):
    """Ciphertext or a wrapped key failed authentication or is malformed.

    Raised for tampering and corruption alike: from the reader's point of view
    the two are indistinguishable, and both mean "do not trust these bytes".
    """


class BlobNotFound(StorageError):
    """No blob is stored under this id."""


class InvalidBlobId(StorageError, ValueError):
    """A blob id outside the generated alphabet/length (never turned into a path)."""


class DurableWriteError(StorageError):
    """A write could not be made durable; temp files were removed.

    An OSError from fsync means the kernel may have dropped the dirty pages:
    retrying the fsync can "succeed" without the data being on disk, so the
    whole write is failed instead (see SECURITY.md, "Crash safety").
    """
