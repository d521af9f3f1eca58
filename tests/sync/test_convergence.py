"""Hypothesis state machine: random edits, deliveries, disconnects and reconnects across
2-4 clients (one may be a viewer) converge once everything is delivered, and no
viewer edit ever reaches the room."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import anyio
from anyio.abc import TaskGroup, TaskStatus
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from storage import KeyRing
from sync import FileDocumentStore, Permission, RoomManager, SyncLimits
from tests.sync.yclient import YClient, server_text, wait_for

VIEWER_MARK = "V"


class _Harness:
    """Holds a task group inside the portal's event loop for the clients' tasks."""

    def __init__(self) -> None:
        self.tg: TaskGroup | None = None
        self._done = anyio.Event()

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        async with anyio.create_task_group() as tg:
            self.tg = tg
            task_status.started()
            await self._done.wait()
            tg.cancel_scope.cancel()

    async def stop(self) -> None:
        self._done.set()


class SyncMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="plein-sync-sm-"))
        self._portal_cm: AbstractContextManager[BlockingPortal] = start_blocking_portal("asyncio")
        self.portal = self._portal_cm.__enter__()
        ring = KeyRing.create(self.tmp / "keys.json")
        self.manager = RoomManager(
            FileDocumentStore(self.tmp / "sync", ring),
            SyncLimits(compact_after_records=7),  # compactions happen mid-run too
        )
        self._manager_cm = self.portal.wrap_async_context_manager(self.manager)
        self._manager_cm.__enter__()
        self.harness = _Harness()
        self.portal.start_task(self.harness.run)
        self.clients: list[YClient] = []
        self.permissions: list[Permission] = []
        self.online: list[bool] = []

    @property
    def tg(self) -> TaskGroup:
        assert self.harness.tg is not None
        return self.harness.tg

    @initialize(n=st.integers(2, 4), viewer=st.booleans())
    def connect_all(self, n: int, viewer: bool) -> None:
        for i in range(n):
            perm = Permission.READ if viewer and i == n - 1 else Permission.EDIT
            client = YClient(f"c{i}")
            self.clients.append(client)
            self.permissions.append(perm)
            self.online.append(True)
            self.portal.call(client.connect, self.tg, self.manager, "doc", perm)

    def _editors(self) -> Iterator[tuple[int, YClient]]:
        for i, c in enumerate(self.clients):
            if self.permissions[i] is Permission.EDIT:
                yield i, c

    @rule(
        who=st.integers(0, 3),
        where=st.integers(0, 1000),
        delete=st.booleans(),
        span=st.integers(0, 3),
        text=st.text(alphabet="abcxyz ", min_size=1, max_size=4),
    )
    def edit(self, who: int, where: int, delete: bool, span: int, text: str) -> None:
        # Positions are drawn as fractions: the text length depends on deliveries
        # racing in the event loop, and the draws themselves must not.
        i = who % len(self.clients)
        client = self.clients[i]
        if self.permissions[i] is Permission.READ:
            text = VIEWER_MARK * len(text)
        length = len(client.text)
        pos = where * length // 1000
        if delete and length:
            del client.text[pos : min(length, pos + span)]
        else:
            client.text.insert(pos, text)

    @rule(who=st.integers(0, 3))
    def deliver(self, who: int) -> None:
        i = who % len(self.clients)
        if self.online[i]:
            self.portal.call(self.clients[i].flush)

    @precondition(lambda self: any(self.online))
    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from([k for k, up in enumerate(self.online) if up]))
        self.portal.call(self.clients[i].close)
        self.online[i] = False

    def reconnect_client(self, i: int) -> None:
        client = self.clients[i]
        self.portal.call(wait_for, lambda: client.closed is not None)
        self.portal.call(client.connect, self.tg, self.manager, "doc", self.permissions[i])
        self.online[i] = True

    @precondition(lambda self: not all(self.online))
    @rule(data=st.data())
    def reconnect(self, data: st.DataObject) -> None:
        self.reconnect_client(
            data.draw(st.sampled_from([k for k, up in enumerate(self.online) if not up]))
        )

    @invariant()
    def viewer_edits_never_reach_the_room(self) -> None:
        if self.clients:
            assert VIEWER_MARK not in server_text(self.manager)

    def teardown(self) -> None:
        try:
            if self.clients:
                for i, client in enumerate(self.clients):
                    if not self.online[i]:
                        self.reconnect_client(i)
                    self.portal.call(client.flush)
                editors = [c for _, c in self._editors()]

                def converged() -> bool:
                    target = server_text(self.manager)
                    return all(str(c.text) == target for c in editors)

                self.portal.call(wait_for, converged)
                assert VIEWER_MARK not in server_text(self.manager)
                for c in self.clients:
                    self.portal.call(c.close)
        finally:
            self.portal.call(self.harness.stop)
            self._manager_cm.__exit__(None, None, None)
            self._portal_cm.__exit__(None, None, None)
            shutil.rmtree(self.tmp, ignore_errors=True)


SyncMachine.TestCase.settings = settings(max_examples=12, stateful_step_count=15, deadline=None)
TestSyncConvergence = SyncMachine.TestCase
