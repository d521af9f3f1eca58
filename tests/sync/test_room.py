"""Room behaviour over in-memory channels, with pycrdt docs as clients.

alice and bob edit, carol only reads."""

from __future__ import annotations

import json
import random

import anyio
import pytest

from sync import CloseCode, Identity, Permission, RoomManager, SyncLimits
from sync import ConnectionClosed as ConnectionClosedError
from sync.protocol import (
    AwarenessEntry,
    AwarenessUpdate,
    SyncStep2,
    SyncUpdate,
    decode_frame,
    encode,
    write_var_uint,
)
from tests.sync.yclient import YClient, room, server_text, wait_for

pytestmark = pytest.mark.anyio


async def test_two_editors_converge_after_concurrent_edits(manager: RoomManager) -> None:
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        await wait_for(lambda: alice.synced.is_set() and bob.synced.is_set())
        # Concurrent: both type before seeing the other's edit.
        alice.text.insert(0, "Hello from alice. ")
        bob.text.insert(0, "Bob was here. ")
        await alice.flush()
        await bob.flush()
        await wait_for(lambda: str(alice.text) == str(bob.text) and len(str(alice.text)) == 32)
        await alice.type("!")
        await wait_for(lambda: str(bob.text).endswith("!"))
        state = await manager.snapshot_state("doc")
        await alice.close()
        await bob.close()
    assert set(str(alice.text).split(". ")) >= {"Hello from alice", "Bob was here"}
    server = YClient("server-view")
    server.apply_remote(state)
    assert str(server.text) == str(alice.text)


async def test_newcomer_gets_document_and_awareness_snapshot(manager: RoomManager) -> None:
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await alice.type("shared text")
        await alice.set_awareness({"user": {"name": "Alice"}, "cursor": 3})
        await wait_for(lambda: len(room(manager).awareness) == 1)
        await bob.connect(tg, manager)
        await wait_for(lambda: str(bob.text) == "shared text")
        # The awareness snapshot arrives right after the server's step 1, unasked.
        await wait_for(lambda: alice.client_id in bob.present())
        assert bob.present()[alice.client_id]["user"]["name"] == "Alice"
        # query-awareness is answered too.
        before = len(bob.awareness_messages)
        await bob.query_awareness()
        await wait_for(lambda: len(bob.awareness_messages) > before)
        await alice.close()
        await bob.close()


async def test_close_broadcasts_awareness_removal(manager: RoomManager) -> None:
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        await alice.set_awareness({"user": "alice"})
        await wait_for(lambda: alice.client_id in bob.present())
        await alice.close()
        # No ghost cursor: the server announces alice's removal (state null).
        await wait_for(lambda: alice.client_id not in bob.present())
        clock, state = bob.awareness[alice.client_id]
        assert state is None and clock == alice.clock
        await bob.close()


async def test_awareness_relayed_including_keepalive(manager: RoomManager) -> None:
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        await alice.set_awareness({"user": "alice"})
        await wait_for(lambda: alice.client_id in bob.present())
        n = len(bob.awareness_messages)
        await alice.set_awareness({"user": "alice"})  # same state, newer clock: keep-alive
        await wait_for(lambda: len(bob.awareness_messages) > n)
        assert bob.awareness[alice.client_id][0] == 2
        # A stale clock is not relayed.
        stale = AwarenessEntry(alice.client_id, 1, json.dumps({"user": "old"}))
        await alice.send_raw(encode(AwarenessUpdate((stale,))))
        await alice.set_awareness({"user": "alice", "n": 3})
        await wait_for(lambda: bob.awareness[alice.client_id][0] == 3)
        assert all(e.clock != 1 for m in bob.awareness_messages[n:] for e in m.entries)
        await alice.close()
        await bob.close()


