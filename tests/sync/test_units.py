"""Small units: limits, the token bucket, the awareness registry, the memory transport."""

from __future__ import annotations

import json

import anyio
import anyio.lowlevel
import pytest

from sync import ConnectionClosed, SyncLimits, memory_transport_pair
from sync.awareness import MAX_CLIENTS_PER_OWNER, AwarenessRegistry, Identity, stamp
from sync.limits import TokenBucket
from sync.protocol import AwarenessEntry


def test_limits_validated() -> None:
    SyncLimits()
    with pytest.raises(ValueError):
        SyncLimits(max_message_bytes=0)
    with pytest.raises(ValueError):  # a max-size frame must fit in the byte bucket
        SyncLimits(max_message_bytes=10_000, max_bytes_per_second=1000, burst_seconds=1)


def test_token_bucket() -> None:
    now = [0.0]
    bucket = TokenBucket(10, 20, clock=lambda: now[0])
    assert bucket.take(20) == 0.0
    assert bucket.take(5) == pytest.approx(0.5)  # debt recorded: 5 tokens at 10/s
    now[0] += 0.5
    assert bucket.take(0) == 0.0
    now[0] += 100
    assert bucket.take(20) == 0.0  # refill capped at capacity
    assert bucket.take(1) == pytest.approx(0.1)


def entry(cid: int, clock: int, state: str = '{"a":1}') -> AwarenessEntry:
    return AwarenessEntry(cid, clock, state)


def test_awareness_registry_rules() -> None:
    reg = AwarenessRegistry()
    alice, bob = object(), object()
    assert reg.apply(alice, (entry(1, 1),)) == [entry(1, 1)]
    assert reg.apply(alice, (entry(1, 1),)) == []  # same clock: stale
    assert reg.apply(alice, (entry(1, 2),)) == [entry(1, 2)]  # keep-alive relayed
    # Another connection can neither remove nor take over alice's client.
    assert reg.apply(bob, (entry(1, 2, "null"),)) == []
    assert reg.apply(bob, (entry(1, 9, '{"user":"bob"}'),)) == []
    assert reg.snapshot() == [entry(1, 2)]
    assert reg.apply(alice, (entry(1, 3, "null"),)) == [entry(1, 3, "null")]
    assert len(reg) == 0
    # Departed, the client id still belongs to its principal: bob cannot claim it.
    assert reg.apply(bob, (entry(1, 99),)) == []
    assert reg.apply(alice, (entry(1, 4),)) == [entry(1, 4)]


def test_awareness_same_principal_takes_over_on_reconnect() -> None:
    reg = AwarenessRegistry()
    old_socket, new_socket, mallory = object(), object(), object()
    reg.apply(old_socket, (entry(1, 3),), principal="alice")
    # Alice's client reconnects before her old socket is noticed dead: it keeps its cursor.
    assert reg.apply(new_socket, (entry(1, 4),), principal="alice") == [entry(1, 4)]
    assert reg.apply(mallory, (entry(1, 5),), principal="mallory") == []
    assert reg.drop(old_socket) == []
    assert reg.drop(new_socket) == [entry(1, 4, "null")]
    assert reg.snapshot() == []


def test_stamp_sets_the_servers_identity() -> None:
    who = Identity("u1", "Alice")
    stamped = json.loads(stamp('{"user":{"name":"Bob","id":"u2","colorIndex":3},"x":1}', who))
    assert stamped == {"user": {"name": "Alice", "id": "u1", "colorIndex": 3}, "x": 1}
    assert json.loads(stamp('"just a string"', who)) == {"user": {"id": "u1", "name": "Alice"}}
    assert json.loads(stamp('{"user":"Bob"}', who)) == {"user": {"id": "u1", "name": "Alice"}}


def test_awareness_clients_per_connection_capped() -> None:
    reg = AwarenessRegistry()
    mallory = object()
    accepted = reg.apply(mallory, tuple(entry(i, 1) for i in range(100)))
    assert len(accepted) == MAX_CLIENTS_PER_OWNER
    assert len(reg.drop(mallory)) == MAX_CLIENTS_PER_OWNER


@pytest.mark.anyio
async def test_memory_transport_semantics() -> None:
    a, b = memory_transport_pair()
    await a.send(b"one")
    await a.close(4000, "done")
    assert await b.recv() == b"one"  # sent before the close: still delivered
    with pytest.raises(ConnectionClosed) as info:
        await b.recv()
    assert (info.value.code, info.value.reason) == (4000, "done")
    with pytest.raises(ConnectionClosed):
        await b.send(b"late")
    await b.close()
    await a.close()  # idempotent


@pytest.mark.anyio
async def test_memory_transport_close_releases_blocked_sender() -> None:
    a, b = memory_transport_pair(max_buffer=0)
    async with anyio.create_task_group() as tg:
        failed = anyio.Event()

        async def blocked() -> None:
            with pytest.raises(ConnectionClosed):
                await a.send(b"never read")
            failed.set()

        tg.start_soon(blocked)
        await anyio.lowlevel.checkpoint()
        await b.close()
        with anyio.fail_after(1):
            await failed.wait()
    await a.close()


@pytest.mark.anyio
async def test_queued_frames_are_sent_untouched_and_the_queue_is_bounded() -> None:
    """The room coalesces per round; a connection sends the frames it is given, the same
    bytes, in order, and a reader that lets its queue fill is closed (SLOW_CONSUMER)."""
    from sync.connection import Connection
    from sync.permission import Permission
    from sync.transport import CloseCode

    server_end, client_end = memory_transport_pair()
    conn = Connection(server_end, Permission.EDIT, "k", SyncLimits(max_queued_messages=8))
    frames = [bytes([0, 2, 1, i]) for i in range(8)]
    for frame in frames:
        conn.send(frame)
    assert conn.queued == (8, 32) and not conn.closed
    assert list(conn._queue) == frames
    assert all(a is b for a, b in zip(conn._queue, frames, strict=True))
    conn.send(b"one too many")
    assert conn.close_code == CloseCode.SLOW_CONSUMER
    assert conn.queued == (0, 0)
    await server_end.close()
    await client_end.close()
