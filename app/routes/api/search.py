"""Search: only documents the caller may read, ever (the filter sits inside the query)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from app.errors import BadRequest
from app.http.context import Ctx
from app.routes.api.registry import router
from app.services import search
from indexer import QueryError

TAG = "search"


class SearchQuery(BaseModel):
    q: str = Field(min_length=1, max_length=500)
    group: str | None = Field(default=None, max_length=64)
    folder: str | None = Field(default=None, max_length=64)
    kind: Literal["file", "note"] | None = None
    author: str | None = Field(default=None, max_length=64)
    sort: Literal["relevance", "newest", "oldest", "date"] = "relevance"
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=10_000)

    @model_validator(mode="after")
    def _whole_pages(self) -> SearchQuery:
        if self.offset % self.limit:
            raise ValueError("offset must be a multiple of limit")
        return self


class SearchHitOut(BaseModel):
    document_id: str
    title: str
    title_html: str
    kind: str
    group_id: str
    folder_id: str
    snippet: str  # HTML: escaped text, only <mark> tags are markup
    page: int | None
    score: float


class SearchOut(BaseModel):
    total: int
    results: list[SearchHitOut]
    suggestions: dict[str, str]
    corrected_query: str | None


@router.route("GET", "/search", summary="Full-text search over what you may read", tag=TAG,
              response=SearchOut, query=SearchQuery, search_pool=True)
def run_search(ctx: Ctx, query: SearchQuery) -> SearchOut:
    request = search.SearchRequest(q=query.q, group=query.group, folder=query.folder,
                                   kind=query.kind, author=query.author, sort=query.sort,
                                   limit=query.limit, offset=query.offset)
    try:
        found = search.search(ctx.runtime.search_index, ctx.access, request)
    except QueryError as exc:
        raise BadRequest(f"The search could not be understood: {exc}", code="bad_query",
                         field="q") from exc
    hits = found.hits
    return SearchOut(total=found.total, suggestions=dict(found.suggestions),
                     corrected_query=found.corrected_query, results=[
                         SearchHitOut(document_id=h.document_id, title=h.title,
                                      title_html=h.title_html, kind=h.kind, group_id=h.group_id,
                                      folder_id=h.folder_id,
                                      snippet=h.snippets[0].html if h.snippets else "",
                                      page=h.snippets[0].page if h.snippets else None,
                                      score=h.score)
                         for h in hits])
