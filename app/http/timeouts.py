"""A request body that stops arriving ends with 408 (issue 9, item 17).

Without this a client sending one byte every ten seconds holds a connection, a worker's
upload state and a temporary blob file for as long as it likes. The timeout is per wait,
not per request: a large upload on a slow but moving line is never cut off.

The wrapped ``receive`` raises :class:`app.errors.RequestTimeout` from inside the handler
that is reading the body, so the code that owns the partial upload cleans it up (the upload
path removes its temporary blob on any error) and the one exception table renders the 408.
Once the body is complete, ``receive`` is passed through untouched: Starlette also calls it
to notice a client that went away during a long download.
"""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import RequestTimeout
from app.i18n import N_


class BodyIdleTimeout:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False

        async def receive_with_timeout() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            with anyio.move_on_after(self.seconds) as scope_:
                message = await receive()
            if scope_.cancelled_caught:
                body_done = True  # what follows (the 408) must not wait on the body again
                raise RequestTimeout(N_("The upload stopped arriving; try again."))
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, receive_with_timeout, send)