async def test_viewer_update_dropped_and_denied(manager: RoomManager) -> None:
    alice, bob, carol = YClient("alice"), YClient("bob"), YClient("carol")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await carol.connect(tg, manager, permission=Permission.READ)
        await bob.connect(tg, manager)
        await alice.type("by alice")
        await wait_for(lambda: str(carol.text) == "by alice" and str(bob.text) == "by alice")
        # The viewer's empty step 2 on connect did not earn a denial...
        assert carol.denied == []
        before = await manager.snapshot_state("doc")
        # ...but content does, as an update and as a step 2.
        carol.text.insert(0, "carol sneaks in ")
        await carol.flush()
        await wait_for(lambda: len(carol.denied) == 1)
        update = carol.doc.get_update()
        await carol.send_raw(encode(SyncStep2(update)))
        await wait_for(lambda: len(carol.denied) == 2)
        # Viewers may still send awareness.
        await carol.set_awareness({"user": "carol"})
        await wait_for(lambda: carol.client_id in alice.present())
        # Round trip through alice so bob has had every chance to see carol's edit.
        await alice.type(".")
        await wait_for(lambda: str(bob.text) == "by alice.")
        assert "carol" not in str(alice.text)
        assert (await manager.snapshot_state("doc")) != before  # alice's "." only
        state = await manager.snapshot_state("doc")
        view = YClient("check")
        view.apply_remote(state)
        assert str(view.text) == "by alice."
        # Still connected, still receiving updates.
        assert carol.closed is None
        await wait_for(lambda: str(carol.text).endswith("by alice."))
        for c in (alice, bob, carol):
            await c.close()


async def test_permission_downgrade_and_revoke(manager: RoomManager) -> None:
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        await bob.type("bob writes")
        await wait_for(lambda: str(alice.text) == "bob writes")
        # Only a real change counts (the app re-checks everyone after any access change).
        assert manager.set_permission("doc", "bob", Permission.EDIT) == 0
        assert manager.set_permission("doc", "bob", Permission.READ) == 1
        assert manager.set_permission("doc", "bob", Permission.READ) == 0
        await bob.type(" more")
        await wait_for(lambda: len(bob.denied) == 1)
        assert manager.revoke("doc", "bob") == 1
        with anyio.fail_after(1.0):  # SECURITY.md: closed within a second
            await wait_for(lambda: bob.closed is not None)
        assert bob.closed is not None and bob.closed.code == CloseCode.FORBIDDEN
        await wait_for(lambda: bob.server_result == CloseCode.FORBIDDEN)
        assert alice.closed is None
        assert str(alice.text) == "bob writes"
        await alice.close()


async def test_close_document_closes_everyone(manager: RoomManager) -> None:
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        await alice.type("x")
        await wait_for(lambda: str(bob.text) == "x")
        assert await manager.close_document("doc") is True
        await wait_for(lambda: alice.closed is not None and bob.closed is not None)
        assert alice.closed is not None and alice.closed.code == CloseCode.DOCUMENT_CLOSED
    assert not manager.loaded("doc")


@pytest.mark.parametrize("limits", [SyncLimits(max_queued_messages=8, max_message_bytes=1000)])
async def test_slow_reader_is_disconnected(manager: RoomManager) -> None:
    alice, slow = YClient("alice"), YClient("slow")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        # max_buffer=0 and nobody reading: the server's send blocks, its queue fills.
        await slow.connect(tg, manager, max_buffer=0, read=False)
        for i in range(40):
            await alice.type(f"{i:02} " + "x" * 600)
            # A round each: the room merges a batch into one frame, and a single frame
            # bigger than the bound is admitted into an empty queue.
            await wait_for(lambda i=i: server_text(manager).endswith(f"{i:02} " + "x" * 600))
        await wait_for(lambda: slow.server_result == CloseCode.SLOW_CONSUMER)
        await slow.close()
        # alice was never held up and is still served.
        await alice.type("end")
        await wait_for(lambda: server_text(manager).endswith("end"))
        assert alice.closed is None
        await alice.close()


