"""Live sync: single-use tickets for the ``/sync/{id}`` WebSocket."""

from __future__ import annotations

from app.errors import BadRequest
from app.http.context import Ctx
from app.i18n import N_
from app.routes.api.registry import router
from app.schemas.accounts import SyncTicketOut
from app.services import documents, sync_tickets

TAG = "notes"


@router.route("POST", "/documents/{doc_id}/sync-ticket",
              summary="A short-lived, single-use ticket for /sync/{id}?ticket=... (keeps "
                      "long-lived tokens out of WebSocket URLs and logs)",
              tag=TAG, response=SyncTicketOut, status=201)
def create_sync_ticket(ctx: Ctx, doc_id: str) -> SyncTicketOut:
    user = ctx.require_user()
    doc = documents.get_document(ctx.db, ctx.access, doc_id)
    if doc.kind != "note":
        raise BadRequest(N_("Only notes have a live-sync channel."), code="not_a_note")
    # Bound to the credential of this request: the ticket, and the socket it opens, end
    # with it (a cookie request's session, or the bearer token).
    secret, expires_at = sync_tickets.create_ticket(
        ctx.db, user=user, document_id=doc.id, seconds=ctx.settings.sync_ticket_seconds,
        session_token=None if ctx.api_token is not None else ctx.session_token,
        api_token=ctx.api_token)
    return SyncTicketOut(ticket=secret, expires_at=expires_at)
