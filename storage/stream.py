"""Streaming AEAD for blobs: format v1 (Tink streaming-AEAD / age STREAM family).

Layout::

    header  = b"PLNB" | version (1) | algorithm (1) | chunk-size exponent (16) | salt (16 bytes)
    chunk i = AES-256-GCM(payload_key, nonce_i, plaintext_i, associated_data=header)
            = ciphertext_i | 16-byte tag

* ``payload_key = HKDF-SHA256(ikm=DEK, salt=salt, info=b"plein-blob-v1" | blob_id)``
  (32 bytes).  A fresh salt per blob means a fresh key even if a DEK were ever reused.
* Plaintext is cut into 64 KiB chunks; every chunk but the last is exactly 64 KiB.
* ``nonce_i = i as 8-byte big-endian | 3 zero bytes | final flag (1 on the last chunk, else 0)``.
  The index binds each chunk to its position (no reordering/dropping), the final
  flag makes truncation at a chunk boundary detectable, the header as associated
  data binds every chunk to this header (and its salt).
* Empty plaintext = one empty final chunk.  A non-empty plaintext never ends with
  an empty final chunk: the encryptor holds one chunk back so it knows which is last.

Because every chunk except the last has the same size, chunk ``i`` starts at
``HEADER_SIZE + i * CIPHER_CHUNK_SIZE``: ranges are read by seeking straight to
the chunks they need (:class:`SeekableDecryptor`).

Nothing is ever returned from a chunk before its tag verified (AESGCM.decrypt
authenticates before it returns).  Failures raise IntegrityError naming the chunk.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.errors import IntegrityError, StorageError

__all__ = [
    "CHUNK_SIZE",
    "CIPHER_CHUNK_SIZE",
    "HEADER_SIZE",
    "Decryptor",
    "Encryptor",
    "SeekableDecryptor",
    "build_header",
    "chunk_nonce",
    "ciphertext_size",
    "derive_payload_key",
    "parse_header",
    "plaintext_size",
]

MAGIC = b"PLNB"
VERSION = 1
ALG_AES256GCM_HKDF_SHA256 = 1
CHUNK_EXPONENT = 16
CHUNK_SIZE = 1 << CHUNK_EXPONENT
SALT_SIZE = 16
TAG_SIZE = 16
HEADER_SIZE = len(MAGIC) + 3 + SALT_SIZE  # 23
CIPHER_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
# The nonce carries an 8-byte index; one more chunk would repeat a nonce.
MAX_CHUNKS = 1 << 64
_KDF_INFO = b"plein-blob-v1"

Emit = Callable[[bytes | bytearray], object]


def build_header(salt: bytes) -> bytes:
    if len(salt) != SALT_SIZE:
        raise ValueError(f"salt must be {SALT_SIZE} bytes")
    return MAGIC + bytes([VERSION, ALG_AES256GCM_HKDF_SHA256, CHUNK_EXPONENT]) + salt


def parse_header(header: bytes) -> bytes:
    """Validate a header and return its salt."""
    if len(header) < HEADER_SIZE:
        raise IntegrityError("header: truncated")
    if header[:4] != MAGIC:
        raise IntegrityError("header: bad magic (not a Plein blob)")
    if header[4] != VERSION:
        raise IntegrityError(f"header: unknown format version {header[4]}")
    if header[5] != ALG_AES256GCM_HKDF_SHA256:
        raise IntegrityError(f"header: unknown algorithm {header[5]}")
    if header[6] != CHUNK_EXPONENT:
        raise IntegrityError(f"header: unsupported chunk-size exponent {header[6]}")
    return bytes(header[7:HEADER_SIZE])


def derive_payload_key(dek: bytes, salt: bytes, blob_id: str) -> bytes:
    if len(dek) != 32:
        raise ValueError("data key must be 32 bytes")
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=salt,
        info=_KDF_INFO + blob_id.encode("utf-8"),
    )
    return hkdf.derive(bytes(dek))


def chunk_nonce(index: int, final: bool) -> bytes:
    if not 0 <= index < MAX_CHUNKS:
        raise IntegrityError(f"chunk {index}: chunk counter overflow")
    return index.to_bytes(8, "big") + b"\x00\x00\x00" + (b"\x01" if final else b"\x00")


def _layout(ct_size: int) -> tuple[int, int]:
    """(chunk count, plaintext size) of a well-formed blob of ``ct_size`` bytes."""
    body = ct_size - HEADER_SIZE
    if body < 0:
        raise IntegrityError("header: truncated")
    if body == 0:
        raise IntegrityError("chunk 0: missing (no final chunk)")
    full, rem = divmod(body, CIPHER_CHUNK_SIZE)
    if rem == 0:
        # Ends at a chunk boundary: fine only if that last full chunk carries the
        # final flag, which the reader checks when it opens it.
        n, last = full, CHUNK_SIZE
    else:
        if rem < TAG_SIZE:
            raise IntegrityError(f"chunk {full}: truncated")
        n, last = full + 1, rem - TAG_SIZE
        if last == 0 and full > 0:
            raise IntegrityError(f"chunk {full}: empty final chunk after a non-empty payload")
    if n > MAX_CHUNKS:
        raise IntegrityError(f"chunk {MAX_CHUNKS}: chunk counter overflow")
    return n, (n - 1) * CHUNK_SIZE + last


def plaintext_size(ciphertext_size: int) -> int:
    """Plaintext length of a blob whose file is ``ciphertext_size`` bytes (IntegrityError if
    no well-formed blob has that size)."""
    return _layout(ciphertext_size)[1]


def ciphertext_size(plaintext_size: int) -> int:
    """File size of a blob holding ``plaintext_size`` bytes."""
    if plaintext_size < 0:
        raise ValueError("negative size")
    n = max(1, -(-plaintext_size // CHUNK_SIZE))
    return HEADER_SIZE + plaintext_size + n * TAG_SIZE


class _ChunkOpener:
    """Authenticates and decrypts single chunks, with precise error messages."""

    def __init__(self, dek: bytes, blob_id: str, header: bytes) -> None:
        salt = parse_header(header)
        self.header = bytes(header[:HEADER_SIZE])
        self._aead = AESGCM(derive_payload_key(dek, salt, blob_id))

    def _try(self, index: int, ct: bytes | bytearray | memoryview, final: bool) -> bytes | None:
        try:
            return self._aead.decrypt(chunk_nonce(index, final), ct, self.header)
        except InvalidTag:
            return None

    def open(
        self, index: int, ct: bytes | bytearray | memoryview, *, final: bool, more_follows: bool
    ) -> bytes:
        if len(ct) < TAG_SIZE:
            raise IntegrityError(f"chunk {index}: truncated")
        if final and index > 0 and len(ct) == TAG_SIZE:
            raise IntegrityError(f"chunk {index}: empty final chunk after a non-empty payload")
        plain = self._try(index, ct, final)
        if plain is not None:
            return plain
        # Diagnose on the failure path only: the other flag value tells a cut or
        # padded stream apart from corruption.  Its plaintext is never returned.
        if len(ct) == CIPHER_CHUNK_SIZE and self._try(index, ct, not final) is not None:
            if final:
                raise IntegrityError(
                    f"chunk {index}: no final chunk (stream truncated after chunk {index})"
                )
            if more_follows:
                raise IntegrityError(f"chunk {index}: data after the final chunk")
        raise IntegrityError(f"chunk {index}: authentication failed (corrupt or tampered)")

    def open_into(self, index: int, ct: memoryview, out: memoryview, *, final: bool,
                  more_follows: bool) -> None:
        """``open`` into a caller's buffer of exactly ``len(ct) - TAG_SIZE`` bytes. On failure
        the buffer may hold unverified bytes: the caller drops it (it raised)."""
        if len(ct) >= TAG_SIZE and not (final and index > 0 and len(ct) == TAG_SIZE):
            try:
                self._aead.decrypt_into(chunk_nonce(index, final), ct, self.header, out)
                return
            except InvalidTag:
                pass
        self.open(index, ct, final=final, more_follows=more_follows)  # raises, with the cause
        raise IntegrityError(f"chunk {index}: authentication failed (corrupt or tampered)")


class Encryptor:
    """Incremental encryptor: feed plaintext of any size, get ciphertext out.

    Holds back at most one chunk of plaintext (to know which chunk is last).
    ``update()`` returns the ciphertext produced so far (the header comes with
    the first output); ``finish()`` returns the rest, ending with the final chunk.
    ``feed()``/``finish_into()`` hand each piece to a callback instead of
    joining them, for constant-memory streaming to a file.
    """

    def __init__(self, dek: bytes, blob_id: str, *, salt: bytes | None = None) -> None:
        salt = secrets.token_bytes(SALT_SIZE) if salt is None else salt
        self.header = build_header(salt)
        self._aead = AESGCM(derive_payload_key(dek, salt, blob_id))
        self._buf = bytearray()
        self._index = 0
        self._header_sent = False
        self._finished = False

    def _seal(self, data: bytes | bytearray, final: bool) -> bytes:
        if self._index >= MAX_CHUNKS:
            raise StorageError("blob too large: chunk counter would overflow")
        ct = self._aead.encrypt(chunk_nonce(self._index, final), data, self.header)
        self._index += 1
        return ct

    def _seal_into(self, data: bytes | bytearray | memoryview, out: memoryview) -> None:
        if self._index >= MAX_CHUNKS:
            raise StorageError("blob too large: chunk counter would overflow")
        self._aead.encrypt_into(chunk_nonce(self._index, False), data, self.header, out)
        self._index += 1

    def feed(self, data: bytes | bytearray | memoryview, emit: Emit) -> None:
        """Seal every chunk of ``data`` known not to be the last, handing them to ``emit`` as
        *one* piece (one write for a whole batch, not one per 64 KiB chunk).

        Full chunks are sealed straight from ``data`` into the output buffer: only the piece
        held back (the possible last chunk) is copied."""
        if self._finished:
            raise StorageError("encryptor already finished")
        view = memoryview(data).cast("B")
        if not self._header_sent:
            self._header_sent = True
            emit(self.header)
        pos, total = 0, len(view)
        if self._buf and len(self._buf) < CHUNK_SIZE:
            pos = min(CHUNK_SIZE - len(self._buf), total)
            self._buf += view[:pos]
        if pos == total:
            return  # nothing follows yet: whatever is buffered may still be the last chunk
        # More plaintext follows: a full buffered chunk is not the last; of the rest, hold
        # back the final 1..CHUNK_SIZE bytes.
        buffered = 1 if self._buf else 0
        direct = (total - pos - 1) // CHUNK_SIZE
        out = bytearray((buffered + direct) * CIPHER_CHUNK_SIZE)
        sink = memoryview(out)
        if buffered:
            self._seal_into(self._buf, sink[:CIPHER_CHUNK_SIZE])
            self._buf.clear()
        for k in range(buffered, buffered + direct):
            self._seal_into(view[pos : pos + CHUNK_SIZE],
                            sink[k * CIPHER_CHUNK_SIZE : (k + 1) * CIPHER_CHUNK_SIZE])
            pos += CHUNK_SIZE
        self._buf += view[pos:]
        if out:
            emit(out)

    def finish_into(self, emit: Emit) -> None:
        if self._finished:
            raise StorageError("encryptor already finished")
        if not self._header_sent:
            self._header_sent = True
            emit(self.header)
        # Empty plaintext -> one empty final chunk; otherwise the buffer is non-empty.
        emit(self._seal(self._buf, final=True))
        self._buf.clear()
        self._finished = True

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        out: list[bytes | bytearray] = []
        self.feed(data, out.append)
        return b"".join(out)

    def finish(self) -> bytes:
        out: list[bytes | bytearray] = []
        self.finish_into(out.append)
        return b"".join(out)


class Decryptor:
    """Incremental decryptor for a whole blob read front to back.

    Returns each chunk's plaintext as soon as that chunk verified and more
    ciphertext shows it is not the last; the last chunk is opened in
    ``finish()``, which is where truncation is detected.  Callers must treat the
    stream as failed (and discard what they got) unless ``finish()`` returns.
    """

    def __init__(self, dek: bytes, blob_id: str) -> None:
        self._dek = bytes(dek)
        self._blob_id = blob_id
        self._opener: _ChunkOpener | None = None
        self._buf = bytearray()
        self._index = 0
        self._done = False

    def _check(self) -> None:
        if self._done:
            raise StorageError("decryptor already finished or failed")

    def feed(self, data: bytes | bytearray | memoryview, emit: Emit) -> None:
        self._check()
        view = memoryview(data).cast("B")
        pos, total = 0, len(view)
        try:
            if self._opener is None:
                take = min(HEADER_SIZE - len(self._buf), total)
                self._buf += view[:take]
                pos = take
                if len(self._buf) < HEADER_SIZE:
                    return
                self._opener = _ChunkOpener(self._dek, self._blob_id, bytes(self._buf))
                self._buf.clear()
            while pos < total:
                if len(self._buf) == CIPHER_CHUNK_SIZE:
                    emit(self._opener.open(self._index, self._buf, final=False, more_follows=True))
                    self._buf.clear()
                    self._index += 1
                take = min(CIPHER_CHUNK_SIZE - len(self._buf), total - pos)
                self._buf += view[pos : pos + take]
                pos += take
        except BaseException:
            self._done = True
            raise

    def finish_into(self, emit: Emit) -> None:
        self._check()
        self._done = True
        if self._opener is None:
            raise IntegrityError("header: truncated")
        if not self._buf:
            raise IntegrityError(f"chunk {self._index}: missing (no final chunk)")
        emit(self._opener.open(self._index, self._buf, final=True, more_follows=False))
        self._buf.clear()

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        out: list[bytes | bytearray] = []
        self.feed(data, out.append)
        return b"".join(out)

    def finish(self) -> bytes:
        out: list[bytes | bytearray] = []
        self.finish_into(out.append)
        return b"".join(out)


ReadAt = Callable[[int, int], bytes]
"""``read_at(offset, length)`` -> up to ``length`` bytes at ``offset`` (e.g. os.pread)."""


class SeekableDecryptor:
    """Random access to a blob: chunk ``i`` is read and verified on its own.

    The size is computed from the file length; the last chunk is always opened
    with the final flag, so a file cut at a chunk boundary fails there.  Range
    reads that stop before the last chunk verify it once anyway (cheap: one
    chunk), so ``size`` is authenticated before any range is served.
    """

    def __init__(self, read_at: ReadAt, ciphertext_size: int, dek: bytes, blob_id: str) -> None:
        self._read_at = read_at
        self.chunk_count, self.size = _layout(ciphertext_size)
        self._ct_size = ciphertext_size
        self._opener = _ChunkOpener(dek, blob_id, read_at(0, HEADER_SIZE))
        self._tail_verified = False

    def read_chunk(self, index: int) -> bytes:
        if not 0 <= index < self.chunk_count:
            raise IndexError(f"chunk {index} out of range")
        offset = HEADER_SIZE + index * CIPHER_CHUNK_SIZE
        length = min(CIPHER_CHUNK_SIZE, self._ct_size - offset)
        ct = self._read_at(offset, length)
        if len(ct) != length:
            raise IntegrityError(f"chunk {index}: truncated (file changed while reading)")
        final = index == self.chunk_count - 1
        plain = self._opener.open(index, ct, final=final, more_follows=not final)
        if final:
            self._tail_verified = True
        return plain

    def read_chunks(self, first: int, last: int) -> bytearray:
        """Plaintext of chunks ``first..last`` (inclusive): one read, each chunk verified, all
        of them before any byte is returned."""
        if not 0 <= first <= last < self.chunk_count:
            raise IndexError(f"chunks {first}..{last} out of range")
        offset = HEADER_SIZE + first * CIPHER_CHUNK_SIZE
        length = min((last - first + 1) * CIPHER_CHUNK_SIZE, self._ct_size - offset)
        ct = self._read_at(offset, length)
        if len(ct) != length:
            raise IntegrityError(f"chunk {first}: truncated (file changed while reading)")
        out = bytearray(length - (last - first + 1) * TAG_SIZE)
        source, sink = memoryview(ct), memoryview(out)
        for k, index in enumerate(range(first, last + 1)):
            piece = source[k * CIPHER_CHUNK_SIZE : (k + 1) * CIPHER_CHUNK_SIZE]
            final = index == self.chunk_count - 1
            self._opener.open_into(index, piece,
                                   sink[k * CHUNK_SIZE : k * CHUNK_SIZE + len(piece) - TAG_SIZE],
                                   final=final, more_follows=not final)
        if last == self.chunk_count - 1:
            self._tail_verified = True
        return out

    def iter_chunks(self) -> Iterator[bytes]:
        for i in range(self.chunk_count):
            yield self.read_chunk(i)

    def iter_range(self, start: int, end: int) -> Iterator[bytes]:
        """Plaintext bytes [start, end), chunk by chunk."""
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"range [{start}, {end}) outside blob of {self.size} bytes")
        if start == end:
            return
        first, last = start // CHUNK_SIZE, (end - 1) // CHUNK_SIZE
        if last != self.chunk_count - 1 and not self._tail_verified:
            self.read_chunk(self.chunk_count - 1)
        for i in range(first, last + 1):
            plain = self.read_chunk(i)
            base = i * CHUNK_SIZE
            yield plain[max(start - base, 0) : min(end - base, len(plain))]

    def iter_batches(self, start: int, end: int, batch_bytes: int) -> Iterator[memoryview]:
        """Plaintext bytes [start, end) in pieces of about ``batch_bytes`` (whole chunks are
        read and verified together: one read and no joining per piece)."""
        if not 0 <= start <= end <= self.size:
            raise ValueError(f"range [{start}, {end}) outside blob of {self.size} bytes")
        if start == end:
            return
        per_batch = max(1, batch_bytes // CHUNK_SIZE)
        first, last = start // CHUNK_SIZE, (end - 1) // CHUNK_SIZE
        if last != self.chunk_count - 1 and not self._tail_verified:
            self.read_chunk(self.chunk_count - 1)
        for batch_first in range(first, last + 1, per_batch):
            batch_last = min(batch_first + per_batch - 1, last)
            plain = memoryview(self.read_chunks(batch_first, batch_last))
            base = batch_first * CHUNK_SIZE
            yield plain[max(start - base, 0) : min(end - base, len(plain))]