def _hostile_frames() -> list[tuple[str, bytes]]:
    rnd = random.Random(7)
    good = YClient("x")
    good.text.insert(0, "valid text")
    update = good.doc.get_update()
    frames = [
        ("random", bytes(rnd.randrange(256) for _ in range(64))),
        ("truncated", encode(SyncUpdate(update))[:-3]),
        ("huge length", bytes([0, 2]) + write_var_uint((1 << 53) - 1) + b"abc"),
        ("overflowing varuint", bytes([0, 2]) + b"\xff" * 11),
        ("unknown type", bytes([9, 0])),
        ("garbage update", encode(SyncUpdate(bytes(rnd.randrange(256) for _ in range(40))))),
        ("bad json awareness", bytes([1]) + bytes([6, 1, 1, 1, 3]) + b"{x}"),
        ("empty frame", b""),
    ]
    for _ in range(3):
        mutated = bytearray(update)
        mutated[rnd.randrange(len(mutated))] = rnd.randrange(256)
        frames.append(("mutated update", encode(SyncUpdate(bytes(mutated)))))
    return frames


HOSTILE_FRAMES = _hostile_frames()


# Ids by position: the mutated updates' bytes differ per run (a fresh client id), and test ids
# must be the same in every process that collects them (pytest-xdist).
@pytest.mark.parametrize(("kind", "frame"), HOSTILE_FRAMES,
                         ids=[f"{kind}-{n}" for n, (kind, _) in enumerate(HOSTILE_FRAMES)])
async def test_hostile_input_closes_only_that_connection(
    manager: RoomManager, kind: str, frame: bytes
) -> None:
    alice, bob, mallory = YClient("alice"), YClient("bob"), YClient("mallory")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        await alice.type("before")
        await wait_for(lambda: str(bob.text) == "before")
        await mallory.connect(tg, manager)
        await wait_for(lambda: mallory.synced.is_set())
        before = await manager.snapshot_state("doc")
        await mallory.send_raw(frame)
        # Then a marker edit in its own frame: frames are handled in order, so once
        # the marker is stored or mallory is closed, the hostile frame was handled.
        await mallory.type("M", at=0)
        await wait_for(lambda: mallory.closed is not None or "M" in server_text(manager))
        if kind != "mutated update":  # a mutation can happen to be a valid edit
            assert mallory.closed is not None
        if mallory.closed is not None:
            assert mallory.closed.code in (CloseCode.INVALID_DATA, CloseCode.TOO_BIG)
            assert await manager.snapshot_state("doc") == before
        await alice.type(" after")
        if mallory.closed is not None:
            await wait_for(lambda: str(bob.text) == "before after")
        else:  # the mutation happened to be a valid edit: everyone still converges
            await wait_for(lambda: str(bob.text) == str(alice.text) and "after" in str(bob.text))
        assert alice.closed is None and bob.closed is None
        for c in (alice, bob, mallory):
            await c.close()


@pytest.mark.parametrize("limits", [SyncLimits(max_message_bytes=1000, max_bytes_per_second=1000)])
async def test_oversized_message_closes(manager: RoomManager) -> None:
    alice = YClient("alice")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await alice.type("x" * 2000)
        await wait_for(lambda: alice.closed is not None)
        assert alice.closed is not None and alice.closed.code == CloseCode.TOO_BIG


@pytest.mark.parametrize("limits", [SyncLimits(max_document_bytes=3000)])
async def test_document_size_cap(manager: RoomManager) -> None:
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        await alice.type("a" * 1000)
        await wait_for(lambda: len(str(bob.text)) == 1000)
        before = await manager.snapshot_state("doc")
        await alice.type("b" * 2500)
        await wait_for(lambda: alice.closed is not None)
        assert alice.closed is not None and alice.closed.code == CloseCode.TOO_BIG
        assert await manager.snapshot_state("doc") == before
        # The shadow was rebuilt: small edits from others still go through.
        await bob.type("c")
        await wait_for(lambda: server_text(manager) == "a" * 1000 + "c")
        await bob.close()


