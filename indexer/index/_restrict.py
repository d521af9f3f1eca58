"""The readable documents pushed down into whoosh's matchers.

whoosh applies a search *filter* in the collector, after the query's matchers have
found a document: a phrase has already read and compared the positions of both
words in every document that holds them, readable or not, before the filter drops
it. Here the readable set is intersected into every leaf of the query instead:

* ``AllowedDocs``: the readable document numbers, sorted, sliced per index segment.
* ``AllowedMatcher``: wraps a leaf matcher and only ever stops on allowed documents
  (``skip_to`` straight to the next allowed number), so compound matchers above it
  (intersections, unions, phrase position checks) never see anything else.
* ``Restricted``: a query wrapper whose matcher is an ``AllowedMatcher``; for a
  ``Phrase`` it restricts each word's matcher *before* the position check.
* ``restrict(q, allowed)``: wraps every leaf of a query tree.

This narrows what matchers produce; the collector's filter still applies on top, so
a mistake here could only hide readable documents, never show unreadable ones.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

from whoosh import matching
from whoosh import query as wq
from whoosh.matching import wrappers as mwrappers
from whoosh.query.spans import Span
from whoosh.query.wrappers import WrappingQuery

from indexer.errors import IndexerError

__all__ = [
    "AdjacentPhraseMatcher", "AllowedDocs", "AllowedMatcher", "DenseAllowedMatcher",
    "Restricted", "any_readable", "restrict",
]

_DENSE = 8  # at least 1 in _DENSE documents of a segment allowed: membership test mode


class AllowedDocs:
    """Sorted readable document numbers (index-wide), with per-segment slices."""

    __slots__ = ("_local", "_local_sets", "ids", "set", "stats")

    def __init__(self, docnums: Iterable[int]) -> None:
        self.set: set[int] = set(docnums)  # a set: whoosh rejects a frozenset filter
        self.ids: list[int] = sorted(self.set)
        self._local: dict[tuple[int, int], list[int]] = {}
        self._local_sets: dict[tuple[int, int], frozenset[int]] = {}
        self.stats: Any = None  # the readable set's collection statistics (_scoring)

    def __len__(self) -> int:
        return len(self.ids)

    def __bool__(self) -> bool:
        return bool(self.ids)

    def local(self, offset: int, size: int) -> list[int]:
        """The allowed numbers in segment ``[offset, offset + size)``, segment-relative."""
        key = (offset, size)
        found = self._local.get(key)
        if found is None:
            lo = bisect.bisect_left(self.ids, offset)
            hi = bisect.bisect_left(self.ids, offset + size)
            found = [d - offset for d in self.ids[lo:hi]] if offset else self.ids[lo:hi]
            self._local[key] = found
        return found

    def local_set(self, offset: int, size: int) -> frozenset[int]:
        key = (offset, size)
        found = self._local_sets.get(key)
        if found is None:
            found = frozenset(self.local(offset, size))
            self._local_sets[key] = found
        return found

    def _segment(self, searcher: Any) -> tuple[int, int]:
        parent = searcher.get_parent() if searcher.has_parent() else None
        if parent is None or parent is searcher:
            # top-level searcher: matchers report index-wide numbers
            return 0, max(int(searcher.doc_count_all()), (self.ids[-1] + 1) if self.ids else 0)
        offset = parent._offset_for_subsearcher(searcher)
        if offset is None:  # fail closed: never guess a segment's numbering
            raise IndexerError("sub-searcher without a known document offset")
        return int(offset), int(searcher.doc_count_all())

    def for_searcher(self, searcher: Any) -> list[int]:
        """The allowed numbers as ``searcher``'s matchers number documents."""
        return self.local(*self._segment(searcher))

    def dense_for_searcher(self, searcher: Any) -> frozenset[int] | None:
        """The allowed numbers as a set when they are a large share of the segment
        (then stepping and testing membership beats skipping), else None."""
        offset, size = self._segment(searcher)
        if len(self.local(offset, size)) * _DENSE < size:
            return None
        return self.local_set(offset, size)


