"""Reading the audit log: a group's for its owners and admins, the site's for site
administrators. Writing happens only where the acts happen (app.services.audit)."""

from __future__ import annotations

from app.http.context import Ctx
from app.routes.api.registry import router
from app.schemas.audit import AuditEventOut, AuditEventsOut, AuditQuery
from app.services import audit

TAG = "audit"


@router.route("GET", "/groups/{gid}/audit",
              summary="The group's audit log, newest first (owners and admins of the group)",
              tag=TAG, response=AuditEventsOut, query=AuditQuery)
def group_audit(ctx: Ctx, gid: str, query: AuditQuery) -> AuditEventsOut:
    ctx.require_user()
    audit.readable_group(ctx.db, ctx.access, gid)
    rows = audit.events(ctx.db, group_id=gid, limit=query.limit, before=query.before)
    return AuditEventsOut(events=[AuditEventOut.of(e) for e in rows])


@router.route("GET", "/audit", summary="The site's audit log, newest first (site "
                                       "administrators)", tag=TAG, response=AuditEventsOut,
              query=AuditQuery)
def site_audit(ctx: Ctx, query: AuditQuery) -> AuditEventsOut:
    ctx.require_user()
    audit.require_site_reader(ctx.access)
    rows = audit.events(ctx.db, group_id=None, limit=query.limit, before=query.before)
    return AuditEventsOut(events=[AuditEventOut.of(e) for e in rows])
