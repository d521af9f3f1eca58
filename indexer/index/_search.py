"""Access-filtered search over one whoosh searcher: hits, totals, facets, snippets, suggestions.

The readable folders become a whoosh *filter* (a set of document numbers) that the
collector applies before a document is scored, counted, grouped or returned, so
totals, facets, snippets, titles and spelling suggestions are computed only from
readable documents. Suggestions are the subtle part: whoosh's corrector reads the
whole lexicon, so every candidate is re-checked against the readable documents
and ranked by its readable document count, never by global frequencies.
"""

from __future__ import annotations

import bisect
import html
import re
import zlib
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from whoosh import highlight as wh
from whoosh import query as wq
from whoosh import sorting
from whoosh.support.charset import accent_map

from indexer.index._analysis import STOP_WORDS, make_analyzer, stems
from indexer.index._query import ParsedQuery

__all__ = ["Hit", "SearchFilters", "SearchResults", "Snippet", "run_search"]

Sort = Literal["relevance", "newest", "oldest"]
FACETS = ("kind", "folder_id", "group_id")
_ANALYZER = make_analyzer()
# charlimit=None: offsets are absolute and windows can be deep in the text; the
# windows themselves bound the work.
_FRAGMENTER = wh.ContextFragmenter(maxchars=240, surround=60, charlimit=None)
_SCORER = wh.BasicFragmentScorer()
_WINDOW = 300
_MAX_WINDOWS = 6
_DEFAULT_SNIPPET = 240


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Optional narrowing; never widening: folder_ids is intersected with the readable set."""

    folder_ids: AbstractSet[str] | None = None
    group_ids: AbstractSet[str] | None = None
    kinds: AbstractSet[str] | None = None
    authors: AbstractSet[str] | None = None
    modified_from: datetime | None = None
    modified_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class Snippet:
    html: str  # text HTML-escaped; only our <mark>...</mark> tags are markup
    page: int | None  # 1-based page/slide of the fragment, None for page-less documents


@dataclass(frozen=True, slots=True)
class Hit:
    document_id: str
    title: str
    title_html: str
    folder_id: str
    group_id: str
    kind: str
    mime: str
    filename: str
    author: str
    created: datetime | None
    modified: datetime | None
    score: float
    snippets: tuple[Snippet, ...]


@dataclass(frozen=True, slots=True)
class SearchResults:
    query: str
    total: int
    page: int
    page_size: int
    hits: tuple[Hit, ...]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    suggestions: dict[str, str] = field(default_factory=dict)  # word -> readable correction
    corrected_query: str | None = None

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def empty_results(text: str, page: int, page_size: int) -> SearchResults:
    return SearchResults(query=text, total=0, page=page, page_size=page_size, hits=())


def _term_filter(fieldname: str, values: Iterable[str]) -> Any:
    return wq.Or([wq.Term(fieldname, v) for v in sorted(values)])


def build_filter(
    searcher: Any, allowed_folders: AbstractSet[str], filters: SearchFilters
) -> set[int]:
    """Document numbers the person may see and asked for (the whoosh filter)."""
    clauses: list[Any] = [_term_filter("folder_id", allowed_folders)]
    if filters.group_ids is not None:
        clauses.append(_term_filter("group_id", filters.group_ids))
    if filters.kinds is not None:
        clauses.append(_term_filter("kind", filters.kinds))
    if filters.authors is not None:
        clauses.append(_term_filter("author", filters.authors))
    if filters.modified_from is not None or filters.modified_to is not None:
        clauses.append(wq.DateRange("modified", filters.modified_from, filters.modified_to))
    q = clauses[0] if len(clauses) == 1 else wq.And(clauses)
    return set(searcher.docs_for_query(q))


# -- snippets ---------------------------------------------------------------------

# Length-preserving part of the accent map: offsets in the folded copy stay valid.
_ONE_CHAR_FOLD = {k: v for k, v in accent_map.items() if isinstance(v, str) and len(v) == 1}


def _windows(text: str, terms: AbstractSet[str]) -> list[tuple[int, int]]:
    """Character ranges worth re-analysing: around words that start like a matched stem.

    Re-tokenising a whole long document per hit would cost seconds; stems share
    their first letters with the words they come from, so a regex over a cheaply
    folded copy finds the candidate places.
    """
    folded = text.lower()
    if len(folded) != len(text):  # rare case-mapping that changes length: scan the start
        return [(0, min(len(text), 1 << 15))]
    folded = folded.translate(_ONE_CHAR_FOLD)
    # Stop words are everywhere: looking for them would re-analyse the whole text.
    content = {t for t in terms if t not in STOP_WORDS} or set(terms)
    heads = sorted({t[:3] for t in content if t})
    if not heads:
        return [(0, min(len(text), 1 << 15))]
    pattern = re.compile(r"(?<![^\W_])(?:" + "|".join(map(re.escape, heads)) + ")")
    spans: list[tuple[int, int]] = []
    for m in pattern.finditer(folded):
        start, end = max(0, m.start() - _WINDOW), min(len(text), m.start() + _WINDOW)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            if len(spans) >= _MAX_WINDOWS:
                break
            spans.append((start, end))
    return spans


def _format(text: str, fragment: Any) -> str:
    out: list[str] = []
    pos = fragment.startchar
    seen: set[tuple[int, int]] = set()
    for t in sorted(fragment.matches, key=lambda t: (t.startchar, t.endchar)):
        span = (t.startchar, t.endchar)
        if span in seen or t.startchar < pos:
            continue  # both stems of one word are two tokens over the same characters
        seen.add(span)
        out.append(html.escape(text[pos : t.startchar]))
        out.append("<mark>" + html.escape(text[t.startchar : t.endchar]) + "</mark>")
        pos = t.endchar
    out.append(html.escape(text[pos : fragment.endchar]))
    prefix = "…" if fragment.startchar > 0 else ""
    suffix = "…" if fragment.endchar < len(text) else ""
    return prefix + "".join(out).strip() + suffix


def snippets(
    text: str, terms: AbstractSet[str], page_starts: list[int], count: int, *, head: bool = True
) -> list[Snippet]:
    """Highlighted fragments around matches; without a match, the text's beginning
    (``head=True``) or nothing."""
    if not text or count <= 0:
        return []
    fragments: list[Any] = []
    if terms:
        for start, end in _windows(text, terms):
            tokens = _ANALYZER(
                text[start:end], chars=True, positions=True, start_char=start, mode="query"
            )
            fragments.extend(
                _FRAGMENTER.fragment_tokens(text, wh.set_matched_filter(tokens, terms))
            )
            if len(fragments) >= count:  # early fragments are the ones shown anyway
                break
    best = wh.top_fragments(fragments, count, _SCORER, wh.FIRST, minscore=1)

    def page_of(char: int) -> int | None:
        return bisect.bisect_right(page_starts, char) if page_starts else None

    if not best and not head:
        return []
    if not best:  # matched on title/filename only: show the beginning
        opening = text[:_DEFAULT_SNIPPET]
        cut = "…" if len(text) > len(opening) else ""
        return [Snippet(html.escape(opening.strip()) + cut, page_of(0))]
    return [Snippet(_format(text, f), page_of(f.startchar)) for f in best]


def highlight_whole(text: str, terms: AbstractSet[str]) -> str:
    if not text or not terms:
        return html.escape(text)
    tokens = [t.copy() for t in _ANALYZER(text, chars=True, mode="query") if t.text in terms]
    return _format(text, wh.Fragment(text, tokens, 0, len(text)))


# -- suggestions ------------------------------------------------------------------

def _distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _readable_count(searcher: Any, q: Any, allowed: set[int]) -> int:
    if not allowed:  # whoosh reads an empty filter as "no filter": never pass one
        return 0
    return len(searcher.search(q, filter=allowed, limit=1))


def _word_query(word: str) -> Any:
    return wq.Or([wq.Term(f, s) for f in ("title", "body", "comments") for s in stems(word)])


def suggest(searcher: Any, words: list[str], allowed: set[int]) -> dict[str, str]:
    """Corrections for words absent from the readable documents, drawn from them only."""
    reader = searcher.reader()
    out: dict[str, str] = {}
    for word in words:
        if len(word) < 3 or word in STOP_WORDS or word in out:
            continue
        if _readable_count(searcher, _word_query(word), allowed):
            continue
        candidates: set[str] = set()
        for spell_field in ("spell_title", "spell_body"):
            if spell_field in reader.schema:
                candidates.update(reader.terms_within(spell_field, word, 2, prefix=1))
        candidates.discard(word)
        ranked: list[tuple[int, int, str]] = []
        for cand in sorted(candidates, key=lambda c: (_distance(c, word), c))[:40]:
            # The spell_* fields are only a word list: whoosh 2.7 does not keep usable
            # per-document postings for them. Readability is checked on the stemmed
            # fields: a candidate is offered only if a readable document holds it (or
            # a word of the same stem, which reveals nothing that document does not).
            n = _readable_count(searcher, _word_query(cand), allowed)
            if n:  # a word only unreadable documents contain is never offered
                ranked.append((_distance(cand, word), -n, cand))
        if ranked:
            out[word] = min(ranked)[2]
    return out


# -- the search -------------------------------------------------------------------

def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _expand_prefixes(q: Any, reader: Any, limit: int = 256) -> Any:
    """Replace each Prefix by an OR of its ``limit`` most common expansions (bounded cost)."""

    def visit(node: Any) -> Any:
        if isinstance(node, wq.Prefix):
            expansions = [
                (reader.doc_frequency(node.fieldname, t), t)
                for t in reader.expand_prefix(node.fieldname, node.text)
            ]
            expansions.sort(key=lambda x: -x[0])
            terms = [wq.Term(node.fieldname, t) for _, t in expansions[:limit]]
            return wq.Or(terms) if terms else wq.NullQuery
        return node

    return q.accept(visit)


def run_search(
    searcher: Any,
    parsed: ParsedQuery,
    *,
    allowed: set[int],
    sort: Sort,
    page: int,
    page_size: int,
    facets: bool,
    snippet_count: int,
) -> SearchResults:
    if not allowed:  # also: whoosh would read an empty filter set as "everything"
        return empty_results(parsed.text, page, page_size)
    q = _expand_prefixes(parsed.query, searcher.reader())
    # No terms=True: whoosh 2.7.4's TermsCollector counts the total WITHOUT the filter
    # (a leak of how many unreadable documents match). Highlighting uses the query's
    # own terms instead (tests/indexer/test_search.py pins the filtered total).
    # optimize=False: with block-quality skipping whoosh cannot count while it collects
    # and runs the whole query a second time for the total; one exact pass is cheaper.
    kwargs: dict[str, Any] = {"filter": allowed, "limit": page * page_size, "optimize": False}
    if sort != "relevance":
        kwargs["sortedby"] = sorting.FieldFacet("modified", reverse=sort == "newest")
    if facets:
        kwargs["groupedby"] = {name: sorting.FieldFacet(name) for name in FACETS}
        kwargs["maptype"] = sorting.Count
    results = searcher.search(q, **kwargs)
    total = len(results)
    by_field: dict[str, set[str]] = {}
    for fname, text in q.iter_all_terms():
        value = text.decode("utf-8") if isinstance(text, bytes) else str(text)
        by_field.setdefault(fname, set()).add(value)
    hits: list[Hit] = []
    for hit in results[(page - 1) * page_size : page * page_size]:
        stored = hit.fields()
        body = zlib.decompress(stored.get("body_z") or zlib.compress(b"")).decode("utf-8")
        starts = list(stored.get("page_starts") or [])
        terms = by_field.get("body", set())
        found = snippets(body, terms, starts, snippet_count, head=False)
        if not found and by_field.get("comments"):  # the match is in a comment
            raw = stored.get("comments_z") or zlib.compress(b"")
            comments = zlib.decompress(raw).decode("utf-8")
            found = snippets(comments, by_field["comments"], [], snippet_count, head=False)
        if not found:
            found = snippets(body, set(), starts, snippet_count)
        title = _str(stored.get("title"))
        hits.append(
            Hit(
                document_id=_str(stored.get("document_id")),
                title=title,
                title_html=highlight_whole(title, by_field.get("title", set())),
                folder_id=_str(stored.get("folder_id")),
                group_id=_str(stored.get("group_id")),
                kind=_str(stored.get("kind")),
                mime=_str(stored.get("mime")),
                filename=_str(stored.get("filename")),
                author=_str(stored.get("author")),
                created=stored.get("created"),
                modified=stored.get("modified"),
                score=float(hit.score or 0.0),
                snippets=tuple(found),
            )
        )
    facet_counts: dict[str, dict[str, int]] = {}
    if facets:
        for name in FACETS:
            groups = results.groups(name)
            facet_counts[name] = {
                (k.decode() if isinstance(k, bytes) else str(k)): int(v)
                for k, v in groups.items() if k is not None
            }
    suggestions = suggest(searcher, parsed.words, allowed) if total == 0 else {}
    corrected = None
    if suggestions:
        corrected = re.sub(
            r"[^\W_]+",
            lambda m: suggestions.get(m.group(0).lower(), m.group(0)),
            parsed.text,
        )
    return SearchResults(
        query=parsed.text,
        total=total,
        page=page,
        page_size=page_size,
        hits=tuple(hits),
        facets=facet_counts,
        suggestions=suggestions,
        corrected_query=corrected,
    )
