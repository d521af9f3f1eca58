"""Planted probes: what carol sees must not depend on documents she cannot read.

Each test builds the same readable folder twice, once alone and once next to a
closed folder whose documents hold carol's probe words (added first, so document
numbers differ too), and asks for identical answers: scores and order, prefix
expansions (seen through what a prefix finds) and spelling suggestions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from indexer import IndexDocument, SearchIndex
from storage import KeyRing
from tests.indexer.conftest import doc

CAROL = {"open"}
Build = Callable[[Sequence[IndexDocument], Sequence[IndexDocument]], tuple[SearchIndex, ...]]


@pytest.fixture
def build(tmp_path: Path, ring: KeyRing) -> Any:
    opened: list[SearchIndex] = []

    def make(readable: Sequence[IndexDocument],
             unreadable: Sequence[IndexDocument]) -> tuple[SearchIndex, SearchIndex]:
        pair = []
        for name, docs in (("alone", list(readable)), ("beside", [*unreadable, *readable])):
            ix = SearchIndex(tmp_path / name, ring)
            opened.append(ix)
            with ix.writer() as w:
                for d in docs:
                    w.add_or_update(d)
            pair.append(ix)
        return pair[0], pair[1]

    yield make
    for ix in opened:
        ix.close()


def seen(ix: SearchIndex, query: str) -> dict[str, Any]:
    found = ix.search(query, readable_folder_ids=CAROL, page_size=100)
    return {"hits": [(h.document_id, h.score) for h in found.hits], "total": found.total,
            "suggestions": found.suggestions, "corrected": found.corrected_query}


def mine(n: int, title: str, text: str) -> IndexDocument:
    # Distinct dates: ties in score are broken by date, never by document number.
    return doc(f"o{n}", "open", title, text, modified=datetime(2026, 1, 1) + timedelta(days=n))


def theirs(n: int, title: str, text: str) -> IndexDocument:
    return doc(f"c{n}", "closed", title, text, group_id="other")


def test_scores_and_order_ignore_unreadable_documents(build: Build) -> None:
    readable = [
        mine(1, "Peilnota", "sondeerwoord en nog wat tekst over dijken"),
        mine(2, "Tweede nota", "sondeerwoord sondeerwoord kortom"),
        mine(3, "Derde", "controlewoord staat hier met sondeerwoord in een langere zin "
                         "over het waterschap en de dijken van Zeeland"),
        mine(4, "Vierde", "controlewoord alleen"),
    ]
    # The closed group's documents hold one probe word often and are long: under
    # index-wide statistics its idf, the document count and the average lengths move.
    unreadable = [theirs(i, "Geheim", "sondeerwoord " * (5 + i) + "vulling " * 300)
                  for i in range(12)]
    alone, beside = build(readable, unreadable)
    for query in ("sondeerwoord", "controlewoord", "sondeerwoord controlewoord", "dijken",
                  '"sondeerwoord sondeerwoord"', "sondeer*", "co*", "sondeerwoord -kortom"):
        assert seen(beside, query) == seen(alone, query), query
    assert seen(alone, "sondeerwoord")["total"] == 3
    # Relevance still works: the note with the word twice in a short text is first.
    assert seen(beside, "sondeerwoord")["hits"][0][0] == "o2"


def test_order_does_not_flip_when_unreadable_documents_share_a_word(build: Build) -> None:
    # o1 holds the rarer word once, o2 the other word twice: alone, o2 wins; with many
    # closed documents holding o2's word, index-wide idf would put o1 first.
    readable = [mine(1, "Een", "zwaluwpeil tekst"), mine(2, "Twee", "zwaluwdijk zwaluwdijk")]
    unreadable = [theirs(i, "Geheim", "zwaluwdijk") for i in range(30)]
    alone, beside = build(readable, unreadable)
    assert [h for h, _ in seen(alone, "zwaluw*")["hits"]] == ["o2", "o1"]
    assert seen(beside, "zwaluw*") == seen(alone, "zwaluw*")


def test_prefix_expansions_come_from_readable_documents(build: Build) -> None:
    # 300 words with carol's prefix, each in two closed documents: ranked by index-wide
    # frequency they would fill the 256 expansions and push out carol's own word.
    flood = [f"zqx{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(300)]
    unreadable = [theirs(i, "Geheim", " ".join(flood)) for i in range(2)]
    readable = [mine(1, "Mijn nota", "zqxzz staat hier"), mine(2, "Ander", "zqyyy elders")]
    alone, beside = build(readable, unreadable)
    for query in ("zqx*", "zq*", "zqxz*", "zqxa*"):
        assert seen(beside, query) == seen(alone, query), query
    assert [h for h, _ in seen(beside, "zqx*")["hits"]] == ["o1"]
    assert seen(beside, "zqxa*")["total"] == 0


def test_suggestions_come_from_readable_documents(build: Build) -> None:
    # Carol's note holds an inflection; a closed document holds the base form. Checked
    # by stem, the base form would be offered -- telling that some document holds it.
    readable = [mine(1, "Plan", "het reorganisatieplannen overleg"),
                mine(2, "Ander", "kadastraal perceel")]
    # 50 closed words one edit from the typo "percxxl": checked only after a cap of 40
    # nearest words, carol's "perceel" (two edits) would never be reached.
    letters = "abcdfghijkmnopqrstuvwyz"
    near = [f"percx{c}l" for c in letters] + [f"perc{c}xl" for c in letters]
    unreadable = [theirs(1, "Geheim", "reorganisatieplan " + " ".join(near)),
                  theirs(2, "Geheim", "kadastrale percelen")]
    alone, beside = build(readable, unreadable)
    for query in ("reorganisatieplam", "percxxl", "kadastrala", "percxal"):
        assert seen(beside, query) == seen(alone, query), query
    assert seen(beside, "percxxl")["suggestions"] == {"percxxl": "perceel"}
    assert seen(beside, "reorganisatieplam")["suggestions"] == {}


def test_readable_statistics_are_those_of_the_readable_documents(index: SearchIndex) -> None:
    """The average field lengths read from whoosh's length columns in one piece are the
    sums of the readable documents' own lengths (over several segments, with deletions)."""
    from indexer.index._scoring import ReadableStats
    from indexer.index._search import SearchFilters, build_filter

    for batch in range(3):
        with index.writer() as w:
            for n in range(batch * 20, batch * 20 + 20):
                folder = "open" if n % 2 else "closed"
                w.add_or_update(doc(f"d{n}", folder, "titel " * (n % 4), "woord " * (n + 1),
                                    comments=["opmerking"] * (n % 3)))
    with index.writer() as w:
        w.delete("d3")
        w.delete("d4")
    searcher = index._current_searcher()
    allowed = build_filter(searcher, frozenset(CAROL), SearchFilters())
    stats = ReadableStats(searcher, allowed)
    for field in ("title", "body", "comments", "filename"):
        expected = sum(searcher.doc_field_length(d, field, 0) or 0 for d in allowed.ids)
        assert stats._total_length(field) == expected, field
    assert stats.doc_count == 29
    readable_with_word = sum(1 for n in range(60) if n % 2 and n != 3)
    assert stats.doc_frequency("body", "woord") == readable_with_word
