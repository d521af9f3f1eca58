"""The search page: the header's search box lands here (``/search?q=``), with filters (kind,
one of my groups), a scope (``folder=``, ``group=``: "search in this folder"), paging and the
"did you mean" link. Results come from :func:`app.services.search.search`, which only ever
returns what the person may read now."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.routing import BaseRoute

from app.access import Action
from app.models import Document, Group
from app.pages.context import kind_of
from app.pages.framework import Page, PageCtx, PageResult, page
from app.services import folders, search
from indexer import QueryError, SearchResults

PAGE_SIZE = 20
MAX_PAGE = 10_000 // PAGE_SIZE + 1  # the API's deepest offset
MAX_QUERY = 500
KINDS = ("note", "file")


def _page_number(raw: str | None) -> int:
    return min(max(int(raw), 1), MAX_PAGE) if raw and raw.isdigit() else 1


def search_page(p: PageCtx) -> PageResult:
    params = p.query
    q = params.get("q", "").strip()[:MAX_QUERY]
    kind = params.get("kind") if params.get("kind") in KINDS else None
    # A folder scope must be readable (404 otherwise, like its own page): its name is shown.
    folder = folders.get_folder(p.db, p.access, params["folder"]) if params.get("folder") else None
    mine = {g.id: g for g in p.db.scalars(select(Group).where(
        Group.id.in_([gid for gid in p.access.memberships() if p.access.group_role(gid)])))}
    group = mine.get(params.get("group", "")) if folder is None else mine.get(folder.group_id)
    number = _page_number(params.get("page"))
    scope = {"q": q, "kind": kind or "", "group": group.id if group and not folder else "",
             "folder": folder.id if folder else ""}
    context: dict[str, Any] = {
        "q": q, "kind": kind, "folder": folder, "group": group, "number": number,
        "my_groups": sorted(mine.values(), key=lambda g: g.name.lower()),
        "results": [], "total": 0, "pages": 0, "error": None, "corrected": None,
        "url": lambda **change: _url({**scope, "page": "", **change}),
    }
    if not q:
        return Page("search.html", context)
    request = search.SearchRequest(q=q, group=group.id if group else None,
                                   folder=folder.id if folder else None, kind=kind,
                                   limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE)
    try:
        found = search.search(p.ctx.runtime.search_index, p.access, request)
    except QueryError:
        context["error"] = "query"
        return Page("search.html", context, status=400)
    context.update(results=_results(p, found, mine), total=found.total, pages=found.pages,
                   corrected=found.corrected_query)
    return Page("search.html", context)


def _results(p: PageCtx, found: SearchResults, mine: dict[str, Group]
             ) -> list[dict[str, Any]]:
    docs = {d.id: d for d in p.db.scalars(select(Document).where(
        Document.id.in_([h.document_id for h in found.hits])))}
    results = []
    for hit in found.hits:
        doc = docs.get(hit.document_id)
        # The service filtered already; this is the page's own last look before it shows a title.
        if doc is None or not p.access.can_document(Action.DOCUMENT_READ, doc):
            continue
        icon, label = kind_of(doc)
        snippet = hit.snippets[0] if hit.snippets else None
        results.append({"doc": doc, "icon": icon, "type_label": label,
                        "group": mine.get(doc.group_id),
                        "snippet": snippet.html if snippet else "",
                        "page": snippet.page if snippet else None})
    return results


def _url(params: dict[str, Any]) -> str:
    return "/search?" + urlencode({k: v for k, v in params.items() if v not in ("", None, 1)})


def routes() -> list[BaseRoute]:
    return [page("/search", search_page, name="search", search_pool=True)]