class AllowedMatcher(mwrappers.WrappingMatcher):  # type: ignore[misc]  # whoosh is untyped
    """A matcher that stops only on documents in ``ids`` (sorted, segment-relative)."""

    def __init__(self, child: Any, ids: list[int], pos: int = 0) -> None:
        super().__init__(child)
        self._ids = ids
        self._i = pos
        self._done = False
        self._align()

    def _align(self) -> None:
        """Move the child forward to the next document that is also allowed."""
        child, ids = self.child, self._ids
        n = len(ids)
        i = self._i
        while child.is_active():
            doc = child.id()
            i = bisect.bisect_left(ids, doc, i)
            if i >= n:
                break
            want = ids[i]
            if want == doc:
                self._i = i
                return
            child.skip_to(want)
        self._i = n
        self._done = True

    def __repr__(self) -> str:
        return f"AllowedMatcher({self.child!r}, {len(self._ids)} allowed)"

    def copy(self) -> AllowedMatcher:
        return AllowedMatcher(self.child.copy(), self._ids, self._i)

    def _replacement(self, newchild: Any) -> AllowedMatcher:
        return AllowedMatcher(newchild, self._ids, self._i)

    def replace(self, minquality: float = 0) -> Any:
        if not self.is_active():
            return matching.NullMatcher()
        return super().replace(minquality)

    def is_active(self) -> bool:
        return not self._done and bool(self.child.is_active())

    def reset(self) -> None:
        self.child.reset()
        self._i = 0
        self._done = False
        self._align()

    def all_ids(self) -> Any:
        while self.is_active():
            yield self.id()
            self.next()

    def next(self) -> bool:
        if self._done:
            raise matching.ReadTooFar
        self.child.next()
        self._align()
        return False

    def skip_to(self, id: int) -> bool:
        if self._done:
            raise matching.ReadTooFar
        if id > self.child.id():
            self.child.skip_to(id)
            self._align()
        return False

    # Block-quality skipping would jump over allowed documents' blocks by their
    # unfiltered scores; searches run with optimize=False, and this says so too.
    def supports_block_quality(self) -> bool:
        return False

    def skip_to_quality(self, minquality: float) -> int:
        raise NotImplementedError("AllowedMatcher does not skip by quality")


class DenseAllowedMatcher(mwrappers.WrappingMatcher):  # type: ignore[misc]
    """``AllowedMatcher`` for a dense allowed set: steps the child, tests membership."""

    def __init__(self, child: Any, allowed: frozenset[int]) -> None:
        super().__init__(child)
        self._allowed = allowed
        self._align()

    def _align(self) -> None:
        child, allowed = self.child, self._allowed
        while child.is_active() and child.id() not in allowed:
            child.next()

    def __repr__(self) -> str:
        return f"DenseAllowedMatcher({self.child!r}, {len(self._allowed)} allowed)"

    def copy(self) -> DenseAllowedMatcher:
        return DenseAllowedMatcher(self.child.copy(), self._allowed)

    def _replacement(self, newchild: Any) -> DenseAllowedMatcher:
        return DenseAllowedMatcher(newchild, self._allowed)

    def replace(self, minquality: float = 0) -> Any:
        if not self.is_active():
            return matching.NullMatcher()
        return super().replace(minquality)

    def reset(self) -> None:
        self.child.reset()
        self._align()

    def all_ids(self) -> Any:
        while self.is_active():
            yield self.id()
            self.next()

    def next(self) -> bool:
        self.child.next()
        self._align()
        return False

    def skip_to(self, id: int) -> bool:
        if id > self.child.id():
            self.child.skip_to(id)
            self._align()
        return False

    def supports_block_quality(self) -> bool:
        return False

    def skip_to_quality(self, minquality: float) -> int:
        raise NotImplementedError("DenseAllowedMatcher does not skip by quality")


