"""Blob format v1: round trips, range reads and every refusal of the reader."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import (
    Decryptor,
    Encryptor,
    IntegrityError,
    SeekableDecryptor,
    StorageError,
    ciphertext_size,
    plaintext_size,
)
from storage.stream import (
    MAX_CHUNKS,
    build_header,
    chunk_nonce,
    derive_payload_key,
)
from tests.storage.storage_helpers import (
    BLOB_ID,
    CHUNK_SIZE,
    CIPHER_CHUNK_SIZE,
    HEADER_SIZE,
    chunk_offset,
    encrypt,
    randbytes,
)

DEK = bytes(range(32))
SIZES = [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, 3_000_017]


def decrypt_stream(ct: bytes, dek: bytes = DEK, blob_id: str = BLOB_ID, piece: int = 7777) -> bytes:
    dec = Decryptor(dek, blob_id)
    out = [dec.update(ct[i : i + piece]) for i in range(0, len(ct), piece)]
    return b"".join(out) + dec.finish()


def seekable(ct: bytes, dek: bytes = DEK, blob_id: str = BLOB_ID) -> SeekableDecryptor:
    return SeekableDecryptor(lambda off, n: ct[off : off + n], len(ct), dek, blob_id)


def decrypt_seekable(ct: bytes, dek: bytes = DEK, blob_id: str = BLOB_ID) -> bytes:
    return b"".join(seekable(ct, dek, blob_id).iter_chunks())


DECRYPTORS = [decrypt_stream, decrypt_seekable]


# -- round trips -------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("decrypt", DECRYPTORS)
def test_round_trip(size: int, decrypt: object) -> None:
    plain = randbytes(size, seed=size)
    ct = encrypt(plain, DEK)
    assert len(ct) == ciphertext_size(size)
    assert plaintext_size(len(ct)) == size
    assert callable(decrypt)
    assert decrypt(ct) == plain


@pytest.mark.parametrize("size", SIZES)
def test_layout_chunk_count(size: int) -> None:
    ct = encrypt(randbytes(size), DEK)
    dec = seekable(ct)
    expected = max(1, -(-size // CHUNK_SIZE))  # never an empty chunk after a full one
    assert dec.chunk_count == expected
    assert dec.size == size


def test_empty_plaintext_is_one_empty_final_chunk() -> None:
    ct = encrypt(b"", DEK)
    assert len(ct) == HEADER_SIZE + 16
    salt = ct[7:HEADER_SIZE]
    aead = AESGCM(derive_payload_key(DEK, salt, BLOB_ID))
    assert aead.decrypt(chunk_nonce(0, True), ct[HEADER_SIZE:], ct[:HEADER_SIZE]) == b""


def test_header_layout_and_fresh_salt() -> None:
    a, b = encrypt(b"x", DEK), encrypt(b"x", DEK)
    assert a[:7] == b"PLNB\x01\x01\x10"
    assert a[7:HEADER_SIZE] != b[7:HEADER_SIZE]  # random salt
    assert a != b


def test_nonce_layout() -> None:
    assert chunk_nonce(0, False) == bytes(12)
    assert chunk_nonce(1, True) == bytes(7) + b"\x01" + bytes(3) + b"\x01"
    assert chunk_nonce(2**64 - 1, False) == b"\xff" * 8 + bytes(4)


@settings(max_examples=40, deadline=None, database=None)
@given(
    size=st.integers(0, 3 * CHUNK_SIZE + 50),
    seed=st.integers(0, 2**16),
    write_splits=st.lists(st.integers(1, 2 * CHUNK_SIZE), min_size=1, max_size=6),
    read_splits=st.lists(st.integers(1, 2 * CIPHER_CHUNK_SIZE), min_size=1, max_size=6),
)
def test_round_trip_property(
    size: int, seed: int, write_splits: list[int], read_splits: list[int]
) -> None:
    plain = randbytes(size, seed)
    enc = Encryptor(DEK, BLOB_ID)
    parts, pos, i = [], 0, 0
    while pos < size:
        n = write_splits[i % len(write_splits)]
        parts.append(enc.update(plain[pos : pos + n]))
        pos, i = pos + n, i + 1
    ct = b"".join(parts) + enc.finish()
    assert ct == ct[:HEADER_SIZE] + ct[HEADER_SIZE:]
    assert len(ct) == ciphertext_size(size)

    dec = Decryptor(DEK, BLOB_ID)
    out, pos, i = [], 0, 0
    while pos < len(ct):
        n = read_splits[i % len(read_splits)]
        out.append(dec.update(ct[pos : pos + n]))
        pos, i = pos + n, i + 1
    assert b"".join(out) + dec.finish() == plain
    assert decrypt_seekable(ct) == plain


@settings(max_examples=60, deadline=None, database=None)
@given(data=st.data(), size=st.integers(1, 3 * CHUNK_SIZE + 50))
def test_range_property(data: st.DataObject, size: int) -> None:
    plain = randbytes(size, seed=size)
    dec = seekable(encrypt(plain, DEK))
    start = data.draw(st.integers(0, size))
    end = data.draw(st.integers(start, size))
    assert b"".join(dec.iter_range(start, end)) == plain[start:end]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, 1),
        (CHUNK_SIZE - 1, CHUNK_SIZE + 1),
        (CHUNK_SIZE, 2 * CHUNK_SIZE),
        (CHUNK_SIZE - 10, 3 * CHUNK_SIZE + 5),
        (1, 3 * CHUNK_SIZE + 100),
        (3 * CHUNK_SIZE + 99, 3 * CHUNK_SIZE + 100),
        (5, 5),
    ],
)
def test_range_across_chunk_boundaries(start: int, end: int) -> None:
    plain = randbytes(3 * CHUNK_SIZE + 100, seed=3)
    dec = seekable(encrypt(plain, DEK))
    assert b"".join(dec.iter_range(start, end)) == plain[start:end]


def test_range_reads_only_needed_chunks() -> None:
    plain = randbytes(10 * CHUNK_SIZE, seed=4)
    ct = encrypt(plain, DEK)
    reads: list[int] = []

    def read_at(off: int, n: int) -> bytes:
        reads.append(off)
        return ct[off : off + n]

    dec = SeekableDecryptor(read_at, len(ct), DEK, BLOB_ID)
    reads.clear()
    assert (
        b"".join(dec.iter_range(4 * CHUNK_SIZE + 3, 5 * CHUNK_SIZE + 3))
        == plain[4 * CHUNK_SIZE + 3 : 5 * CHUNK_SIZE + 3]
    )
    # the last chunk once (final flag / size check), then exactly chunks 4 and 5
    assert reads == [chunk_offset(9), chunk_offset(4), chunk_offset(5)]


@pytest.mark.parametrize(("start", "end"), [(-1, 3), (5, 4), (0, 3 * CHUNK_SIZE + 1)])
def test_range_out_of_bounds(start: int, end: int) -> None:
    dec = seekable(encrypt(randbytes(3 * CHUNK_SIZE), DEK))
    with pytest.raises(ValueError):
        list(dec.iter_range(start, end))


# -- refusals ----------------------------------------------------------------------


def collect_until_error(ct: bytes, mode: str) -> tuple[list[bytes], IntegrityError]:
    """Plaintext pieces released before the IntegrityError, and the error."""
    got: list[bytes] = []
    with pytest.raises(IntegrityError) as info:
        if mode == "stream":
            dec = Decryptor(DEK, BLOB_ID)
            for i in range(0, len(ct), 10_000):
                dec.feed(ct[i : i + 10_000], got.append)
            dec.finish_into(got.append)
        else:
            for chunk in seekable(ct).iter_chunks():
                got.append(chunk)
    return got, info.value


MODES = ["stream", "seekable"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [0, 1, 2, 3])
@pytest.mark.parametrize("where", [0, 100, CIPHER_CHUNK_SIZE - 1])
def test_flipped_byte_fails_at_that_chunk_and_releases_nothing_of_it(
    mode: str, k: int, where: int
) -> None:
    plain = randbytes(3 * CHUNK_SIZE + 500, seed=5)
    ct = bytearray(encrypt(plain, DEK))
    pos = min(chunk_offset(k) + where, len(ct) - 1)
    ct[pos] ^= 0x01
    got, err = collect_until_error(bytes(ct), mode)
    assert f"chunk {k}" in str(err)
    released = b"".join(got)
    assert released == plain[: k * CHUNK_SIZE]  # exactly the chunks before k


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [3 * CHUNK_SIZE, 3 * CHUNK_SIZE + 10])
def test_truncated_at_chunk_boundary_reports_no_final_chunk(mode: str, size: int) -> None:
    ct = encrypt(randbytes(size), DEK)
    for n in (1, 2):
        got, err = collect_until_error(ct[: chunk_offset(n)], mode)
        assert "no final chunk" in str(err)
        assert len(b"".join(got)) < n * CHUNK_SIZE  # the last surviving chunk not released


@pytest.mark.parametrize("mode", MODES)
def test_truncated_to_header_only(mode: str) -> None:
    ct = encrypt(randbytes(100), DEK)
    _, err = collect_until_error(ct[:HEADER_SIZE], mode)
    assert "no final chunk" in str(err)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cut", [1, 10, 15, 16, 17, 1000, CIPHER_CHUNK_SIZE - 1])
def test_truncated_mid_chunk(mode: str, cut: int) -> None:
    ct = encrypt(randbytes(3 * CHUNK_SIZE), DEK)
    got, _ = collect_until_error(ct[: chunk_offset(1) + cut], mode)
    assert len(b"".join(got)) <= CHUNK_SIZE


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cut", [0, 3, 7, HEADER_SIZE - 1])
def test_truncated_header(mode: str, cut: int) -> None:
    ct = encrypt(b"abc", DEK)
    with pytest.raises(IntegrityError):
        if mode == "stream":
            decrypt_stream(ct[:cut])
        else:
            decrypt_seekable(ct[:cut])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("a", "b"), [(0, 1), (1, 2), (0, 2)])
def test_swapped_chunks(mode: str, a: int, b: int) -> None:
    plain = randbytes(4 * CHUNK_SIZE, seed=6)
    ct = encrypt(plain, DEK)
    chunks = [ct[chunk_offset(i) : chunk_offset(i + 1)] for i in range(4)]
    chunks[a], chunks[b] = chunks[b], chunks[a]
    got, err = collect_until_error(ct[:HEADER_SIZE] + b"".join(chunks), mode)
    assert f"chunk {a}" in str(err)
    assert b"".join(got) == plain[: a * CHUNK_SIZE]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [0, 10, CHUNK_SIZE, 2 * CHUNK_SIZE + 3])
@pytest.mark.parametrize("extra", [b"\x00", b"x" * 16, b"y" * 17, bytes(CIPHER_CHUNK_SIZE)])
def test_bytes_after_final_chunk(mode: str, size: int, extra: bytes) -> None:
    plain = randbytes(size, seed=7)
    ct = encrypt(plain, DEK)
    got, _ = collect_until_error(ct + extra, mode)
    assert b"".join(got) != plain or size == 0


@pytest.mark.parametrize("mode", MODES)
def test_valid_chunk_appended_after_final_chunk(mode: str) -> None:
    """A chunk sealed with the right key, index and flag, after the final one."""
    ct = encrypt(randbytes(CHUNK_SIZE, seed=8), DEK)  # one full, final chunk
    aead = AESGCM(derive_payload_key(DEK, ct[7:HEADER_SIZE], BLOB_ID))
    extra = aead.encrypt(chunk_nonce(1, True), b"more", ct[:HEADER_SIZE])
    got, err = collect_until_error(ct + extra, mode)
    assert "chunk 0" in str(err)
    assert got == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("index", range(HEADER_SIZE))
def test_any_header_byte_change(mode: str, index: int) -> None:
    ct = bytearray(encrypt(randbytes(CHUNK_SIZE + 5), DEK))
    ct[index] ^= 0x80
    got, _ = collect_until_error(bytes(ct), mode)
    assert got == []


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [(0, 0x51, "bad magic"), (4, 2, "version"), (5, 9, "algorithm"), (6, 12, "exponent")],
)
def test_header_fields_are_named(offset: int, value: int, message: str) -> None:
    ct = bytearray(encrypt(b"abc", DEK))
    ct[offset] = value
    with pytest.raises(IntegrityError, match=message):
        decrypt_stream(bytes(ct))


@pytest.mark.parametrize("mode", MODES)
def test_empty_final_chunk_after_non_empty_payload(mode: str) -> None:
    """Crafted with the real payload key: chunk 0 full and not final, chunk 1 empty final."""
    salt = os.urandom(16)
    header = build_header(salt)
    aead = AESGCM(derive_payload_key(DEK, salt, BLOB_ID))
    ct = (
        header
        + aead.encrypt(chunk_nonce(0, False), randbytes(CHUNK_SIZE), header)
        + aead.encrypt(chunk_nonce(1, True), b"", header)
    )
    _, err = collect_until_error(ct, mode)
    assert "empty final chunk" in str(err)
    with pytest.raises(IntegrityError, match="empty final chunk"):
        plaintext_size(len(ct))


@pytest.mark.parametrize("mode", MODES)
def test_short_non_final_chunk_is_refused(mode: str) -> None:
    """Chunk sizes are fixed: a short chunk followed by more is never accepted."""
    salt = os.urandom(16)
    header = build_header(salt)
    aead = AESGCM(derive_payload_key(DEK, salt, BLOB_ID))
    ct = (
        header
        + aead.encrypt(chunk_nonce(0, False), b"short", header)
        + aead.encrypt(chunk_nonce(1, True), b"tail", header)
    )
    got, _ = collect_until_error(ct, mode)
    assert got == []


@pytest.mark.parametrize("mode", MODES)
def test_wrong_dek_or_blob_id(mode: str) -> None:
    ct = encrypt(b"secret", DEK)
    with pytest.raises(IntegrityError, match="chunk 0"):
        if mode == "stream":
            decrypt_stream(ct, dek=bytes(32))
        else:
            decrypt_seekable(ct, dek=bytes(32))
    with pytest.raises(IntegrityError, match="chunk 0"):
        if mode == "stream":
            decrypt_stream(ct, blob_id="BBBBbbbbCCCCddddEEEEffff")
        else:
            decrypt_seekable(ct, blob_id="BBBBbbbbCCCCddddEEEEffff")


def test_range_read_detects_truncation_before_serving() -> None:
    """Even a range that ends before the cut fails: the final chunk is checked first."""
    ct = encrypt(randbytes(4 * CHUNK_SIZE), DEK)
    dec = seekable(ct[: chunk_offset(3)])
    with pytest.raises(IntegrityError, match="no final chunk"):
        next(dec.iter_range(0, 10))


def test_counter_overflow_refused() -> None:
    with pytest.raises(IntegrityError, match="overflow"):
        plaintext_size(HEADER_SIZE + MAX_CHUNKS * CIPHER_CHUNK_SIZE + 17)
    with pytest.raises(IntegrityError, match="overflow"):
        chunk_nonce(MAX_CHUNKS, False)
    enc = Encryptor(DEK, BLOB_ID)
    enc._index = MAX_CHUNKS  # white-box: 2**64 chunks cannot be produced in a test
    with pytest.raises(StorageError, match="overflow"):
        enc.finish()


@pytest.mark.parametrize(
    "size", [0, 1, HEADER_SIZE, HEADER_SIZE + 15, HEADER_SIZE + CIPHER_CHUNK_SIZE + 15]
)
def test_impossible_sizes(size: int) -> None:
    with pytest.raises(IntegrityError):
        plaintext_size(size)


def test_decryptor_unusable_after_failure_or_finish() -> None:
    ct = encrypt(b"abc", DEK)
    dec = Decryptor(DEK, BLOB_ID)
    assert dec.update(ct) == b""
    assert dec.finish() == b"abc"
    with pytest.raises(StorageError):
        dec.update(b"x")
    enc = Encryptor(DEK, BLOB_ID)
    enc.finish()
    with pytest.raises(StorageError):
        enc.update(b"x")
