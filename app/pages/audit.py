"""The audit log for people: a group's for its owners and admins (``/groups/{gid}/audit``),
the site's for site administrators (``/admin/audit``). Filters (action, person, from/to date),
paging by ``before`` (the time of the last entry shown) and the filtered entries as a CSV
download (``?format=csv``). Who may read which log is decided in :mod:`app.services.audit`,
the same for the pages as for the API."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.routing import BaseRoute

from app.i18n import N_
from app.models import AuditEvent, Document, Folder, Group, User
from app.pages.framework import Download, Page, PageCtx, PageResult, page
from app.pages.render import gettext
from app.services import audit

PER_PAGE = 50

# What each entry means, for people; an action without a label is shown as its code.
ACTION_LABELS = {
    "session.login": N_("Signed in"),
    "session.login_failed": N_("Sign-in failed"),
    "group.member_added": N_("Member added"),
    "group.member_removed": N_("Member removed"),
    "group.role_changed": N_("Role changed"),
    "group.admin_act": N_("Site administrator acted in the group"),
    "group.totp_required": N_("Two-step sign-in required"),
    "group.totp_optional": N_("Two-step sign-in no longer required"),
    "group.exported": N_("Group exported"),
    "group.imported": N_("Group imported"),
    "folder.access_changed": N_("Folder access changed"),
    "document.downloaded": N_("Document downloaded"),
    "document.version_restored": N_("Version restored"),
    "document.trashed": N_("Moved to the trash"),
    "document.purged": N_("Deleted for good"),
    "keys.rotated": N_("Encryption key rotated"),
}

# Spreadsheets run a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_COLUMNS = ("id", "at", "action", "actor_id", "actor", "object_type", "object_id", "object",
               "ip", "detail")


@dataclass
class Filters:
    action: str
    actor_id: str
    since: date | None
    until: date | None
    before: datetime | None

    def query(self, **extra: str) -> str:
        """The filters as a query string (for the pager and the CSV link)."""
        values = {"action": self.action, "person": self.actor_id,
                  "from": self.since.isoformat() if self.since else "",
                  "to": self.until.isoformat() if self.until else "", **extra}
        return urlencode({k: v for k, v in values.items() if v})


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text and len(text) == 10 else None
    except ValueError:
        return None


def _moment(text: str | None) -> datetime | None:
    try:
        value = datetime.fromisoformat(text) if text and len(text) <= 40 else None
    except ValueError:
        return None
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _filters(p: PageCtx) -> Filters:
    q = p.query
    return Filters(action=q.get("action", "")[:60], actor_id=q.get("person", "")[:32],
                   since=_date(q.get("from")), until=_date(q.get("to")),
                   before=_moment(q.get("before")))


def _day_start(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


def _rows(p: PageCtx, group_id: str | None, filters: Filters, limit: int) -> list[AuditEvent]:
    return audit.events(p.db, group_id=group_id, limit=limit, before=filters.before,
                        action=filters.action or None, actor_id=filters.actor_id or None,
                        since=_day_start(filters.since),
                        # "to" includes that whole day.
                        until=_day_start(filters.until + timedelta(days=1))
                        if filters.until else None)


def _names(p: PageCtx, events: list[AuditEvent], extra: list[str],
           group: Group | None = None) -> dict[str, str]:
    """Names of the people and groups the entries name; in a group's log also of its
    documents and folders (its owners and admins reach every folder). The site's log shows
    those as ids: site administrators read content only as members."""
    people = {e.actor_id for e in events if e.actor_id} | set(extra) | \
        {e.object_id for e in events if e.object_type == "user"}
    groups = {e.object_id for e in events if e.object_type == "group"} | \
        {e.group_id for e in events if e.group_id}
    names: dict[str, str] = {}
    if people:
        names.update({u.id: u.name for u in p.db.scalars(select(User).where(
            User.id.in_(people)))})
    if groups:
        names.update({g.id: g.name for g in p.db.scalars(select(Group).where(
            Group.id.in_(groups)))})
    if group is not None:
        docs = {e.object_id for e in events if e.object_type == "document"}
        folders = {e.object_id for e in events if e.object_type == "folder"}
        if docs:
            names.update({d.id: d.title for d in p.db.scalars(select(Document).where(
                Document.id.in_(docs), Document.group_id == group.id))})
        if folders:
            names.update({f.id: f.name for f in p.db.scalars(select(Folder).where(
                Folder.id.in_(folders), Folder.group_id == group.id))})
    return names


def _detail_text(detail: dict[str, Any]) -> str:
    return "; ".join(f"{key}: {value if isinstance(value, str) else json.dumps(value)}"
                     for key, value in sorted(detail.items()))


def _label(language: str, action: str) -> str:
    label = ACTION_LABELS.get(action)
    return gettext(language, label) if label else action


def _safe_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _csv(events: list[AuditEvent], names: dict[str, str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in events:
        row = (e.id, e.at.isoformat(), e.action, e.actor_id or "", names.get(e.actor_id or "", ""),
               e.object_type, e.object_id, names.get(e.object_id, ""), e.ip or "",
               json.dumps(e.detail or {}, ensure_ascii=False, sort_keys=True))
        writer.writerow([_safe_cell(str(cell)) for cell in row])
    # A byte order mark so spreadsheet programs read the names as UTF-8.
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _log_page(p: PageCtx, group: Group | None, base: str) -> PageResult:
    filters = _filters(p)
    group_id = group.id if group else None
    if p.query.get("format") == "csv":
        rows = _rows(p, group_id, filters, p.settings.audit_csv_rows)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        return Download(_csv(rows, _names(p, rows, [], group)), "text/csv; charset=utf-8",
                        f"audit-{group_id or 'site'}-{stamp}.csv")
    rows = _rows(p, group_id, filters, PER_PAGE + 1)
    older = rows[PER_PAGE - 1].at.isoformat() if len(rows) > PER_PAGE else None
    rows = rows[:PER_PAGE]
    actions, actors = audit.choices(p.db, group_id=group_id)
    names = _names(p, rows, actors, group)
    entries = [{"event": e, "label": _label(p.language, e.action),
                "actor": names.get(e.actor_id or ""),
                "object": names.get(e.object_id),
                "group": names.get(e.group_id or "") if group is None else None,
                "detail": _detail_text(e.detail or {})} for e in rows]
    return Page("audit.html", {
        "group": group, "base": base, "entries": entries, "filters": filters,
        "actions": [(a, _label(p.language, a)) for a in actions],
        "people": sorted(((a, names.get(a, a)) for a in actors), key=lambda x: x[1].lower()),
        "older": filters.query(before=older) if older else None,
        "newest": filters.query() if filters.before else None,
        "csv": filters.query(format="csv")})


def group_log(p: PageCtx, gid: str) -> PageResult:
    group = audit.readable_group(p.db, p.access, gid)
    return _log_page(p, group, f"/groups/{group.id}/audit")


def site_log(p: PageCtx) -> PageResult:
    audit.require_site_reader(p.access)
    return _log_page(p, None, "/admin/audit")


def routes() -> list[BaseRoute]:
    return [page("/groups/{gid}/audit", group_log), page("/admin/audit", site_log)]