class AdjacentPhraseMatcher(wq.SpanNear2.SpanNear2Matcher):  # type: ignore[misc]
    """whoosh's ordered SpanNear2 matcher for slop=1 (each word right after the
    previous one), comparing plain position sets instead of lists of Span objects:
    a frequent word has hundreds of positions per document."""

    def _get_spans(self) -> list[Any]:
        ms = self.ms
        ends: dict[int, int] = {p: p for p in ms[0].value_as("positions")}  # end -> start
        for m in ms[1:]:
            if not ends:
                break
            ends = {p: ends[p - 1] for p in m.value_as("positions") if p - 1 in ends}
        return [Span(start, end) for end, start in sorted(ends.items())]


def _restricted_matcher(m: Any, allowed: AllowedDocs, searcher: Any) -> Any:
    if not m.is_active():
        return m
    dense = allowed.dense_for_searcher(searcher)
    if dense is not None:
        return DenseAllowedMatcher(m, dense)
    ids = allowed.for_searcher(searcher)
    if not ids:
        return matching.NullMatcher()
    return AllowedMatcher(m, ids)


class Restricted(WrappingQuery):  # type: ignore[misc]  # whoosh is untyped
    """A leaf query that matches only allowed documents (see module doc)."""

    def __init__(self, child: Any, allowed: AllowedDocs) -> None:
        super().__init__(child)
        self.allowed = allowed

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Restricted)
            and other.child == self.child
            and other.allowed is self.allowed
        )

    def __hash__(self) -> int:
        return hash(("Restricted", self.child, id(self.allowed)))

    def _rewrap(self, child: Any) -> Restricted:
        return Restricted(child, self.allowed)

    def matcher(self, searcher: Any, context: Any = None) -> Any:
        if isinstance(self.child, wq.Phrase):
            return self._phrase_matcher(searcher, context)
        return _restricted_matcher(self.child.matcher(searcher, context), self.allowed, searcher)

    def _phrase_matcher(self, searcher: Any, context: Any) -> Any:
        """whoosh's Phrase.matcher, with each word's matcher restricted first, so
        positions are only read and compared in allowed documents."""
        phrase = self.child
        fieldname = phrase.fieldname
        if fieldname not in searcher.schema:
            return matching.NullMatcher()
        fieldobj = searcher.schema[fieldname]
        if not fieldobj.format or not fieldobj.format.supports("positions"):
            raise wq.QueryError(f"Phrase search: {fieldname!r} field has no positions")
        reader = searcher.reader()
        terms: list[Any] = []
        for word in phrase.words:
            try:
                btext = fieldobj.to_bytes(word)
            except ValueError:
                return matching.NullMatcher()
            if (fieldname, btext) not in reader:
                return matching.NullMatcher()
            terms.append(Restricted(wq.Term(fieldname, btext), self.allowed))
        if phrase.slop == 1:
            ms = [t.matcher(searcher, context) for t in terms]
            m = AdjacentPhraseMatcher(ms, slop=1, ordered=True, mindist=1)
        else:
            m = wq.SpanNear2(terms, slop=phrase.slop, ordered=True, mindist=1).matcher(
                searcher, context
            )
        if phrase.boost != 1.0:
            m = mwrappers.WrappingMatcher(m, boost=phrase.boost)
        return m


def restrict(q: Any, allowed: AllowedDocs) -> Any:
    """``q`` with every leaf (and every phrase as a whole) wrapped in ``Restricted``."""
    if isinstance(q, Restricted):
        return q
    if q.is_leaf():
        return Restricted(q, allowed)
    return q.apply(lambda sub: restrict(sub, allowed))


def any_readable(searcher: Any, q: Any, allowed: AllowedDocs) -> bool:
    """Whether at least one allowed document matches ``q`` (stops at the first)."""
    if not allowed:
        return False
    for _docnum in searcher.docs_for_query(restrict(q, allowed)):
        return True
    return False
