"""Group commit across rooms: one writer thread per process, one round for every room.

Each room used to make its batch durable on its own (a worker thread each, an fsync
each): twenty busy rooms paid twenty thread hand-offs and twenty fsyncs per round.
Here a room hands its batch to the ``GroupCommitter`` and waits; the one writer thread
takes *everything* queued, writes every room's records first, then fsyncs the logs
one after the other.  The first fsync commits the filesystem journal for all of them
(ext4 and XFS journal every file's new size in one transaction), so the others find
nothing left to do: one journal commit per round, however many rooms.  Then one
call into the event loop wakes every room of the round.

The promise is unchanged: a room's batch is acknowledged (applied, broadcast) only
after its own log's fsync returned.  A failed write or fsync fails that room's
batch only (``RecordLog`` refuses further appends until reopened); the other rooms
of the round are not affected.

Rounds form by themselves: while the thread writes and syncs one round, the rooms'
next batches queue up behind it.  asyncio only (the app runs on uvicorn's loop).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from sync.errors import RoomUnavailable
from sync.store import DocumentHandle

__all__ = ["GroupCommitter"]

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class _Request:
    handle: DocumentHandle
    updates: Sequence[bytes]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    error: BaseException | None = None


class GroupCommitter:
    def __init__(self, name: str = "plein-group-commit") -> None:
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._started = False
        #: Rounds and the fsyncs they made, and the requests (room batches) they held.
        self.rounds = 0
        self.requests = 0

    def start(self) -> None:
        with self._cond:
            if not self._started:
                self._started = True
                self._thread.start()

    def stop(self) -> None:
        """Finish what is queued, then end the thread (blocking)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._started:
            self._thread.join()

    async def commit(self, handle: DocumentHandle, updates: Sequence[bytes]) -> None:
        """Make ``updates`` durable in ``handle``'s log; raise if they are not."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._closed or not self._started:
                raise RoomUnavailable("the group committer is not running")
            self._queue.append(_Request(handle, updates, loop, future))
            self._cond.notify()
        await future

    # -- the writer thread --------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            self._round(batch)

    def _round(self, batch: list[_Request]) -> None:
        written: list[_Request] = []
        for req in batch:
            try:
                req.handle.write_many(req.updates)
                written.append(req)
            except BaseException as exc:  # reported to the room, never lost in this thread
                req.error = exc
        for req in written:
            try:
                req.handle.sync()
            except BaseException as exc:
                req.error = exc
        self.rounds += 1
        self.requests += len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[_Request]] = {}
        for req in batch:
            by_loop.setdefault(req.loop, []).append(req)
        for loop, reqs in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, reqs)
            except RuntimeError:
                log.warning("group commit: the event loop of %d request(s) is closed", len(reqs))


def _resolve(reqs: list[_Request]) -> None:
    for req in reqs:
        if req.future.done():  # cancelled meanwhile: nobody waits for the answer
            continue
        if req.error is None:
            req.future.set_result(None)
        else:
            req.future.set_exception(req.error)
