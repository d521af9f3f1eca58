"""Importing an uploaded group archive, for the API and the site administrators' page: the
archive is read from its encrypted blob (decrypting only the ranges the zip reader asks for),
and notes get their state through the server's room manager."""

from __future__ import annotations

import io

import anyio.from_thread
from sqlalchemy import select

from app.errors import Forbidden, Unprocessable
from app.http.context import Ctx
from app.i18n import N_
from app.models import User
from app.runtime import Runtime
from app.services import audit, group_import
from app.services.accounts import normalize_email
from app.services.blobs import BlobFile
from app.services.documents import ReceivedFile


def require_site_admin(ctx: Ctx) -> None:
    if not ctx.require_user().is_site_admin:
        raise Forbidden(N_("Only site administrators import groups."))


def import_upload(ctx: Ctx, received: ReceivedFile, owner_email: str | None,
                  plain_name: str | None = None) -> group_import.ImportResult:
    """The uploaded archive as a new group, in the request's write transaction (audited).
    ``plain_name``: the zip is a plain folder tree, imported as a group of that name."""
    require_site_admin(ctx)
    runtime = ctx.runtime
    owner = ctx.require_user()
    if owner_email:
        found = ctx.db.scalar(select(User).where(User.email == normalize_email(owner_email)))
        if found is None:
            raise Unprocessable(N_("No account has that e-mail address."),
                                code="unknown_owner", field="owner")
        owner = found
    blob = received.blob
    reader = runtime.blob_store.open_reader(blob.blob_id, blob.wrapped_key)
    with io.BufferedReader(BlobFile(reader), buffer_size=1 << 20) as source:
        result = group_import.import_archive(
            ctx.db, runtime.blob_store, runtime.settings, source, owner=owner,
            write_note=lambda note_id, state: _write_note(runtime, note_id, state),
            remove_note=lambda note_id: _remove_note(runtime, note_id), plain_name=plain_name)
    audit.record(ctx.db, "group.imported", actor_id=ctx.require_user().id, object_type="group",
                 object_id=result.group_id, group_id=result.group_id, ip=ctx.client_ip,
                 detail={"documents": result.documents, "invitations": result.invitations})
    return result


def _write_note(runtime: Runtime, note_id: str, state: bytes) -> None:
    anyio.from_thread.run(runtime.live.manager.initialize, note_id, [state])


def _remove_note(runtime: Runtime, note_id: str) -> None:
    manager = runtime.live.manager
    anyio.from_thread.run(manager.close_document, note_id)
    manager.store.delete(note_id)
