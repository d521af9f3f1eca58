"""Plein storage: encrypted, crash-safe, immutable blob storage.

Public face (everything else is an implementation detail):

* keys: ``KeyRing`` (key file of KEKs; wrap/unwrap/rewrap data keys; sealed fields),
  ``KeySource`` (the key file, reloaded when it changes: what every store of a server
  shares), ``Keys`` (the protocol stores accept), ``field_kek_id``,
  ``WrappedKey``, ``new_data_key``
* streaming AEAD (blob format v1): ``Encryptor``, ``Decryptor``,
  ``SeekableDecryptor``, ``plaintext_size``, ``ciphertext_size``
* stores: ``BlobStore`` / ``BlobWriter`` / ``BlobReader`` protocols,
  ``LocalBlobStore``, ``BlobInfo``, ``new_blob_id``, ``validate_blob_id``
* record log (sync's CRDT update log): ``RecordLog``
* durable filesystem helpers (for other packages' small files):
  ``durable_write_bytes``, ``ensure_dir``, ``fsync_dir``, ``remove_file``
* maintenance: ``collect_orphans``, ``verify_blob``/``VerifyResult``, ``rewrap_all``
* errors: ``StorageError`` and subclasses (see ``storage.errors``)

This package imports nothing from ``app``, ``sync`` or ``indexer``.
"""

from storage._fs import durable_write_bytes, ensure_dir, fsync_dir, remove_file
from storage.blobstore import BlobInfo, BlobReader, BlobStore, BlobWriter, LocalBlobStore
from storage.errors import (
    BlobNotFound,
    DurableWriteError,
    IntegrityError,
    InvalidBlobId,
    KeyFileError,
    StorageError,
    UnknownKeyError,
)
from storage.ids import new_blob_id, validate_blob_id
from storage.keys import FIELD_PREFIX, KeyRing, Keys, WrappedKey, field_kek_id, new_data_key
from storage.keysource import KeySource
from storage.log import RecordLog
from storage.maintenance import VerifyResult, collect_orphans, rewrap_all, verify_blob
from storage.stream import (
    Decryptor,
    Encryptor,
    SeekableDecryptor,
    ciphertext_size,
    plaintext_size,
)

__all__ = [
    "FIELD_PREFIX",
    "BlobInfo",
    "BlobNotFound",
    "BlobReader",
    "BlobStore",
    "BlobWriter",
    "Decryptor",
    "DurableWriteError",
    "Encryptor",
    "IntegrityError",
    "InvalidBlobId",
    "KeyFileError",
    "KeyRing",
    "KeySource",
    "Keys",
    "LocalBlobStore",
    "RecordLog",
    "SeekableDecryptor",
    "StorageError",
    "UnknownKeyError",
    "VerifyResult",
    "WrappedKey",
    "ciphertext_size",
    "collect_orphans",
    "durable_write_bytes",
    "field_kek_id",
    "ensure_dir",
    "fsync_dir",
    "new_blob_id",
    "new_data_key",
    "plaintext_size",
    "remove_file",
    "rewrap_all",
    "validate_blob_id",
    "verify_blob",
]
