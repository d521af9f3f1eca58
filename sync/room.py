"""A room: one document's live state, its connections, and its durable writer.

The path of an update from a client::

    frame -> decode -> permission -> validate on the *shadow* doc -> pending batch
          -> (writer) append to the encrypted log, one fsync per batch
          -> apply to the room's doc -> broadcast to every *other* connection

* Two pycrdt docs.  ``doc`` holds only what is on disk: step 2 answers,
  snapshots and renderings come from it.  ``shadow`` is ``doc`` plus updates
  accepted but not yet durable, and is where untrusted bytes are applied first:
  yrs can raise or even panic (``PanicException`` derives from BaseException)
  half-way through an update, and a failed apply may have changed the doc.  Then
  only the shadow is thrown away (rebuilt from ``doc``); the room's document stays
  byte-identical and only the sending connection is closed.
* What is logged and broadcast is the *effective* update yrs produced while
  integrating on the shadow (the transaction's own encoding), not the client's
  raw bytes: duplicates cost nothing, and peers only ever receive bytes our own
  encoder wrote.  Structs waiting for missing dependencies stay in the shadow
  until they integrate; they were never acknowledged, so nothing is promised.
* Group commit: the writer task takes everything pending and hands it to the
  process's ``GroupCommitter`` (one writer thread, one round for every room's batch,
  see ``sync.commit``); once it is durable it applies it and broadcasts.  Updates
  arriving meanwhile form the next batch.  A batch is shielded from cancellation, so
  what reached the log is also in ``doc`` -- which compaction relies on.
* Fan-out, encode once: a batch's updates are merged into one update, encoded into
  one frame, and that same ``bytes`` object is queued on every connection (the
  origin is skipped when the whole batch is its own; otherwise it gets its own
  edits back, a no-op for a Yjs client, as with the reference server).  Awareness
  accepted meanwhile is coalesced the same way (the newest entry per client) and
  goes out right after the batch's update: one presence frame per round, not one
  per caret move per connection.
* Loading (snapshot + log tail) and compaction's encoding of the state run in a
  worker thread, so a large note opens without stalling the other rooms.  The
  room's docs are not shared yet while loading; during compaction the thread only
  reads ``doc`` (a read transaction) and the writer task, the only one that writes
  ``doc``, waits for it.
* A failed durable write fails the room: every connection is closed with
  INTERNAL_ERROR (nothing of theirs since the last batch was acknowledged; their
  clients resend on reconnect via step 1/2) and the manager unloads it, so the
  next connection recovers from disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import anyio
from anyio.abc import TaskStatus
from pycrdt import Doc, TransactionEvent, merge_updates

from sync.awareness import AwarenessRegistry, stamp
from sync.commit import GroupCommitter
from sync.connection import Connection
from sync.errors import (
    DocumentCorrupt,
    DocumentTooLarge,
    ProtocolError,
    RoomUnavailable,
    StorageFull,
)
from sync.limits import StorageGuard, SyncLimits
from sync.permission import Permission
from sync.protocol import (
    EMPTY_UPDATE,
    AwarenessEntry,
    AwarenessUpdate,
    Message,
    PermissionDenied,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    SyncUpdate,
    check_awareness_state,
    decode_frame,
    encode,
    validate_state_vector,
)
from sync.store import DocumentHandle
from sync.transport import CloseCode

__all__ = ["LoadedState", "Room", "RoomState", "load_state"]

log = logging.getLogger(__name__)

READ_ONLY_REASON = "read-only access: updates are not accepted"


class RoomState(Enum):
    OPEN = "open"
    STOPPING = "stopping"
    FAILED = "failed"
    CLOSED = "closed"


def _reraise_fatal(exc: BaseException) -> None:
    """pycrdt errors (including Rust panics) are caught as BaseException; these are not ours."""
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
        raise exc


@dataclass(eq=False, slots=True)
class LoadedState:
    """A document as loaded from its store, before any connection sees it."""

    doc: Doc[Any]
    shadow: Doc[Any]
    size: int


def load_state(document_id: str, updates: list[bytes]) -> LoadedState:
    """Build a room's two docs from the stored updates (snapshot, then log records).

    Blocking and CPU-bound for a long log: the manager runs it in a worker thread.  The
    docs are new and reachable from nowhere else until this returns."""
    doc: Doc[Any] = Doc()
    for update in updates:
        try:
            doc.apply_update(update)
        except BaseException as exc:
            _reraise_fatal(exc)
            raise DocumentCorrupt(f"document {document_id}: stored update fails") from None
    updates.clear()  # the state is in the doc now; let the records go early
    full = doc.get_update()
    shadow: Doc[Any] = Doc()
    shadow.apply_update(full)
    return LoadedState(doc, shadow, len(full))


@dataclass(eq=False, slots=True)
class _Pending:
    update: bytes
    origin: Connection | None
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None


class Room:
    def __init__(
        self,
        document_id: str,
        handle: DocumentHandle,
        limits: SyncLimits,
        *,
        on_failed: Callable[[Room], None] | None = None,
        storage_guard: StorageGuard | None = None,
        committer: GroupCommitter | None = None,
        loaded: LoadedState | None = None,
    ) -> None:
        self.document_id = document_id
        self._handle = handle
        self._limits = limits
        self._on_failed = on_failed
        self._storage_guard = storage_guard
        self._committer = committer
        if loaded is None:
            loaded = load_state(document_id, handle.load())
        self.doc: Doc[Any] = loaded.doc
        self._effects: list[bytes] = []
        self._shadow = loaded.shadow
        self._shadow.observe(self._capture)
        self._doc_bytes = loaded.size
        self._conns: dict[Connection, None] = {}
        self.awareness = AwarenessRegistry()
        #: Awareness accepted since the last round, newest entry per client: sent as one
        #: frame after the round's update (or at once when no batch is being committed).
        self._presence: dict[int, AwarenessEntry] = {}
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._wake = anyio.Event()
        self._space = anyio.Event()
        self._writer_done = anyio.Event()
        self._compact_requested = False
        self.state = RoomState.OPEN
        #: Serializes ``initialize`` so two creators cannot both see an empty document.
        self.init_lock = anyio.Lock()

    # -- state ------------------------------------------------------------------------

    def _capture(self, event: TransactionEvent) -> None:
        self._effects.append(event.update)

    def _new_shadow(self, full: bytes) -> Doc[Any]:
        shadow: Doc[Any] = Doc()
        shadow.apply_update(full)
        shadow.observe(self._capture)
        return shadow

    def _rebuild_shadow(self) -> None:
        """Throw the shadow away: it may be half-modified, or hold a refused update."""
        full = self.doc.get_update()
        self._shadow = self._new_shadow(full)
        # Accepted-but-not-yet-durable updates are part of the shadow's truth: later
        # updates may build on them.  They integrated once, so they integrate again.
        for item in self._pending:
            self._shadow.apply_update(item.update)
        self._effects.clear()
        self._doc_bytes = len(full) + self._pending_bytes

    @property
    def connections(self) -> list[Connection]:
        return list(self._conns)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def is_blank(self) -> bool:
        """True if nothing was ever accepted (durable or pending)."""
        return self._shadow.get_state() == b"\x00" and not self._pending

    def _check_open(self) -> None:
        if self.state is not RoomState.OPEN:
            raise RoomUnavailable(f"room {self.document_id} is {self.state.value}")

    # -- connections --------------------------------------------------------------------

    def join(self, conn: Connection) -> None:
        """Admit ``conn`` and queue what a newcomer needs: our step 1, then who is here."""
        self._check_open()
        self._conns[conn] = None
        conn.send(encode(SyncStep1(self.doc.get_state())))
        present = self.awareness.snapshot()
        if present:
            conn.send(encode(AwarenessUpdate(tuple(present))))

    def leave(self, conn: Connection) -> None:
        if conn in self._conns:
            del self._conns[conn]
            removed = self.awareness.drop(conn)
            if removed:
                self._queue_presence(removed)
        if not self._conns:
            self.request_compaction()

    def set_permission(self, key: str, permission: Permission) -> int:
        """Give ``key``'s connections ``permission``; return how many *changed*."""
        changed = [c for c in self._conns if c.key == key and c.permission is not permission]
        for c in changed:
            c.permission = permission
        return len(changed)

    def revoke(self, key: str, code: int = CloseCode.FORBIDDEN, reason: str = "access revoked"
               ) -> int:
        matched = [c for c in self._conns if c.key == key]
        for c in matched:
            c.abort(code, reason)
        return len(matched)

    def _broadcast(self, frame: bytes, *, exclude: Connection | None) -> None:
        """Queue ``frame`` -- the same bytes -- on every connection but ``exclude``."""
        for c in list(self._conns):
            if c is not exclude:
                c.send(frame)

    def _queue_presence(self, entries: list[AwarenessEntry] | tuple[AwarenessEntry, ...]) -> None:
        for e in entries:
            self._presence.pop(e.client_id, None)  # re-inserted last: the newest order
            self._presence[e.client_id] = e
        self._wake.set()

    def _flush_presence(self) -> None:
        if self._presence:
            entries, self._presence = tuple(self._presence.values()), {}
            self._broadcast(encode(AwarenessUpdate(entries)), exclude=None)

    # -- incoming -------------------------------------------------------------------------

    async def handle_frame(self, conn: Connection, frame: bytes) -> int:
        """Handle one frame from ``conn``; return how many messages it held."""
        try:
            messages = decode_frame(
                frame, max_frame_bytes=self._limits.max_message_bytes, check_json=False
            )
        except ProtocolError as exc:
            conn.abort(CloseCode.INVALID_DATA, str(exc))
            return 0
        for message in messages:
            if conn.closed:
                break
            try:
                await self._handle_message(conn, message)
            except ProtocolError as exc:
                conn.abort(CloseCode.INVALID_DATA, str(exc))
            except DocumentTooLarge as exc:
                conn.abort(CloseCode.TOO_BIG, str(exc))
            except StorageFull as exc:
                conn.abort(CloseCode.STORAGE_FULL, str(exc))
            except RoomUnavailable as exc:
                conn.abort(CloseCode.INTERNAL_ERROR, str(exc))
        return len(messages)

    async def _handle_message(self, conn: Connection, message: Message) -> None:
        match message:
            case SyncStep1(state_vector=sv):
                validate_state_vector(sv)
                try:
                    reply = self.doc.get_update(sv)
                except BaseException as exc:
                    _reraise_fatal(exc)
                    raise ProtocolError("state vector refused") from None
                conn.send(encode(SyncStep2(reply)))
            case SyncStep2(update=update) | SyncUpdate(update=update):
                if conn.permission is not Permission.EDIT:
                    # A viewer's client answers our step 1 with an (empty) step 2 on
                    # every connect: drop that silently, refuse anything with content.
                    if update != EMPTY_UPDATE:
                        conn.send(encode(PermissionDenied(READ_ONLY_REASON)))
                    return
                if self._storage_guard is not None and update != EMPTY_UPDATE:
                    # Before anything is applied: a refused update changes nothing here.
                    reason = self._storage_guard(self.document_id, len(update))
                    if reason is not None:
                        raise StorageFull(reason)
                await self._wait_for_space()
                if not conn.closed:
                    self._submit(update, conn)
            case AwarenessUpdate(entries=entries):
                # Stock clients echo every awareness update they receive: all-stale messages
                # change nothing and cost nothing (not even the rate).  Anything else is
                # rate-limited before it is relayed: the reader waits (its TCP window fills),
                # so a flood of presence costs the others nothing.
                if all(self.awareness.is_stale(e) for e in entries):
                    return
                wait = conn.awareness_wait()
                if wait > 0:
                    await anyio.sleep(wait)
                    if conn.closed:
                        return
                # JSON checked here, for what would be accepted only: stock clients echo
                # every awareness update they receive, so most entries are stale repeats.
                for e in entries:
                    if not self.awareness.is_stale(e):
                        check_awareness_state(e.state)
                identity = conn.identity
                if identity is not None:
                    # The person's id and name come from the server, never from the client.
                    entries = tuple(
                        e if e.removed or self.awareness.is_stale(e)
                        or not self.awareness.may_send(conn, e.client_id, identity.id)
                        else AwarenessEntry(e.client_id, e.clock, stamp(e.state, identity))
                        for e in entries
                    )
                principal = None if identity is None else identity.id
                accepted = self.awareness.apply(conn, entries, principal)
                if accepted:
                    # The sender gets its own entries back with the round's frame: same
                    # clock, so its client ignores them (y-protocols' awareness does).
                    self._queue_presence(accepted)
            case QueryAwareness():
                conn.send(encode(AwarenessUpdate(tuple(self.awareness.snapshot()))))
            case PermissionDenied():
                pass  # server -> client only; a client sending one is ignored

    async def _wait_for_space(self) -> None:
        while (
            self._pending_bytes >= self._limits.max_pending_bytes and self.state is RoomState.OPEN
        ):
            await self._space.wait()
        self._check_open()

    def _validate(self, update: bytes) -> bytes | None:
        """Apply ``update`` to the shadow; return the effective update, or None if it
        added nothing.  Raises ProtocolError / DocumentTooLarge, shadow rebuilt."""
        if update == EMPTY_UPDATE:
            return None
        self._effects.clear()
        try:
            self._shadow.apply_update(update)
        except BaseException as exc:
            _reraise_fatal(exc)
            self._rebuild_shadow()
            raise ProtocolError("malformed update") from None
        effects, self._effects = self._effects, []
        if not effects:
            return None
        effective = effects[0] if len(effects) == 1 else merge_updates(*effects)
        size = self._doc_bytes + len(effective)
        if size > self._limits.max_document_bytes:
            # The running sum over-estimates (merging shrinks): measure before refusing.
            size = len(self._shadow.get_update())
            if size > self._limits.max_document_bytes:
                self._rebuild_shadow()
                raise DocumentTooLarge(
                    f"document would exceed {self._limits.max_document_bytes} bytes"
                )
        self._doc_bytes = size
        return effective

    def _submit(self, update: bytes, origin: Connection | None) -> _Pending | None:
        # No await between validating on the shadow and queueing: the log order is
        # the shadow's order.
        self._check_open()
        effective = self._validate(update)
        if effective is None:
            return None
        item = _Pending(effective, origin)
        self._pending.append(item)
        self._pending_bytes += len(effective)
        self._wake.set()
        return item

    async def apply(self, update: bytes) -> None:
        """A server-side edit: durable, applied and broadcast when this returns."""
        await self._wait_for_space()
        item = self._submit(update, None)
        if item is None:
            return
        await item.done.wait()
        if item.error is not None:
            raise RoomUnavailable(f"room {self.document_id}: update not stored") from item.error

    def request_compaction(self) -> None:
        self._compact_requested = True
        self._wake.set()

    # -- the writer ---------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The room's writer task: group commits, then compaction when due."""
        task_status.started()
        try:
            while True:
                await self._wake.wait()
                self._wake = anyio.Event()
                with anyio.CancelScope(shield=True):
                    if self._pending:
                        await self._commit_batch()
                    # Presence that arrived while the batch was on its way to disk goes
                    # out after it: a caret never points into content not yet sent.
                    self._flush_presence()
                    if self.state is not RoomState.FAILED and self._compaction_due():
                        await self._compact()
                if self.state is not RoomState.OPEN and not self._pending:
                    return
        except Exception as exc:
            # A bug here must cost this room, not the manager's task group (and with
            # it every other room): fail it, and the manager reloads it from disk.
            self._fail(exc, [])
        finally:
            self._writer_done.set()

    async def _commit_batch(self) -> None:
        batch, self._pending = self._pending, []
        self._pending_bytes = 0
        self._space.set()
        self._space = anyio.Event()
        updates = [p.update for p in batch]
        try:
            if self._committer is not None:
                await self._committer.commit(self._handle, updates)
            else:
                await anyio.to_thread.run_sync(self._handle.append_many, updates)
        except Exception as exc:
            self._fail(exc, batch)
            return
        try:
            for update in updates:
                self.doc.apply_update(update)
            # One update, one frame, the same bytes for every connection.
            merged = updates[0] if len(updates) == 1 else bytes(merge_updates(*updates))
        except BaseException as exc:
            # Cannot happen for updates the shadow integrated; if it does, the room's
            # doc no longer matches the log: reload from disk.
            _reraise_fatal(exc)
            self._fail(exc, batch)
            return
        origins = {p.origin for p in batch}
        only = origins.pop() if len(origins) == 1 else None
        self._broadcast(encode(SyncUpdate(merged)), exclude=only)
        for item in batch:
            item.done.set()

    def _fail(self, exc: BaseException, batch: list[_Pending]) -> None:
        log.error("room %s failed; closing its connections", self.document_id, exc_info=exc)
        self.state = RoomState.FAILED
        for item in batch + self._pending:
            item.error = exc
            item.done.set()
        self._pending, self._pending_bytes = [], 0
        self._space.set()
        for c in list(self._conns):
            c.abort(CloseCode.INTERNAL_ERROR, "storage failure")
        if self._on_failed is not None:
            self._on_failed(self)

    def _compaction_due(self) -> bool:
        records = self._handle.log_records
        if records == 0:
            return False
        return (
            self._compact_requested
            or records >= self._limits.compact_after_records
            or self._handle.log_bytes >= self._limits.compact_after_bytes
        )

    async def _compact(self) -> None:
        self._compact_requested = False
        # Encoding a large state takes a while: off the event loop.  Only this task
        # writes ``doc``, and it waits here; readers on the loop meanwhile are fine.
        state = await anyio.to_thread.run_sync(self.doc.get_update)
        try:
            await anyio.to_thread.run_sync(self._handle.compact, state)
        except Exception:
            # Nothing is lost: until the manifest switched, the old snapshot and log
            # hold everything.  Try again next time.
            log.warning("room %s: compaction failed", self.document_id, exc_info=True)
            return
        self._doc_bytes = len(state) + self._pending_bytes

    # -- shutdown -----------------------------------------------------------------------

    async def close(self, code: int = CloseCode.GOING_AWAY, reason: str = "") -> None:
        """Close every connection, drain and compact, release the store handle."""
        if self.state is RoomState.OPEN:
            self.state = RoomState.STOPPING
        for c in list(self._conns):
            c.abort(code, reason)
        self._space.set()
        self._compact_requested = True
        self._wake.set()
        with anyio.CancelScope(shield=True):
            await self._writer_done.wait()
            for item in self._pending:  # only if the writer was cancelled: never stored
                item.error = RoomUnavailable("room closed")
                item.done.set()
            self._pending = []
            if self.state is not RoomState.CLOSED:
                self.state = RoomState.CLOSED
                await anyio.to_thread.run_sync(self._handle.close)
