"""Key file handling and DEK wrapping."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from storage import (
    IntegrityError,
    KeyFileError,
    KeyRing,
    KeySource,
    UnknownKeyError,
    WrappedKey,
    field_kek_id,
    new_data_key,
)

BLOB_A = "AAAAAAAAAAAAAAAAAAAAAAAA"
BLOB_B = "BBBBBBBBBBBBBBBBBBBBBBBB"


def key_doc(path: Path) -> dict[str, object]:
    doc = json.loads(path.read_text())
    assert isinstance(doc, dict)
    return doc


# -- key file ----------------------------------------------------------------------


def test_create_writes_mode_0600_even_with_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        ring = KeyRing.create(tmp_path / "k.json")
    finally:
        os.umask(old)
    st = os.stat(ring.path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    doc = key_doc(ring.path)
    assert doc["format"] == "plein-keyring" and doc["version"] == 1
    assert doc["active"] == ring.active_id
    keys = doc["keys"]
    assert isinstance(keys, list) and len(keys) == 1
    assert len(base64.b64decode(keys[0]["key"])) == 32
    assert keys[0]["retired"] is False
    assert keys[0]["created_at"].endswith("+00:00")
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]  # no temp file left


def test_create_makes_parent_dirs(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path / "a" / "b" / "k.json")
    assert KeyRing.load(ring.path).key_ids() == ring.key_ids()


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    KeyRing.create(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        KeyRing.create(path)
    assert path.read_bytes() == before


def test_create_refuses_dangling_symlink(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(KeyFileError):
        KeyRing.create(path)
    assert not (tmp_path / "elsewhere.json").exists()


def test_load_round_trip(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path / "k.json")
    wrapped = ring.wrap(dek := new_data_key(), BLOB_A)
    loaded = KeyRing.load(tmp_path / "k.json")
    assert loaded.active_id == ring.active_id
    assert loaded.unwrap(wrapped, BLOB_A) == dek


def test_load_missing(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        KeyRing.load(tmp_path / "nope.json")


def _valid_doc() -> dict[str, object]:
    return {
        "format": "plein-keyring",
        "version": 1,
        "active": "k1",
        "keys": [
            {
                "id": "k1",
                "key": base64.b64encode(bytes(32)).decode(),
                "created_at": "2024-01-01T00:00:00+00:00",
                "retired": False,
            }
        ],
    }


def _corrupt(kind: str) -> bytes:
    doc = _valid_doc()
    key = doc["keys"][0]  # type: ignore[index]
    if kind == "not json":
        return b"{not json"
    if kind == "binary":
        return b"\xff\xfe\x00garbage"
    if kind == "empty":
        return b""
    if kind == "list":
        return b"[]"
    if kind == "format":
        doc["format"] = "something-else"
    elif kind == "version":
        doc["version"] = 2
    elif kind == "no keys":
        doc["keys"] = []
    elif kind == "bad base64":
        key["key"] = "!!!notbase64!!!"
    elif kind == "short key":
        key["key"] = base64.b64encode(bytes(31)).decode()
    elif kind == "long key":
        key["key"] = base64.b64encode(bytes(33)).decode()
    elif kind == "active absent":
        doc["active"] = "k2"
    elif kind == "active retired":
        key["retired"] = True
    elif kind == "duplicate":
        doc["keys"] = [key, dict(key)]
    elif kind == "bad id":
        key["id"] = "../x"
        doc["active"] = "../x"
    elif kind == "retired not bool":
        key["retired"] = "no"
    return json.dumps(doc).encode()


def test_valid_doc_loads(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_bytes(json.dumps(_valid_doc()).encode())
    path.chmod(0o600)
    assert KeyRing.load(path).active_id == "k1"


CORRUPTIONS = [
    "not json",
    "binary",
    "empty",
    "list",
    "format",
    "version",
    "no keys",
    "bad base64",
    "short key",
    "long key",
    "active absent",
    "active retired",
    "duplicate",
    "bad id",
    "retired not bool",
]


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_load_corrupt(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "k.json"
    path.write_bytes(_corrupt(kind))
    path.chmod(0o600)
    with pytest.raises(KeyFileError) as info:
        KeyRing.load(path)
    assert "AAAAAAAA" not in str(info.value)  # never echo key material


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_group_or_world_writable_key_file_refused(tmp_path: Path, mode: int) -> None:
    ring = KeyRing.create(tmp_path / "k.json")
    ring.path.chmod(mode)
    with pytest.raises(KeyFileError, match="writable"):
        KeyRing.load(ring.path)


def test_group_readable_key_file_accepted(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path / "k.json")
    ring.path.chmod(0o640)
    assert KeyRing.load(ring.path).active_id == ring.active_id


def test_key_file_must_be_regular_file(tmp_path: Path) -> None:
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(KeyFileError):
        KeyRing.load(tmp_path / "dir.json")


def test_load_or_create(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    first = KeyRing.load_or_create(path)
    second = KeyRing.load_or_create(path)
    assert first.key_ids() == second.key_ids()
    path.write_bytes(b"corrupt")
    with pytest.raises(KeyFileError):
        KeyRing.load_or_create(path)  # a broken file is an error, never replaced
    assert path.read_bytes() == b"corrupt"


def test_add_and_retire_are_durable(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path / "k.json")
    old = ring.active_id
    new = ring.add_key()
    assert new != old and ring.active_id == new
    assert KeyRing.load(ring.path).active_id == new
    with pytest.raises(KeyFileError, match="active"):
        ring.retire(new)
    with pytest.raises(UnknownKeyError):
        ring.retire("nonexistent")
    ring.retire(old)
    reloaded = KeyRing.load(ring.path)
    assert reloaded.is_retired(old) and not reloaded.is_retired(new)
    assert reloaded.key_ids() == [old, new]
    assert stat.S_IMODE(os.stat(ring.path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json"]


def test_repr_hides_key_material(tmp_path: Path) -> None:
    ring = KeyRing.create(tmp_path / "k.json")
    key_b64 = key_doc(ring.path)["keys"][0]["key"]  # type: ignore[index]
    text = repr(ring) + repr(ring._keys)
    assert key_b64 not in text
    assert repr(bytes(base64.b64decode(key_b64))) not in text


# -- wrapping ----------------------------------------------------------------------


def test_wrap_unwrap(ring: KeyRing) -> None:
    dek = new_data_key()
    wrapped = ring.wrap(dek, BLOB_A)
    assert wrapped.kek_id == ring.active_id
    assert dek not in wrapped.to_bytes()
    assert ring.unwrap(wrapped, BLOB_A) == dek
    assert ring.wrap(dek, BLOB_A) != wrapped  # random nonce


def test_wrapped_key_moved_to_another_blob_fails(ring: KeyRing) -> None:
    wrapped = ring.wrap(new_data_key(), BLOB_A)
    with pytest.raises(IntegrityError):
        ring.unwrap(wrapped, BLOB_B)


def test_wrong_kek_fails(ring: KeyRing, tmp_path: Path) -> None:
    wrapped = ring.wrap(new_data_key(), BLOB_A)
    # same id, different key bytes (e.g. the wrong key file was deployed)
    doc = key_doc(ring.path)
    doc["keys"][0]["key"] = base64.b64encode(os.urandom(32)).decode()  # type: ignore[index]
    other_path = tmp_path / "other.json"
    other_path.write_text(json.dumps(doc))
    other_path.chmod(0o600)
    with pytest.raises(IntegrityError):
        KeyRing.load(other_path).unwrap(wrapped, BLOB_A)
    # another key of the same ring
    new_id = ring.add_key()
    with pytest.raises(IntegrityError):
        ring.unwrap(WrappedKey(new_id, wrapped.data), BLOB_A)
    # a key the ring does not have
    with pytest.raises(UnknownKeyError):
        ring.unwrap(WrappedKey("unknownkey", wrapped.data), BLOB_A)


def test_tampered_wrapped_key_fails(ring: KeyRing) -> None:
    wrapped = ring.wrap(new_data_key(), BLOB_A)
    for i in range(len(wrapped.data)):
        data = bytearray(wrapped.data)
        data[i] ^= 1
        with pytest.raises(IntegrityError):
            ring.unwrap(WrappedKey(wrapped.kek_id, bytes(data)), BLOB_A)


def test_wrapped_key_bytes_round_trip(ring: KeyRing) -> None:
    wrapped = ring.wrap(new_data_key(), BLOB_A)
    raw = wrapped.to_bytes()
    assert raw[0] == 1 and raw[1] == len(wrapped.kek_id)
    assert WrappedKey.from_bytes(raw) == wrapped


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x01",
        b"\x02\x02k1" + bytes(60),
        b"\x01\x05k1" + bytes(60),
        b"\x01\x02k1" + bytes(59),
        b"\x01\x02k1" + bytes(61),
        b"\x01\x02k/" + bytes(60),
        b"\x01\x02\xff\xfe" + bytes(60),
    ],
)
def test_wrapped_key_from_bad_bytes(raw: bytes) -> None:
    with pytest.raises(IntegrityError):
        WrappedKey.from_bytes(raw)


def test_rewrap_moves_to_active_key(ring: KeyRing) -> None:
    dek = new_data_key()
    wrapped = ring.wrap(dek, BLOB_A)
    new_id = ring.add_key()
    rewrapped = ring.rewrap(wrapped, BLOB_A)
    assert rewrapped.kek_id == new_id
    assert ring.unwrap(rewrapped, BLOB_A) == dek
    with pytest.raises(IntegrityError):
        ring.rewrap(wrapped, BLOB_B)


def test_data_key_is_random_32_bytes() -> None:
    a, b = new_data_key(), new_data_key()
    assert len(a) == 32 and a != b


def test_wrap_rejects_bad_dek(ring: KeyRing) -> None:
    with pytest.raises(ValueError):
        ring.wrap(b"short", BLOB_A)


# -- sealed fields -------------------------------------------------------------------


def test_sealed_field_round_trip_and_format(ring: KeyRing) -> None:
    sealed = ring.seal_field("Notulen – geheim".encode(), "documents.title")
    assert sealed.startswith(f"v1:{ring.active_id}:")
    assert field_kek_id(sealed) == ring.active_id
    assert "Notulen" not in sealed
    assert ring.open_field(sealed, "documents.title") == "Notulen – geheim".encode()
    # A fresh nonce each time: equal values do not look equal.
    assert ring.seal_field(b"x", "documents.title") != ring.seal_field(b"x", "documents.title")
    assert ring.open_field(ring.seal_field(b"", "folders.name"), "folders.name") == b""


def test_sealed_field_moved_to_another_column_fails(ring: KeyRing) -> None:
    sealed = ring.seal_field(b"Dossier X", "folders.name")
    with pytest.raises(IntegrityError, match="failed authentication"):
        ring.open_field(sealed, "documents.title")


@pytest.mark.parametrize("position", [0, 5, -1])
def test_tampered_sealed_field_fails(ring: KeyRing, position: int) -> None:
    sealed = ring.seal_field(b"Dossier X", "comments.body")
    prefix, body = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(body))
    raw[position] ^= 0x01
    tampered = f"{prefix}:{base64.urlsafe_b64encode(bytes(raw)).decode()}"
    with pytest.raises(IntegrityError):
        ring.open_field(tampered, "comments.body")


def test_sealed_field_relabelled_with_another_key_fails(ring: KeyRing) -> None:
    sealed = ring.seal_field(b"Dossier X", "comments.body")
    old = ring.active_id
    new = ring.add_key()
    relabelled = sealed.replace(f"v1:{old}:", f"v1:{new}:")
    with pytest.raises(IntegrityError):
        ring.open_field(relabelled, "comments.body")


@pytest.mark.parametrize("value", ["", "plain text", "v2:abc:AAAA", "v1:bad id!:AAAA",
                                   "v1:abcdefghijkl:not*base64", "v1:abcdefghijkl:AAAA"])
def test_malformed_sealed_field_fails(ring: KeyRing, value: str) -> None:
    with pytest.raises((IntegrityError, UnknownKeyError)):
        ring.open_field(value, "comments.body")


def test_sealed_field_survives_rotation(ring: KeyRing) -> None:
    sealed = ring.seal_field(b"Dossier X", "comments.body")
    old = ring.active_id
    ring.add_key()
    ring.retire(old)
    assert ring.open_field(sealed, "comments.body") == b"Dossier X"
    assert field_kek_id(ring.seal_field(b"y", "comments.body")) == ring.active_id != old


# -- KeySource: the key file as a running server follows it ------------------------------


def test_key_source_follows_a_rotation_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    server = KeySource.create(path)
    sealed = server.seal_field(b"oud", "folders.name")
    wrapped = server.wrap(dek := new_data_key(), BLOB_A)
    # `plein keys rotate` in another process: its own ring, written with os.replace.
    other = KeyRing.load(path)
    new_id = other.add_key()
    rewrapped = other.rewrap(wrapped, BLOB_A)
    resealed = other.seal_field(other.open_field(sealed, "folders.name"), "folders.name")
    other.retire(server.ring().key_ids()[0])
    assert server.active_id == new_id  # reloaded because the file changed
    assert server.unwrap(rewrapped, BLOB_A) == dek
    assert server.open_field(resealed, "folders.name") == b"oud"
    assert server.wrap(new_data_key(), BLOB_B).kek_id == new_id


def test_key_source_reloads_on_an_unknown_key_even_with_an_unchanged_signature(
        tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    server = KeySource.create(path)
    before = os.stat(path)
    other = KeyRing.load(path)
    other.add_key()
    wrapped = other.wrap(dek := new_data_key(), BLOB_A)
    sealed = other.seal_field(b"nieuw", "groups.name")
    # Same inode, mtime and size as when the server loaded it (a coarse clock, an edit in
    # place): the signature says "unchanged", the unknown key id says otherwise.
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    server._signature = (os.stat(path).st_ino, before.st_mtime_ns, os.stat(path).st_size)
    assert server.unwrap(wrapped, BLOB_A) == dek
    assert server.open_field(sealed, "groups.name") == b"nieuw"


def test_key_source_keeps_its_keys_when_the_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    server = KeySource.create(path)
    wrapped = server.wrap(dek := new_data_key(), BLOB_A)
    path.write_text("{ half written")
    assert server.unwrap(wrapped, BLOB_A) == dek
    with pytest.raises(UnknownKeyError):
        server.unwrap(WrappedKey("someotherkey", wrapped.data), BLOB_A)


def test_key_source_rotation_is_used_at_once_and_adopts_other_changes(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    source = KeySource.create(path)
    first = source.active_id
    other = KeyRing.load(path)
    second = other.add_key()  # another rotation this source has not looked at yet
    third = source.add_key()
    assert source.active_id == third
    assert set(KeyRing.load(path).key_ids()) == {first, second, third}
    source.retire(first)
    assert KeyRing.load(path).is_retired(first)
