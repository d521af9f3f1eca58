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
import itertools
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
from whoosh.codec.base import Automata
from whoosh.support.charset import accent_map

from indexer.index._analysis import STOP_WORDS, TOKEN_PATTERN, fold, make_analyzer, stems
from indexer.index._query import ParsedQuery
from indexer.index._restrict import AllowedDocs, any_readable, restrict
from indexer.index._scoring import ReadableBM25F, ReadableStats, readable_stats, round_score

__all__ = ["Hit", "SearchFilters", "SearchResults", "SearcherCache", "Snippet", "run_search"]

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
_WORD = re.compile(TOKEN_PATTERN)
SUGGEST_FIELD = "words"


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
) -> AllowedDocs:
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
    return AllowedDocs(searcher.docs_for_query(q))


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
    pattern = re.compile(r"(?<![^\W_])(?:" + "|".join(map(re.escape, heads)) + r")[^\W_]*")
    spans: list[tuple[int, int]] = []
    for m in pattern.finditer(folded):
        # Only a word one of whose stems is a matched term opens a window: a head
        # like "ver" is everywhere, and analysing windows without a match is the
        # expensive part. Checked on the original characters, folded as the index
        # folds them; a word whose folding is unusual keeps its window.
        word = _WORD.match(text, m.start())
        if word is not None and word.end() == m.end():
            if not any(s in content for s in stems(fold(word.group(0)))):
                continue
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
    if not page_starts:
        return [Snippet(_format(text, f), None) for f in best]

    def on_its_page(fragment: Any) -> Snippet:
        # The page is where the first *match* is, not where the window starts (a window
        # reaches back across a page break), and the snippet stays inside that page.
        first = min((t.startchar for t in fragment.matches), default=fragment.startchar)
        page = bisect.bisect_right(page_starts, first)
        low = page_starts[page - 1] if page >= 1 else 0
        high = page_starts[page] if page < len(page_starts) else len(text)
        fragment.startchar = max(fragment.startchar, low)
        fragment.endchar = min(fragment.endchar, high)
        fragment.matches = [t for t in fragment.matches if low <= t.startchar < high]
        return Snippet(_format(text, fragment), page)

    return [on_its_page(f) for f in best]


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


def _readable_count(searcher: Any, q: Any, allowed: AllowedDocs) -> int:
    if not allowed:
        return 0
    return sum(1 for _ in searcher.docs_for_query(restrict(q, allowed)))


def _word_query(word: str) -> Any:
    return wq.Or([wq.Term(f, s) for f in ("title", "body", "comments") for s in stems(word)])


class _WordList:
    """A whoosh term cursor over an in-memory sorted word list (for the Levenshtein DFA)."""

    __slots__ = ("_i", "_words")

    def __init__(self, words: list[str]) -> None:
        self._words = words
        self._i = 0

    def text(self) -> str | None:
        return self._words[self._i] if self._i < len(self._words) else None

    def find(self, word: str) -> None:
        self._i = bisect.bisect_left(self._words, word)


class SearcherCache:
    """Suggestion word lists, one per index segment, read (and decrypted) once.

    Segments never change once written, so a commit costs only the new segment's list:
    the cache outlives searcher refreshes (``prune`` drops merged-away segments). Reading
    the whole lexicon again after every commit took about a second on the encrypted
    index. Only candidate words: every candidate is still checked against the readable
    documents before it is offered.
    """

    def __init__(self) -> None:
        self._words: dict[tuple[str, str], list[str]] = {}

    def word_lists(self, reader: Any, fieldname: str) -> list[list[str]]:
        lists: list[list[str]] = []
        for leaf, _offset in reader.leaf_readers():
            segment = leaf.segment() if hasattr(leaf, "segment") else None
            if segment is None:  # an empty index has no segment and no words
                continue
            key = (str(segment.segment_id()), fieldname)
            found = self._words.get(key)
            if found is None:
                found = sorted(
                    t.decode("utf-8") if isinstance(t, bytes) else str(t)
                    for t in leaf.lexicon(fieldname)
                )
                self._words[key] = found
            lists.append(found)
        return lists

    def prune(self, reader: Any) -> None:
        """Forget segments the searcher no longer has (merged into others)."""
        live = set()
        for leaf, _offset in reader.leaf_readers():
            if hasattr(leaf, "segment") and leaf.segment() is not None:
                live.add(str(leaf.segment().segment_id()))
        self._words = {k: v for k, v in self._words.items() if k[0] in live}


def _max_distance(word: str) -> int:
    # Every candidate is checked against the readable documents (no cap that counts
    # unreadable words), so the neighbourhood must stay small: two edits reach
    # hundreds of words of four letters or fewer.
    return 1 if len(word) <= 4 else 2


def _candidates(reader: Any, cache: SearcherCache, word: str) -> set[str]:
    if SUGGEST_FIELD not in reader.schema:
        return set()
    dfa = Automata.levenshtein_dfa(word, _max_distance(word), 1)
    out: set[str] = set()
    for words in cache.word_lists(reader, SUGGEST_FIELD):
        out.update(Automata.find_matches(dfa, _WordList(words)))
    out.discard(word)
    return out


