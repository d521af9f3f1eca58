"""Server-side awareness (presence): who is in the room, and which socket brought them.

The server keeps the latest (clock, state) per awareness clientID so that a
newcomer sees everyone at once, and remembers which connection *introduced*
each clientID so that, when that socket closes, their removal is broadcast
(no ghost cursors waiting for the 30 s timeout).

Rules follow y-protocols' ``applyAwarenessUpdate``: an entry is accepted when its
clock is newer, or equal with a "null" state for a present client (how a peer
relays a timeout removal).

Presence cannot be spoofed: a clientID belongs to the connection that introduced
it, and entries for it from any other connection -- a new state, a keep-alive or a
removal -- are ignored.  The one exception is the same *principal* (the app's
person): a client that reconnects before its old socket is noticed dead takes its
clientID over and keeps its cursor when the old socket finally closes.  A departed
client's clientID stays with its principal while its clock is remembered, so
nobody else can claim it with a huge clock and keep the real client invisible.

Bounded: at most ``MAX_CLIENTS_PER_OWNER`` live clientIDs per connection (a
browser tab has one), and clocks of departed clients are forgotten oldest-first
past ``MAX_REMEMBERED``.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from sync.protocol import AwarenessEntry

__all__ = ["MAX_CLIENTS_PER_OWNER", "MAX_REMEMBERED", "AwarenessRegistry", "Identity", "stamp"]

MAX_CLIENTS_PER_OWNER = 16
MAX_REMEMBERED = 4096
_NULL = "null"


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a connection speaks for, as the app tells the room (plain values: sync knows no
    accounts).  It is stamped on every awareness state the connection sends, so a client
    cannot show up under another person's name."""

    id: str
    name: str


def stamp(state: str, identity: Identity) -> str:
    """``state`` (valid JSON, not "null") with ``user.id`` and ``user.name`` set to
    ``identity``; other fields (a caret colour, a cursor) stay the client's."""
    parsed: Any = json.loads(state)
    if not isinstance(parsed, dict):
        parsed = {}
    user = parsed.get("user")
    parsed["user"] = {**(user if isinstance(user, dict) else {}),
                      "id": identity.id, "name": identity.name}
    return json.dumps(parsed, ensure_ascii=False, separators=(",", ":"))


class AwarenessRegistry:
    def __init__(self) -> None:
        self._clock: dict[int, int] = {}
        self._state: dict[int, str] = {}
        self._owner: dict[int, Hashable] = {}
        self._owned: dict[Hashable, set[int]] = {}
        #: The principal of each remembered clientID (present or departed).
        self._principal: dict[int, Hashable] = {}

    def __len__(self) -> int:
        return len(self._state)

    def owned_by(self, owner: Hashable) -> frozenset[int]:
        return frozenset(self._owned.get(owner, ()))

    def _disown(self, client_id: int) -> None:
        owner = self._owner.pop(client_id, None)
        if owner is not None:
            ids = self._owned[owner]
            ids.discard(client_id)
            if not ids:
                del self._owned[owner]

    def is_stale(self, e: AwarenessEntry) -> bool:
        """True if ``apply`` would ignore ``e`` (peers already have something as new)."""
        current = self._clock.get(e.client_id)
        newer = current is None or current < e.clock
        return not (newer or (current == e.clock and e.removed and e.client_id in self._state))

    def may_send(self, owner: Hashable, client_id: int, principal: Hashable | None = None
                 ) -> bool:
        """Whether ``owner`` (acting for ``principal``) may set or remove ``client_id``."""
        principal = owner if principal is None else principal
        current = self._owner.get(client_id)
        if current is not None and current != owner:
            return self._principal.get(client_id) == principal  # the same person's reconnect
        known = self._principal.get(client_id)
        return known is None or known == principal

    def apply(self, owner: Hashable, entries: tuple[AwarenessEntry, ...],
              principal: Hashable | None = None) -> list[AwarenessEntry]:
        """Apply entries sent by ``owner`` for ``principal`` (default: the owner itself);
        return those accepted (to relay).  Entries for another's clientID are ignored."""
        principal = owner if principal is None else principal
        accepted: list[AwarenessEntry] = []
        for e in entries:
            cid = e.client_id
            if self.is_stale(e):
                continue  # the peers already have something at least as new
            if not self.may_send(owner, cid, principal):
                continue  # someone else's presence: not this connection's to change
            if e.removed:
                self._state.pop(cid, None)
                self._disown(cid)
            else:
                if self._owner.get(cid) != owner:
                    if len(self._owned.get(owner, ())) >= MAX_CLIENTS_PER_OWNER:
                        continue
                    self._disown(cid)
                    self._owner[cid] = owner
                    self._owned.setdefault(owner, set()).add(cid)
                self._principal[cid] = principal
                self._state[cid] = e.state
            # Re-insert so dict order is "least recently touched first" for forgetting.
            self._clock.pop(cid, None)
            self._clock[cid] = e.clock
            accepted.append(e)
        self._forget()
        return accepted

    def _forget(self) -> None:
        excess = len(self._clock) - len(self._state) - MAX_REMEMBERED
        if excess <= 0:
            return
        for cid in [c for c in self._clock if c not in self._state][:excess]:
            del self._clock[cid]
            self._principal.pop(cid, None)

    def snapshot(self) -> list[AwarenessEntry]:
        """Every present client, for a newcomer or a query-awareness message."""
        return [AwarenessEntry(cid, self._clock[cid], s) for cid, s in self._state.items()]

    def drop(self, owner: Hashable) -> list[AwarenessEntry]:
        """Remove the clients ``owner`` introduced; return their removal entries.

        The clock is kept as is (not bumped): peers accept an equal clock with a
        null state as a removal, and a client reconnecting with the same clientID
        continues from its own clock, which must stay newer than ours.
        """
        removed = []
        for cid in sorted(self._owned.pop(owner, set())):
            self._owner.pop(cid, None)
            if self._state.pop(cid, None) is not None:
                removed.append(AwarenessEntry(cid, self._clock[cid], _NULL))
        self._forget()
        return removed
