"""Reading the audit log: a group's for its owners and admins, the site's for site
administrators. Writing happens only where the acts happen (app.services.audit)."""

from __future__ import annotations

from app.errors import Forbidden, NotFound
from app.http.context import Ctx
from app.i18n import N_
from app.models import GROUP_MANAGERS, Group
from app.routes.api.registry import router
from app.schemas.audit import AuditEventOut, AuditEventsOut, AuditQuery
from app.services import audit

TAG = "audit"


@router.route("GET", "/groups/{gid}/audit",
              summary="The group's audit log, newest first (owners and admins of the group)",
              tag=TAG, response=AuditEventsOut, query=AuditQuery)
def group_audit(ctx: Ctx, gid: str, query: AuditQuery) -> AuditEventsOut:
    ctx.require_user()
    group = ctx.db.get(Group, gid)
    role = ctx.access.group_role(gid) if group is not None else None
    if group is None or role is None:
        # Outsiders learn nothing, not even that the group keeps a log.
        raise NotFound(N_("No such group."))
    if role not in GROUP_MANAGERS:
        raise Forbidden(N_("Only owners and admins of the group read its audit log."))
    rows = audit.events(ctx.db, group_id=gid, limit=query.limit, before=query.before)
    return AuditEventsOut(events=[AuditEventOut.of(e) for e in rows])


@router.route("GET", "/audit", summary="The site's audit log, newest first (site "
                                       "administrators)", tag=TAG, response=AuditEventsOut,
              query=AuditQuery)
def site_audit(ctx: Ctx, query: AuditQuery) -> AuditEventsOut:
    ctx.require_user()
    if not ctx.access.is_site_admin:
        raise Forbidden(N_("Only site administrators read the site's audit log."))
    rows = audit.events(ctx.db, group_id=None, limit=query.limit, before=query.before)
    return AuditEventsOut(events=[AuditEventOut.of(e) for e in rows])
