"""The group quota for live note edits (issue 9, item 17).

Notes are stored by :mod:`sync` (an update log and a snapshot per note), outside the blob
rows that file uploads are counted by; ``documents.group_usage`` counts both. Live edits
arrive as small updates on the event loop, where a database query or a directory walk per
update would stall every other connection. So the measure is taken when an editor connects
(in a worker thread, with the handshake), and each update an editor sends is added to it
until the next measure: an estimate that only errs on the side of refusing, since compaction
and repeats shrink what is really stored.

:meth:`NoteQuota.check` is the ``storage_guard`` the room manager calls; a refused update
closes that connection with ``STORAGE_FULL`` (4413) and the reason below.
"""

from __future__ import annotations

from app.settings import Settings

FULL_REASON = "group storage quota exceeded"


class NoteQuota:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._group_of: dict[str, str] = {}
        self._usage: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self.settings.group_quota_bytes > 0

    def track(self, document_id: str, group_id: str, usage: int) -> None:
        """An editor connected to ``document_id``: ``usage`` is the group's measured total."""
        self._group_of[document_id] = group_id
        self._usage[group_id] = usage

    def check(self, document_id: str, size: int) -> str | None:
        """Count ``size`` more bytes for the note's group, or refuse them."""
        quota = self.settings.group_quota_bytes
        group_id = self._group_of.get(document_id)
        if not quota or group_id is None:
            return None
        used = self._usage.get(group_id, 0)
        if used + size > quota:
            return FULL_REASON
        self._usage[group_id] = used + size
        return None