@pytest.mark.parametrize(
    "limits",
    [
        SyncLimits(
            max_messages_per_second=50,
            burst_seconds=0.1,
            max_message_bytes=1000,
            max_bytes_per_second=100_000,
        )
    ],
)
async def test_rate_limit_slows_reader_without_dropping(manager: RoomManager) -> None:
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        start = anyio.current_time()
        for i in range(20):
            await alice.type(str(i % 10))
        await wait_for(lambda: len(str(bob.text)) == 20)
        # 20 messages (+ step 1/2) at 50/s with a burst of 5: at least ~0.3 s.
        assert anyio.current_time() - start >= 0.25
        assert alice.closed is None
        await alice.close()
        await bob.close()


# Found by mutating valid updates: against this base state, yrs panics (a pyo3
# PanicException, which is a BaseException) half-way through applying it.
PANIC_UPDATE = bytes.fromhex(
    "0100010e010004626f6c640474727565c4010ed80003616263c60111010004626f6c64046e756c6c00"
)


def _panic_base() -> bytes:
    from pycrdt import Doc, Text

    doc: Doc[object] = Doc(client_id=1)
    doc.get("t", type=Text).insert(0, "hello world")
    return doc.get_update()


async def test_panicking_update_leaves_document_identical(manager: RoomManager) -> None:
    from pycrdt import Doc

    probe: Doc[object] = Doc(client_id=2)
    probe.apply_update(_panic_base())
    with pytest.raises(BaseException) as info:  # noqa: B017 - the point is its type
        probe.apply_update(PANIC_UPDATE)
    assert not isinstance(info.value, Exception)  # a Rust panic, not an ordinary error

    assert await manager.initialize("doc", [_panic_base()]) is True
    alice, mallory = YClient("alice"), YClient("mallory")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await mallory.connect(tg, manager)
        before = await manager.snapshot_state("doc")
        await mallory.send_raw(encode(SyncUpdate(PANIC_UPDATE)))
        await wait_for(lambda: mallory.closed is not None)
        assert mallory.closed is not None and mallory.closed.code == CloseCode.INVALID_DATA
        assert await manager.snapshot_state("doc") == before
        await alice.type("!")
        await wait_for(lambda: server_text(manager) == "hello world!")
        await alice.close()
    view = YClient("view")
    view.apply_remote(await manager.snapshot_state("doc"))
    assert str(view.text) == "hello world!"


async def test_several_messages_in_one_frame(manager: RoomManager) -> None:
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        alice.text.insert(0, "one")
        first = alice.outbox.pop()
        alice.text.insert(3, "two")
        second = alice.outbox.pop()
        aw = AwarenessEntry(alice.client_id, 1, json.dumps({"user": "alice"}))
        frame = (
            encode(SyncUpdate(first)) + encode(AwarenessUpdate((aw,))) + encode(SyncUpdate(second))
        )
        await alice.send_raw(frame)
        await wait_for(lambda: str(bob.text) == "onetwo" and alice.client_id in bob.present())
        await alice.close()
        await bob.close()


async def test_invalid_document_id_refused(manager: RoomManager) -> None:
    from sync import InvalidDocumentId, memory_transport_pair

    server_end, client_end = memory_transport_pair()
    with pytest.raises(InvalidDocumentId):
        await manager.serve(server_end, "../etc", Permission.EDIT, "x")
    with pytest.raises(ConnectionClosedError):
        await client_end.recv()
    await client_end.close()


