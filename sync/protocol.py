"""The y-websocket message codec (y-protocols' PROTOCOL.md), owned here.

Frame = message+ where message = varUint(type) + payload:

* 0 sync:      varUint(0 step 1 | 1 step 2 | 2 update) + varByteArray
* 1 awareness: varByteArray(varUint(count) + count * (clientID, clock, varString(JSON)))
* 2 auth:      varUint(0 permission denied) + varString(reason)      (server -> client)
* 3 query awareness: no payload

varUint = 7 bits per byte, low group first, high bit = "more".  Byte arrays and
strings are varUint(length in *bytes*) + bytes (pycrdt's ``write_var_string``
counts characters, which breaks on any non-ASCII text; that is why this is ours).

The decoder treats every byte as hostile: it refuses truncated input, a varUint
longer than 8 bytes or above 2^53 - 1 (what a JavaScript peer can represent),
length claims beyond the frame, unknown types, invalid UTF-8, and awareness
states that are not strict JSON (a browser's ``JSON.parse`` would throw on them
after we relayed them).  Every refusal is a ProtocolError, nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from sync.errors import ProtocolError

__all__ = [
    "EMPTY_UPDATE",
    "MAX_VAR_UINT",
    "AwarenessEntry",
    "AwarenessUpdate",
    "Message",
    "MessageType",
    "PermissionDenied",
    "QueryAwareness",
    "SyncStep1",
    "SyncStep2",
    "SyncType",
    "SyncUpdate",
    "check_awareness_state",
    "decode_awareness_update",
    "decode_frame",
    "encode",
    "encode_awareness_update",
    "is_document_update",
    "validate_state_vector",
    "write_var_bytes",
    "write_var_string",
    "write_var_uint",
]

#: Largest integer a JavaScript peer (lib0) represents exactly: 2^53 - 1.
MAX_VAR_UINT = (1 << 53) - 1
_MAX_VAR_UINT_BYTES = 8  # 8 * 7 = 56 bits >= 53
#: An empty Yjs update (no structs, empty delete set): carries nothing.
EMPTY_UPDATE = b"\x00\x00"


class MessageType(IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3


class SyncType(IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


_AUTH_PERMISSION_DENIED = 0


@dataclass(frozen=True, slots=True)
class SyncStep1:
    state_vector: bytes


@dataclass(frozen=True, slots=True)
class SyncStep2:
    update: bytes


@dataclass(frozen=True, slots=True)
class SyncUpdate:
    update: bytes


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state: str  # JSON text; "null" means the client is gone

    @property
    def removed(self) -> bool:
        return self.state == "null"


@dataclass(frozen=True, slots=True)
class AwarenessUpdate:
    entries: tuple[AwarenessEntry, ...]


@dataclass(frozen=True, slots=True)
class PermissionDenied:
    reason: str


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    pass


Message = SyncStep1 | SyncStep2 | SyncUpdate | AwarenessUpdate | PermissionDenied | QueryAwareness


# -- encoding -------------------------------------------------------------------------


def write_var_uint(num: int) -> bytes:
    if not 0 <= num <= MAX_VAR_UINT:
        raise ValueError(f"varUint out of range: {num}")
    out = bytearray()
    while num > 0x7F:
        out.append(0x80 | (num & 0x7F))
        num >>= 7
    out.append(num)
    return bytes(out)


def write_var_bytes(data: bytes) -> bytes:
    return write_var_uint(len(data)) + data


def write_var_string(text: str) -> bytes:
    return write_var_bytes(text.encode("utf-8"))


def encode_awareness_update(entries: tuple[AwarenessEntry, ...] | list[AwarenessEntry]) -> bytes:
    """The awareness *update* (the byte array inside an awareness message)."""
    parts = [write_var_uint(len(entries))]
    for e in entries:
        parts += [write_var_uint(e.client_id), write_var_uint(e.clock), write_var_string(e.state)]
    return b"".join(parts)


def encode(message: Message) -> bytes:
    """One message as the bytes of one frame."""
    match message:
        case SyncStep1(state_vector=sv):
            return bytes([MessageType.SYNC, SyncType.STEP1]) + write_var_bytes(sv)
        case SyncStep2(update=u):
            return bytes([MessageType.SYNC, SyncType.STEP2]) + write_var_bytes(u)
        case SyncUpdate(update=u):
            return bytes([MessageType.SYNC, SyncType.UPDATE]) + write_var_bytes(u)
        case AwarenessUpdate(entries=entries):
            return bytes([MessageType.AWARENESS]) + write_var_bytes(
                encode_awareness_update(entries)
            )
        case PermissionDenied(reason=reason):
            return bytes([MessageType.AUTH, _AUTH_PERMISSION_DENIED]) + write_var_string(reason)
        case QueryAwareness():
            return bytes([MessageType.QUERY_AWARENESS])
    raise TypeError(f"not a message: {message!r}")  # pragma: no cover - exhaustive above


# -- decoding -------------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def var_uint(self) -> int:
        value = shift = 0
        for _ in range(_MAX_VAR_UINT_BYTES):
            if self.pos >= self.end:
                raise ProtocolError("truncated varUint")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if value > MAX_VAR_UINT:
                    raise ProtocolError("varUint above 2^53 - 1")
                return value
            shift += 7
        raise ProtocolError("varUint longer than 8 bytes")

    def var_bytes(self) -> bytes:
        n = self.var_uint()
        if n > self.remaining:
            raise ProtocolError(f"length claim of {n} bytes exceeds the {self.remaining} left")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def var_string(self) -> str:
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("string is not valid UTF-8") from None


# An empty step 2 (nothing new since the other side's state vector) is a handful of bytes.
_EMPTY_STEP2_MAX_BYTES = 8


def is_document_update(frame: bytes) -> bool:
    """Whether ``frame`` starts as a sync update or a non-empty sync step 2: a cheap look at
    its first bytes (no decoding), enough to tell "this peer edited" for an activity feed.
    The room decides what is applied; this never validates the frame."""
    head = frame[:2]
    if head == bytes((MessageType.SYNC, SyncType.UPDATE)):
        return True
    return head == bytes((MessageType.SYNC, SyncType.STEP2)) and len(frame) > _EMPTY_STEP2_MAX_BYTES


def _refuse_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not JSON")


_JSON = json.JSONDecoder(parse_constant=_refuse_constant)  # one decoder, not one per call


def check_awareness_state(text: str) -> None:
    """ProtocolError unless ``text`` is strict JSON (no NaN/Infinity, bounded nesting)."""
    try:
        _JSON.decode(text)
    except ProtocolError:
        raise
    except (ValueError, RecursionError):
        # RecursionError: "[[[[...": deep nesting must not take the server down.
        raise ProtocolError("awareness state is not valid JSON") from None


def decode_awareness_update(data: bytes, *, check_json: bool = True) -> AwarenessUpdate:
    """``check_json=False`` leaves the states' JSON to the caller (``check_awareness_state``):
    the room checks only the entries it would accept -- stock clients echo every
    awareness update they receive, so most entries are stale repeats."""
    r = _Reader(data)
    count = r.var_uint()
    if count > r.remaining:  # every entry takes at least 3 bytes
        raise ProtocolError("awareness entry count exceeds the payload")
    entries = []
    for _ in range(count):
        client_id, clock, state = r.var_uint(), r.var_uint(), r.var_string()
        if check_json:
            check_awareness_state(state)
        entries.append(AwarenessEntry(client_id, clock, state))
    if r.remaining:
        raise ProtocolError("trailing bytes after the awareness update")
    return AwarenessUpdate(tuple(entries))


def _decode_one(r: _Reader, check_json: bool = True) -> Message:
    kind = r.var_uint()
    if kind == MessageType.SYNC:
        sub = r.var_uint()
        payload = r.var_bytes()
        if sub == SyncType.STEP1:
            return SyncStep1(payload)
        if sub == SyncType.STEP2:
            return SyncStep2(payload)
        if sub == SyncType.UPDATE:
            return SyncUpdate(payload)
        raise ProtocolError(f"unknown sync message type {sub}")
    if kind == MessageType.AWARENESS:
        return decode_awareness_update(r.var_bytes(), check_json=check_json)
    if kind == MessageType.AUTH:
        sub = r.var_uint()
        if sub != _AUTH_PERMISSION_DENIED:
            raise ProtocolError(f"unknown auth message type {sub}")
        return PermissionDenied(r.var_string())
    if kind == MessageType.QUERY_AWARENESS:
        return QueryAwareness()
    raise ProtocolError(f"unknown message type {kind}")


def decode_frame(
    frame: bytes, *, max_frame_bytes: int | None = None, check_json: bool = True
) -> list[Message]:
    """All messages of one frame, in order; ProtocolError on any malformed byte.
    ``check_json``: see ``decode_awareness_update``."""
    frame = bytes(frame)
    if max_frame_bytes is not None and len(frame) > max_frame_bytes:
        raise ProtocolError(f"frame of {len(frame)} bytes exceeds {max_frame_bytes}")
    if not frame:
        raise ProtocolError("empty frame")
    r = _Reader(frame)
    messages = []
    while r.remaining:
        messages.append(_decode_one(r, check_json))
    return messages


_MAX_CLOCK = (1 << 32) - 1  # yrs keeps clocks as u32


def validate_state_vector(data: bytes) -> None:
    """Refuse a state vector yrs could choke on (a step 1 is answered from the live doc)."""
    r = _Reader(bytes(data))
    count = r.var_uint()
    if count > r.remaining:
        raise ProtocolError("state vector entry count exceeds the payload")
    for _ in range(count):
        r.var_uint()
        if r.var_uint() > _MAX_CLOCK:
            raise ProtocolError("state vector clock out of range")
    if r.remaining:
        raise ProtocolError("trailing bytes after the state vector")
