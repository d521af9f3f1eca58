"""Automatic note versions: after a pause in editing, at most one per N minutes.

Each round looks at the notes that have people connected (or had, since the last round); a
note whose state did not change over the last round (the pause) and differs from its newest
version, which is older than the minimum interval, gets a new version (no label, no author).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import anyio
from sqlalchemy import select

from app.models import Document, DocumentVersion, utcnow
from app.services import notes

if TYPE_CHECKING:
    from app.runtime import Runtime


class AutoSnapshots:
    def __init__(self) -> None:
        self.last_seen: dict[str, str] = {}  # document id -> state hash at the previous round

    async def round(self, runtime: Runtime) -> int:
        live = runtime.live
        candidates = set(live.open) | set(self.last_seen)
        taken = 0
        for doc_id in sorted(candidates):
            state = await live.manager.snapshot_state(doc_id)
            digest = notes.state_hash(state)
            previous = self.last_seen.get(doc_id)
            if doc_id in live.open:
                self.last_seen[doc_id] = digest
            else:
                self.last_seen.pop(doc_id, None)  # one last look after the room emptied
            if previous is None or previous != digest:
                continue  # still being edited (or first sight): wait for a pause
            if await anyio.to_thread.run_sync(_take_if_due, runtime, doc_id, state):
                taken += 1
        return taken


def _take_if_due(runtime: Runtime, doc_id: str, state: bytes) -> bool:
    minimum = timedelta(minutes=runtime.settings.note_snapshot_minutes)
    digest = notes.state_hash(state)
    with runtime.db.write() as session:
        doc = session.get(Document, doc_id)
        if doc is None or doc.kind != "note" or doc.trashed_at is not None:
            return False
        newest = session.scalar(select(DocumentVersion)
                                .where(DocumentVersion.document_id == doc_id)
                                .order_by(DocumentVersion.number.desc()).limit(1))
        if newest is not None and (newest.sha256 == digest
                                   or utcnow() - newest.created_at < minimum):
            return False
        notes.snapshot(session, runtime.blob_store, doc, state, user_id=None, label=None)
        return True