@pytest.mark.parametrize("limits", [SyncLimits(max_queued_messages=64)])
async def test_a_lagging_reader_gets_one_frame_per_round_in_order(manager: RoomManager) -> None:
    alice, lag = YClient("alice"), YClient("lag")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        # Nobody reads yet: the server's first send blocks, everything after it queues.
        await lag.connect(tg, manager, max_buffer=0, read=False)
        assert manager.committer is not None
        rounds_before = manager.committer.requests
        for i in range(30):
            await alice.type(f"{i} ")
            await alice.set_awareness({"cursor": i})
        await wait_for(lambda: server_text(manager).endswith("29 "))
        await wait_for(lambda: any(
            e.client_id == alice.client_id and e.state == json.dumps({"cursor": 29})
            for e in room(manager).awareness.snapshot()))
        tg.start_soon(lag._recv_loop)
        await wait_for(lambda: str(lag.text) == str(alice.text))
        await wait_for(lambda: lag.present().get(alice.client_id) == {"cursor": 29})
        messages = [decode_frame(f) for f in lag.frames]
        # The stock client reads one message per frame: never concatenated.
        assert all(len(m) == 1 for m in messages)
        updates = [m[0] for m in messages if isinstance(m[0], SyncUpdate)]
        awareness = [m[0] for m in messages if isinstance(m[0], AwarenessUpdate)]
        # The room coalesces per round (the connection merges nothing): one update frame
        # per committed batch, and presence at most once per turn of the writer.
        assert len(updates) == manager.committer.requests - rounds_before
        assert 1 <= len(awareness) <= 30
        assert lag.closed is None
        await alice.close()
        await lag.close()


async def test_stale_awareness_echo_is_dropped_without_parsing(manager: RoomManager) -> None:
    """Stock clients send every awareness update they receive back to the server; those
    repeats are ignored before their JSON is even looked at (it dominated the CPU with
    many clients), and nothing is relayed."""
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager)
        await bob.connect(tg, manager)
        await alice.set_awareness({"n": 1})
        await wait_for(lambda: bob.present().get(alice.client_id) == {"n": 1})
        heard = len(alice.awareness_messages)
        echo = AwarenessEntry(alice.client_id, alice.clock, "{not json")
        await bob.send_raw(encode(AwarenessUpdate((echo,))))
        await bob.type("fence")
        await wait_for(lambda: str(alice.text) == "fence")
        assert bob.closed is None
        assert len(alice.awareness_messages) == heard
        assert room(manager).awareness.snapshot()[0].state == json.dumps({"n": 1})
        # A *new* entry with broken JSON still closes the connection.
        await bob.send_raw(encode(AwarenessUpdate((
            AwarenessEntry(alice.client_id, alice.clock + 1, "{not json"),))))
        await wait_for(lambda: bob.closed is not None)
        for c in (alice, bob):
            await c.close()


# -- presence cannot be spoofed -----------------------------------------------------------------

ALICE = Identity("u-alice", "Alice")
MALLORY = Identity("u-mallory", "Mallory")


