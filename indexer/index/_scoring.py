"""Relevance from the readable documents only.

whoosh's BM25F takes its collection statistics -- how many documents hold a term
(idf), the document count and each field's average length -- from the whole index.
Those numbers move when documents the person cannot read gain or lose a word, so
a planted probe word's score (and the order of results) would tell whether other
groups' documents contain it. Here the same BM25F formula gets its statistics from
the readable documents (``AllowedDocs``) instead, so a score is a function of what
the person may read and nothing else:

* ``ReadableStats``: document count, average field lengths and per-term document
  frequencies over the readable set, computed lazily and memoised per readable set
  (which itself lives as long as one searcher generation).
* ``ReadableBM25F``: the weighting model; per-document inputs (a term's weight in
  the document, the document's field length) belong to the readable document itself.

Scores are rounded (``SCORE_DIGITS`` significant digits) before results are ordered:
whoosh sums leaf scores in a tree whose shape follows index segments, and segment
layout depends on every document, so the last bits of a float sum could differ.
"""

from __future__ import annotations

import math
from typing import Any

from whoosh import scoring
from whoosh.codec.whoosh3 import LENGTHS_COLUMN, _lenfield
from whoosh.util.numeric import byte_to_length

from indexer.index._restrict import AllowedDocs, _restricted_matcher

__all__ = ["SCORE_DIGITS", "ReadableBM25F", "ReadableStats", "readable_stats", "round_score"]

SCORE_DIGITS = 9
_DF_MEMO = 50_000  # memoised document frequencies per readable set
_LENGTH_OF_BYTE = [0] + [byte_to_length(b) for b in range(1, 256)]


def _length_bytes(segment_reader: Any, fieldname: str) -> bytes | None:
    """A segment's per-document field lengths, one encoded byte each, read in one piece
    (whoosh 2.7's length column); None when the reader is not laid out like that."""
    try:
        column = segment_reader._perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
        if column is None:
            return b""
        return bytes(column._dbfile.get(column._basepos, column._count))
    except AttributeError:
        return None


def round_score(score: float) -> float:
    if not score or not math.isfinite(score):
        return 0.0
    return float(f"{score:.{SCORE_DIGITS}g}")


class ReadableStats:
    """Collection statistics over the readable documents of one searcher."""

    def __init__(self, searcher: Any, allowed: AllowedDocs) -> None:
        self._searcher = searcher
        self._allowed = allowed
        self.doc_count = len(allowed)
        # Every live document readable (and none deleted): the index-wide counts are
        # then exactly the readable ones, and cheaper to read.
        self._everything = (
            searcher.doc_count_all() == searcher.doc_count() == len(allowed)
        )
        self._avg: dict[str, float] = {}
        self._df: dict[tuple[str, bytes], int] = {}

    def avg_field_length(self, fieldname: str) -> float:
        found = self._avg.get(fieldname)
        if found is None:
            if not self.doc_count:
                found = 1.0
            else:
                found = (self._total_length(fieldname) / self.doc_count) or 1.0
            self._avg[fieldname] = found
        return found

    def _total_length(self, fieldname: str) -> int:
        total = 0
        table = _LENGTH_OF_BYTE
        for sub, _offset in self._searcher.leaf_searchers():
            local = self._allowed.for_searcher(sub)
            raw = _length_bytes(sub.reader(), fieldname)
            if raw is None:  # the general (slower) way
                length = sub.doc_field_length
                total += sum(length(doc, fieldname, 0) or 0 for doc in local)
            else:
                n = len(raw)
                total += sum(table[raw[doc]] for doc in local if doc < n)
        return total

    def doc_frequency(self, fieldname: str, text: bytes | str) -> int:
        """How many readable documents hold the term (``text`` as indexed)."""
        btext = text if isinstance(text, bytes) else text.encode("utf-8")
        key = (fieldname, btext)
        found = self._df.get(key)
        if found is None:
            found = self._count(fieldname, btext)
            if len(self._df) >= _DF_MEMO:
                self._df.clear()
            self._df[key] = found
        return found

    def _count(self, fieldname: str, btext: bytes) -> int:
        if not self._allowed:
            return 0
        reader = self._searcher.reader()
        if (fieldname, btext) not in reader:
            return 0
        if self._everything:
            return int(reader.doc_frequency(fieldname, btext))
        count = 0
        for sub, _offset in self._searcher.leaf_searchers():
            sub_reader = sub.reader()
            if (fieldname, btext) not in sub_reader:
                continue
            m = _restricted_matcher(sub_reader.postings(fieldname, btext), self._allowed, sub)
            while m.is_active():
                count += 1
                m.next()
        return count

    def idf(self, fieldname: str, text: bytes | str) -> float:
        # whoosh's own formula, over the readable set.
        return math.log(self.doc_count / (self.doc_frequency(fieldname, text) + 1)) + 1


def readable_stats(searcher: Any, allowed: AllowedDocs) -> ReadableStats:
    """The readable set's statistics, memoised on it (it lives per searcher generation)."""
    stats = allowed.stats
    if not isinstance(stats, ReadableStats) or stats._searcher is not searcher:
        stats = ReadableStats(searcher, allowed)
        allowed.stats = stats
    return stats


class ReadableBM25F(scoring.WeightingModel):  # type: ignore[misc]  # whoosh is untyped
    """BM25F (whoosh's B and K1) with ``ReadableStats`` for every collection statistic."""

    use_final = False

    def __init__(self, stats: ReadableStats, B: float = 0.75, K1: float = 1.2) -> None:  # noqa: N803
        self.stats = stats
        self.B = B
        self.K1 = K1

    def supports_block_quality(self) -> bool:
        return False  # block maxima come from the whole index; searches run unoptimised

    def scorer(self, searcher: Any, fieldname: str, text: Any, qf: int = 1) -> Any:
        return _Scorer(searcher, fieldname, text, self)


class _Scorer(scoring.BaseScorer):  # type: ignore[misc]
    def __init__(self, searcher: Any, fieldname: str, text: Any, model: ReadableBM25F) -> None:
        stats = model.stats
        self._scorable = bool(searcher.schema[fieldname].scorable)
        self._idf = stats.idf(fieldname, text)
        self._avg = stats.avg_field_length(fieldname)
        self._B, self._K1 = model.B, model.K1
        self._length = searcher.doc_field_length  # segment-relative numbers, like the matcher
        self._fieldname = fieldname

    def supports_block_quality(self) -> bool:
        return False

    def max_quality(self) -> float:
        return math.inf

    def block_quality(self, matcher: Any) -> float:
        return math.inf

    def score(self, matcher: Any) -> float:
        weight = float(matcher.weight())
        if not self._scorable:
            return weight
        length = self._length(matcher.id(), self._fieldname, 1) or 1
        return float(scoring.bm25(self._idf, weight, length, self._avg, self._B, self._K1))
