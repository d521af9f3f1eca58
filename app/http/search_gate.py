"""Searches get their own worker threads and a per-person limit.

A request's work runs in a worker thread of the shared pool (``in_transaction``), and the
index answers one query at a time. Eighty concurrent prefix searches once took every thread
of that pool while they queued for the index, so sign-ins, live-sync writes and access
checks waited seconds behind them. Search requests now run on a limiter of their own
(``PLEIN_SEARCH_THREADS``): while they wait for it they hold no thread at all, and the
shared pool stays free. One person may have at most ``PLEIN_SEARCH_PER_PERSON`` searches
running or waiting; above that the answer is 429 ``rate_limited``, so one client cannot
fill the search pool for everyone.

Who is asking is found in a short transaction of its own on the shared pool (a session or
token lookup), before the search waits; the search's own transaction authenticates again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
from starlette.requests import HTTPConnection

from app.errors import RateLimited
from app.http.context import Ctx, authenticate, in_transaction
from app.i18n import N_

T = TypeVar("T")
TOO_MANY = N_("Too many searches at once; wait for the ones running to finish.")


class SearchGate:
    """The search pool (a capacity limiter) and the count of searches per person."""

    def __init__(self, threads: int, per_person: int) -> None:
        self._threads = threads
        self._per_person = per_person
        self._limiter: anyio.CapacityLimiter | None = None
        self._running: dict[str, int] = {}  # touched on the event loop only: no lock

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:  # made on the event loop that uses it
            self._limiter = anyio.CapacityLimiter(self._threads)
        return self._limiter

    def running(self, person: str) -> int:
        return self._running.get(person, 0)

    @asynccontextmanager
    async def admit(self, person: str) -> AsyncIterator[None]:
        count = self._running.get(person, 0)
        if count >= self._per_person:
            raise RateLimited(TOO_MANY, retry_after=1)
        self._running[person] = count + 1
        try:
            yield
        finally:
            left = self._running[person] - 1
            if left:
                self._running[person] = left
            else:
                del self._running[person]


def _who(ctx: Ctx) -> str | None:
    authenticate(ctx)
    return ctx.user.id if ctx.user is not None else None


async def in_search_transaction(conn: HTTPConnection, *, write: bool,
                                fn: Callable[[Ctx], T]) -> tuple[T, Ctx]:
    """``in_transaction`` for a search: admitted per person, run on the search pool."""
    gate: SearchGate = conn.app.state.runtime.search_gate
    person, _ctx = await in_transaction(conn, write=False, fn=_who)
    if person is None:  # signed out: the request itself answers 401 (or the sign-in page)
        return await in_transaction(conn, write=write, fn=fn, limiter=gate.limiter)
    async with gate.admit(person):
        return await in_transaction(conn, write=write, fn=fn, limiter=gate.limiter)