async def test_awareness_carries_the_servers_identity(manager: RoomManager) -> None:
    """A client cannot show up under another person's name: id and name are stamped on."""
    mallory, bob = YClient("mallory"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await mallory.connect(tg, manager, identity=MALLORY, permission=Permission.READ)
        await bob.connect(tg, manager, identity=Identity("u-bob", "Bob"))
        await mallory.set_awareness({"user": {"name": "Alice", "id": "u-alice",
                                              "colorIndex": 4}, "cursor": 7})
        await wait_for(lambda: mallory.client_id in bob.present())
        seen = bob.present()[mallory.client_id]
        assert seen == {"user": {"name": "Mallory", "id": "u-mallory", "colorIndex": 4},
                        "cursor": 7}
        # A newcomer's snapshot holds the stamped state too.
        carol = YClient("carol")
        await carol.connect(tg, manager, identity=Identity("u-carol", "Carol"))
        await wait_for(lambda: mallory.client_id in carol.present())
        assert carol.present()[mallory.client_id]["user"]["name"] == "Mallory"
        for c in (mallory, bob, carol):
            await c.close()


async def test_another_connections_presence_cannot_be_taken_or_removed(
        manager: RoomManager) -> None:
    alice, mallory, bob = YClient("alice"), YClient("mallory"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager, identity=ALICE)
        await mallory.connect(tg, manager, identity=MALLORY, permission=Permission.READ)
        await bob.connect(tg, manager, identity=Identity("u-bob", "Bob"))
        await alice.set_awareness({"user": {"name": "Alice"}})
        await wait_for(lambda: alice.client_id in bob.present())
        # Take over alice's client id with a newer clock, then remove it.
        await mallory.set_awareness({"user": {"name": "Alice"}, "cursor": 666},
                                    client_id=alice.client_id, clock=alice.clock + 10)
        await mallory.set_awareness(None, client_id=alice.client_id, clock=alice.clock)
        await mallory.set_awareness(None, client_id=alice.client_id, clock=alice.clock + 20)
        # Fences: mallory's answer to her query means her frames were handled; alice's
        # edit reaching bob after that means whatever they relayed reached him first.
        heard = len(mallory.awareness_messages)
        await mallory.query_awareness()
        await wait_for(lambda: len(mallory.awareness_messages) > heard)
        await alice.type("fence")
        await wait_for(lambda: str(bob.text) == "fence")
        assert bob.present()[alice.client_id] == {"user": {"name": "Alice", "id": "u-alice"}}
        assert [e.client_id for e in room(manager).awareness.snapshot()] == [alice.client_id]
        assert all(e.clock <= alice.clock for m in bob.awareness_messages for e in m.entries
                   if e.client_id == alice.client_id)
        # Alice herself still may, and when she leaves nobody can claim her id.
        await alice.close()
        await wait_for(lambda: alice.client_id not in bob.present())
        await mallory.set_awareness({"user": {}}, client_id=alice.client_id, clock=10**9)
        await mallory.set_awareness({"user": {}})
        await wait_for(lambda: mallory.client_id in bob.present())
        assert alice.client_id not in bob.present()
        for c in (mallory, bob):
            await c.close()


@pytest.mark.parametrize("limits", [SyncLimits(max_awareness_per_second=10, burst_seconds=0.5)])
async def test_awareness_flood_is_rate_limited(manager: RoomManager) -> None:
    mallory, bob = YClient("mallory"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await mallory.connect(tg, manager, identity=MALLORY)
        await bob.connect(tg, manager, identity=Identity("u-bob", "Bob"))
        started = anyio.current_time()
        for i in range(25):
            await mallory.set_awareness({"n": i})
        await wait_for(lambda: bob.present().get(mallory.client_id, {}).get("n") == 24, 30)
        # 5 in the burst, then 10 a second: the last cannot be relayed before ~2 s.
        assert anyio.current_time() - started >= 1.5
        for c in (mallory, bob):
            await c.close()


@pytest.mark.parametrize("limits", [SyncLimits(max_awareness_per_second=1, burst_seconds=0.5)])
async def test_echoed_awareness_costs_no_rate(manager: RoomManager) -> None:
    """A stock client echoes every awareness update it receives: those stale repeats must not
    use up its own allowance (in a busy room they would stall its edits)."""
    alice, bob = YClient("alice"), YClient("bob")
    async with anyio.create_task_group() as tg:
        await alice.connect(tg, manager, identity=ALICE)
        await bob.connect(tg, manager, identity=Identity("u-bob", "Bob"))
        await alice.set_awareness({"n": 1})
        await wait_for(lambda: alice.client_id in bob.present())
        echo = AwarenessEntry(alice.client_id, alice.clock, json.dumps({"n": 1}))
        started = anyio.current_time()
        for _ in range(50):
            await bob.send_raw(encode(AwarenessUpdate((echo,))))
        await bob.type("after the echoes")
        await wait_for(lambda: str(alice.text) == "after the echoes")
        assert anyio.current_time() - started < 5  # 50 charged messages would take 50 s
        for c in (alice, bob):
            await c.close()
