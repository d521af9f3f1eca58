"""sync.protocol: the y-websocket codec, including a decoder fuzz target."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Awareness, Doc, Text
from pycrdt import create_sync_message as pycrdt_step1
from pycrdt import create_update_message as pycrdt_update

from sync.protocol import (
    MAX_VAR_UINT,
    AwarenessEntry,
    AwarenessUpdate,
    Message,
    PermissionDenied,
    ProtocolError,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    decode_frame,
    encode,
    is_document_update,
    validate_state_vector,
    write_var_string,
    write_var_uint,
)

SAMPLES: list[Message] = [
    SyncStep1(b"\x00"),
    SyncStep2(b"\x00\x00"),
    SyncUpdate(bytes(range(256)) * 3),
    AwarenessUpdate((AwarenessEntry(1, 0, '{"name":"ë€😀"}'), AwarenessEntry(2**40, 7, "null"))),
    AwarenessUpdate(()),
    PermissionDenied("read-only ë€😀"),
    QueryAwareness(),
]


@pytest.mark.parametrize("message", SAMPLES)
def test_round_trip(message: Message) -> None:
    assert decode_frame(encode(message)) == [message]


def test_several_messages_in_one_frame() -> None:
    frame = b"".join(encode(m) for m in SAMPLES)
    assert decode_frame(frame) == SAMPLES


def test_var_uint_boundaries() -> None:
    for n in (0, 1, 127, 128, 16383, 16384, 2**32, MAX_VAR_UINT):
        (decoded,) = decode_frame(encode(AwarenessUpdate((AwarenessEntry(n, n, "null"),))))
        assert isinstance(decoded, AwarenessUpdate)
        assert decoded.entries[0].client_id == decoded.entries[0].clock == n
    assert write_var_uint(127) == b"\x7f"
    assert write_var_uint(128) == b"\x80\x01"
    assert write_var_uint(300) == b"\xac\x02"
    with pytest.raises(ValueError):
        write_var_uint(MAX_VAR_UINT + 1)
    with pytest.raises(ValueError):
        write_var_uint(-1)


def test_strings_count_utf8_bytes() -> None:
    text = "ë€😀"
    assert len(text) == 3 and len(text.encode()) == 9
    assert write_var_string(text) == b"\x09" + text.encode()
    assert decode_frame(encode(PermissionDenied(text))) == [PermissionDenied(text)]


def test_interoperates_with_pycrdt_encoding() -> None:
    doc: Doc[object] = Doc()
    doc.get("t", type=Text).insert(0, "hi")
    update = doc.get_update()
    assert decode_frame(pycrdt_update(update)) == [SyncUpdate(update)]
    assert decode_frame(pycrdt_step1(doc)) == [SyncStep1(doc.get_state())]
    # pycrdt's awareness encoder is only right for ASCII (it counts characters);
    # with ASCII states our decoder reads it.
    awareness = Awareness(doc)
    awareness.set_local_state({"user": "alice"})
    raw = awareness.encode_awareness_update([doc.client_id])
    (decoded,) = decode_frame(bytes([1]) + write_var_uint(len(raw)) + raw)
    assert isinstance(decoded, AwarenessUpdate)
    assert decoded.entries[0].client_id == doc.client_id


@pytest.mark.parametrize(
    "frame",
    [
        b"",  # empty frame
        b"\x00",  # sync without sub-type
        b"\x00\x02",  # update without payload length
        b"\x00\x02\x05abc",  # length claim beyond the frame
        b"\x00\x02" + b"\xff" * 9 + b"\x01",  # varUint longer than 8 bytes
        b"\x00\x02" + write_var_uint(MAX_VAR_UINT)[:-1] + b"\x7f",  # above 2^53 - 1
        b"\x00\x07\x00",  # unknown sync type
        b"\x09",  # unknown message type
        b"\x02\x01\x00",  # unknown auth type
        b"\x02\x00\x02\xc3\x28",  # invalid UTF-8
        b"\x01\x05\x01\x01\x01\x01{",  # awareness state not JSON
        b"\x01\x07\x01\x01\x01\x03NaN",  # NaN is not JSON for a browser
        b"\x01\x03\x09\x01\x01",  # awareness count beyond payload
        b"\x01\x06\x01\x01\x01\x01\x30\x00",  # trailing byte in the awareness update
        encode(SyncUpdate(b"abc")) + b"\x00",  # a valid message then a truncated one
    ],
)
def test_malformed_frames_refused(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_frame(frame)


def test_deeply_nested_json_refused_not_crashing() -> None:
    state = "[" * 100_000 + "]" * 100_000
    raw = b"\x01\x01\x01" + write_var_string(state)
    frame = b"\x01" + write_var_uint(len(raw)) + raw
    with pytest.raises(ProtocolError):
        decode_frame(frame)


def test_frame_cap() -> None:
    frame = encode(SyncUpdate(b"x" * 100))
    with pytest.raises(ProtocolError):
        decode_frame(frame, max_frame_bytes=50)


def test_state_vector_validation() -> None:
    doc: Doc[object] = Doc()
    doc.get("t", type=Text).insert(0, "x")
    validate_state_vector(doc.get_state())
    validate_state_vector(b"\x00")
    for bad in (b"", b"\x02\x01\x01", b"\x01\x01" + write_var_uint(2**33), b"\x00\x00"):
        with pytest.raises(ProtocolError):
            validate_state_vector(bad)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_decoder_fuzz_random_bytes(data: bytes) -> None:
    try:
        decode_frame(data)
    except ProtocolError:
        pass


_messages = st.one_of(
    st.builds(SyncStep1, st.binary(max_size=20)),
    st.builds(SyncStep2, st.binary(max_size=20)),
    st.builds(SyncUpdate, st.binary(max_size=20)),
    st.builds(PermissionDenied, st.text(max_size=10)),
    st.just(QueryAwareness()),
    st.builds(
        lambda entries: AwarenessUpdate(tuple(entries)),
        st.lists(
            st.builds(
                AwarenessEntry,
                st.integers(0, MAX_VAR_UINT),
                st.integers(0, 2**32),
                st.sampled_from(["null", '{"a":1}', '"ë€😀"', "[]"]),
            ),
            max_size=3,
        ),
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_messages, min_size=1, max_size=5), st.data())
def test_decoder_fuzz_valid_frames_and_mutations(
    messages: list[Message], data: st.DataObject
) -> None:
    frame = b"".join(encode(m) for m in messages)
    assert decode_frame(frame) == messages
    # Any truncation or byte change either decodes or is a ProtocolError -- nothing else.
    cut = data.draw(st.integers(0, len(frame)))
    pos = data.draw(st.integers(0, len(frame) - 1))
    mutated = bytearray(frame)
    mutated[pos] = data.draw(st.integers(0, 255))
    for candidate in (frame[:cut], bytes(mutated)):
        try:
            decode_frame(candidate)
        except ProtocolError:
            pass


def test_is_document_update_tells_edits_from_the_rest() -> None:
    update = encode(SyncUpdate(b"\x01\x01\x05\x00\x04\x01\x01t\x01a\x00"))
    assert is_document_update(update)
    assert is_document_update(encode(SyncStep2(b"\x01\x01\x05\x00\x04\x01\x01t\x01a\x00")))
    assert not is_document_update(encode(SyncStep2(b"\x00\x00")))  # nothing new
    assert not is_document_update(encode(SyncStep1(b"\x00")))
    assert not is_document_update(b"\x01\x00")  # awareness
    assert not is_document_update(b"")