def suggest(
    searcher: Any,
    words: list[str],
    allowed: AllowedDocs,
    cache: SearcherCache | None = None,
    *,
    absent: bool = False,
) -> dict[str, str]:
    """Corrections for words absent from the readable documents, drawn from them only.

    ``absent=True``: the caller knows the (single) word matches no readable document.
    A candidate is a word as written in some document (the ``words`` field); it is
    offered only if a readable document holds that very word, and ranked by the
    number of readable documents that do. All candidates of a distance are checked
    before a farther distance is looked at, so what unreadable documents hold never
    decides which readable word wins.
    """
    reader = searcher.reader()
    cache = cache or SearcherCache()
    out: dict[str, str] = {}
    for word in words:
        if len(word) < 3 or word in STOP_WORDS or word in out:
            continue
        if not absent and any_readable(searcher, _word_query(word), allowed):
            continue
        candidates = _candidates(reader, cache, word)
        nearest = sorted((_distance(c, word), c) for c in candidates)
        for _dist, group in itertools.groupby(nearest, key=lambda x: x[0]):
            ranked: list[tuple[int, str]] = []
            for _d, cand in group:
                n = _readable_count(searcher, wq.Term(SUGGEST_FIELD, cand), allowed)
                if n:  # a word only unreadable documents contain is never offered
                    ranked.append((-n, cand))
            if ranked:
                out[word] = min(ranked)[1]
                break
    return out


# -- the search -------------------------------------------------------------------

def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


class _Expansions(wq.Or):  # type: ignore[misc]  # whoosh is untyped
    """A prefix's expansions: scores pre-loaded into an array per segment. (The sort
    by rounded score asks for the current match, which would otherwise make whoosh
    build a binary tree of 256 union matchers, several times slower.)"""

    matcher_type = wq.Or.ARRAY_MATCHER


def _expand_prefixes(q: Any, reader: Any, stats: ReadableStats, limit: int = 256) -> Any:
    """Replace each Prefix by an OR of its ``limit`` expansions most frequent among the
    readable documents (bounded query cost); a term no readable document holds is left
    out, so neither the choice nor the count reveals words of unreadable documents."""

    def visit(node: Any) -> Any:
        if isinstance(node, wq.Prefix):
            expansions = []
            for t in reader.expand_prefix(node.fieldname, node.text):
                n = stats.doc_frequency(node.fieldname, t)
                if n:
                    expansions.append((-n, t))
            expansions.sort()
            terms = [wq.Term(node.fieldname, t) for _, t in expansions[:limit]]
            return _Expansions(terms) if terms else wq.NullQuery
        return node

    return q.accept(visit)


class _RoundedScore(sorting.ScoreFacet):  # type: ignore[misc]  # whoosh is untyped
    """Sort key: the score, rounded (see _scoring), highest first."""

    def categorizer(self, global_searcher: Any) -> Any:
        return _RoundedScoreCategorizer()


class _RoundedScoreCategorizer(sorting.Categorizer):  # type: ignore[misc]
    needs_current = True

    def key_for(self, matcher: Any, docid: int) -> float:
        return 0 - round_score(float(matcher.score()))


def _hit_score(results: Any, index: int, sort: Sort) -> float:
    """The hit's relevance, read back from its sort key (see ``run_search``)."""
    key = results.top_n[index][0]
    return float(-key[0 if sort == "relevance" else 1])


def run_search(
    searcher: Any,
    parsed: ParsedQuery,
    *,
    allowed: AllowedDocs,
    sort: Sort,
    page: int,
    page_size: int,
    facets: bool,
    snippet_count: int,
    cache: SearcherCache | None = None,
) -> SearchResults:
    if not allowed:  # also: whoosh would read an empty filter set as "everything"
        return empty_results(parsed.text, page, page_size)
    stats = readable_stats(searcher, allowed)
    q = _expand_prefixes(parsed.query, searcher.reader(), stats)
    # Highlighting needs the query's own terms (before the leaves are wrapped).
    by_field: dict[str, set[str]] = {}
    for fname, text in q.iter_all_terms():
        value = text.decode("utf-8") if isinstance(text, bytes) else str(text)
        by_field.setdefault(fname, set()).add(value)
    # The readable set inside every leaf matcher (see _restrict): phrases check
    # positions, and intersections step, only through readable documents. The
    # collector's filter below stays as the second, independent guard.
    q = restrict(q, allowed)
    # No terms=True: whoosh 2.7.4's TermsCollector counts the total WITHOUT the filter
    # (a leak of how many unreadable documents match). Highlighting uses the query's
    # own terms instead (tests/indexer/test_search.py pins the filtered total).
    # optimize=False: with block-quality skipping whoosh cannot count while it collects
    # and runs the whole query a second time for the total; one exact pass is cheaper.
    kwargs: dict[str, Any] = {"filter": allowed.set, "limit": page * page_size, "optimize": False}
    if sort == "relevance":
        # Ties are broken by date, not by document number: numbering follows index
        # segments, which every document (readable or not) shapes.
        kwargs["sortedby"] = [_RoundedScore(), sorting.FieldFacet("modified", reverse=True)]
    else:  # by date; the same date by relevance
        kwargs["sortedby"] = [
            sorting.FieldFacet("modified", reverse=sort == "newest"), _RoundedScore()
        ]
    if facets:
        kwargs["groupedby"] = {name: sorting.FieldFacet(name) for name in FACETS}
        kwargs["maptype"] = sorting.Count
    # The scores use the readable documents' statistics only (see _scoring).
    collector = searcher.collector(**kwargs)
    searcher.search_with_collector(
        q, collector, context=searcher.context(weighting=ReadableBM25F(stats))
    )
    results = collector.results()
    total = len(results)
    hits: list[Hit] = []
    for rank, hit in enumerate(results[(page - 1) * page_size : page * page_size]):
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
                score=_hit_score(results, (page - 1) * page_size + rank, sort),
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
    suggestions: dict[str, str] = {}
    if total == 0 and parsed.words:
        # One plain word and nothing else: no hits already says it is absent.
        suggestions = suggest(
            searcher, parsed.words, allowed, cache, absent=parsed.single_word
        )
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
