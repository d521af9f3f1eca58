"""Leaving with your data (API.md): a group exported as a zip, and an archive imported as a
new group (site administrators)."""

from __future__ import annotations

import anyio.from_thread
from pydantic import BaseModel
from starlette.responses import Response, StreamingResponse

from app.http.context import Ctx
from app.http.download import content_disposition
from app.http.exchange import import_upload, require_site_admin
from app.http.upload_flow import Stored
from app.routes.api.registry import router
from app.services import audit, group_export, group_import, groups, personal_export
from app.services.archive_format import safe_segment
from app.services.documents import ReceivedFile

TAG = "exchange"


class ImportOut(BaseModel):
    group_id: str
    folders: int
    documents: int
    versions: int
    comments: int
    members: int
    invitations: list[str]
    unmatched_folder_grants: list[str]

    @classmethod
    def of(cls, result: group_import.ImportResult) -> ImportOut:
        return cls(group_id=result.group_id, folders=result.folders,
                   documents=result.documents, versions=result.versions,
                   comments=result.comments, members=result.members,
                   invitations=result.invitations,
                   unmatched_folder_grants=result.unmatched_folder_grants)


def export_response(ctx: Ctx, gid: str) -> Response:
    """The archive of what the caller may read in the group, streamed; audited first."""
    group = groups.get_group(ctx.db, ctx.access, gid)
    user = ctx.require_user()
    plan = group_export.plan_export(ctx.db, ctx.access, group)
    filename = f"{safe_segment(group.name)}-export.zip"
    headers = {"Content-Disposition": content_disposition(filename, inline=False),
               "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store",
               # Tells the page how many documents to expect (the download shows bytes so far).
               "X-Plein-Export-Documents": str(plan.document_count)}
    if ctx.conn.scope.get("method") == "HEAD":
        # Asked whether it would work, not for the data: nothing leaves, nothing is audited.
        return Response(media_type="application/zip", headers=headers)
    # The request's transaction only reads; the audit entry is committed on its own before
    # the first byte goes out (no audit entry, no export).
    with ctx.runtime.db.write() as session:
        audit.record(session, "group.exported", actor_id=user.id, object_type="group",
                     object_id=group.id, group_id=group.id, ip=ctx.client_ip,
                     detail={"scope": plan.scope, "documents": plan.document_count})
    runtime = ctx.runtime

    def note_state(document_id: str) -> bytes:
        return anyio.from_thread.run(runtime.live.manager.snapshot_state, document_id)

    chunks = group_export.stream_archive(plan, runtime.blob_store, note_state,
                                         max_depth=runtime.settings.note_max_depth)
    return StreamingResponse(chunks, media_type="application/zip", headers=headers)


@router.route("GET", "/groups/{gid}/export",
              summary="The group as a zip of open formats (a member gets what they may read)",
              tag=TAG, response=None)
def export_group(ctx: Ctx, gid: str) -> Response:
    return export_response(ctx, gid)


def _precheck_import(ctx: Ctx) -> None:
    require_site_admin(ctx)


@router.upload("POST", "/groups/import",
               summary="Import a group archive as a new group (site administrators; multipart "
               "part 'file', optional fields 'owner' = e-mail of the new owner and "
               "'plain_name' = the group's name when the zip is a plain folder tree)", tag=TAG,
               response=ImportOut, precheck=_precheck_import)
def import_group(ctx: Ctx, received: ReceivedFile) -> Stored[ImportOut]:
    fields = received.fields
    result = import_upload(ctx, received, fields.get("owner", "").strip() or None,
                           fields.get("plain_name", "").strip()[:120] or None)
    # The archive itself is not kept: its contents now live in the group's own blobs.
    return Stored(ImportOut.of(result), unused=(received,))


@router.route("GET", "/users/me/export",
              summary="Everything about me (profile, memberships, comments, documents I "
              "created, notifications, sessions) as a zip", tag=TAG, response=None)
def export_me(ctx: Ctx) -> Response:
    user = ctx.require_user()
    data = personal_export.personal_data(ctx.db, ctx.access)
    return Response(personal_export.personal_archive(data), media_type="application/zip",
                    headers={"Content-Disposition": content_disposition(
                        f"plein-{safe_segment(user.name)}.zip", inline=False),
                        "X-Content-Type-Options": "nosniff",
                        "Cache-Control": "private, no-store"})
