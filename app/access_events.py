"""Which groups a transaction may have changed access in: any change to a group, membership,
folder, folder member or document marks its group. Announced after the commit by the
``access`` topic of :class:`app.db_hooks.SessionHooks`: the live-sync server re-checks its
open sockets in those groups, so revoked or narrowed access takes effect on open connections
at once (not at the next reconnect). A session hook, so a service cannot forget to say so."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session

from app.models import Document, Folder, FolderMember, Group, Membership


def changed_groups(session: Session) -> Iterator[str]:
    for obj in (*session.new, *session.dirty, *session.deleted):
        group_id: str | None = None
        if isinstance(obj, Group):
            group_id = obj.id
        elif isinstance(obj, Membership | Folder | Document):
            group_id = obj.group_id
        elif isinstance(obj, FolderMember):
            with session.no_autoflush:
                folder = session.get(Folder, obj.folder_id)
            if folder is not None:
                group_id = folder.group_id
        if group_id is not None:
            yield group_id
