"""The readable set pushed into whoosh's matchers (indexer.index._restrict).

Pins: AllowedMatcher stops only on allowed documents (next, skip_to, copy, reset);
restricted queries match exactly what the unrestricted query matches within the
allowed set, across several index segments; a phrase reads positions only in
allowed documents; multi-word queries still get suggestions from readable words.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from whoosh import matching
from whoosh import query as wq

from indexer import SearchIndex
from indexer.index._restrict import (
    AdjacentPhraseMatcher,
    AllowedDocs,
    AllowedMatcher,
    DenseAllowedMatcher,
    Restricted,
    restrict,
)
from tests.indexer.conftest import doc

WORDS = "dijk strand woning haven raad plan zee water de het".split()


def test_allowed_matcher_steps_only_through_allowed() -> None:
    m = AllowedMatcher(matching.ListMatcher([1, 2, 5, 7, 9, 12]), [0, 2, 3, 7, 10, 12, 20])
    assert list(m.all_ids()) == [2, 7, 12]

    m = AllowedMatcher(matching.ListMatcher([1, 2, 5, 7, 9, 12]), [2, 7, 12])
    assert m.is_active() and m.id() == 2
    m.skip_to(3)
    assert m.id() == 7
    m.skip_to(7)  # not past the current document
    assert m.id() == 7
    c = m.copy()
    m.next()
    assert m.id() == 12 and c.id() == 7
    m.next()
    assert not m.is_active()
    with pytest.raises(matching.ReadTooFar):
        m.next()
    m.reset()
    assert list(m.all_ids()) == [2, 7, 12]
    assert not m.supports_block_quality()


def test_dense_allowed_matcher_steps_only_through_allowed() -> None:
    m = DenseAllowedMatcher(matching.ListMatcher([1, 2, 5, 7, 9, 12]), frozenset({2, 3, 7, 12}))
    assert m.id() == 2
    c = m.copy()
    m.skip_to(3)
    assert m.id() == 7 and c.id() == 2
    assert list(m.all_ids()) == [7, 12]
    assert not m.is_active()
    m.reset()
    assert list(m.all_ids()) == [2, 7, 12]
    assert list(DenseAllowedMatcher(matching.ListMatcher([1, 5]), frozenset()).all_ids()) == []


def test_allowed_matcher_inactive_when_nothing_allowed_remains() -> None:
    m = AllowedMatcher(matching.ListMatcher([5, 6, 7]), [1, 2])
    assert not m.is_active()
    assert isinstance(m.replace(), matching.NullMatcher().__class__)
    assert list(AllowedMatcher(matching.ListMatcher([5, 6, 7]), []).all_ids()) == []


def test_allowed_docs_segment_slices() -> None:
    allowed = AllowedDocs([3, 10, 11, 25, 40])
    assert allowed.ids == [3, 10, 11, 25, 40] and len(allowed) == 5
    assert allowed.local(0, 10) == [3]
    assert allowed.local(10, 20) == [0, 1, 15]
    assert allowed.local(30, 5) == []
    assert not AllowedDocs([])


def _random_text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


@pytest.fixture
def segmented(index: SearchIndex) -> SearchIndex:
    """Three commits (so several segments), documents in four folders."""
    rng = random.Random(5)
    n = 0
    for _commit in range(3):
        with index.writer() as w:
            for _ in range(25):
                w.add_or_update(doc(f"d{n}", f"f{n % 4}", _random_text(rng, 3),
                                    _random_text(rng, 30)))
                n += 1
    return index


QUERIES = [
    wq.Term("body", "dijk"),
    wq.And([wq.Term("body", "dijk"), wq.Term("body", "strand")]),
    wq.Or([wq.Term("body", "haven"), wq.Term("title", "zee")]),
    wq.AndNot(wq.Term("body", "water"), wq.Term("body", "plan")),
    wq.Phrase("body", ["dijk", "strand"]),
    wq.Phrase("body", ["de", "het"]),
    wq.Or([wq.Phrase("body", ["zee", "de"]), wq.Phrase("title", ["raad", "plan"])]),
    wq.And([wq.Phrase("body", ["water", "de"]), wq.Term("body", "raad")]),
    wq.Phrase("body", ["de", "de"]),
    wq.Phrase("body", ["dijk", "de", "het"]),
    wq.Phrase("body", ["de", "zee", "de", "water"]),
    wq.Phrase("body", ["dijk", "strand"], slop=2),  # whoosh's own span matcher
]


@pytest.mark.parametrize(
    "folders", [{"f0"}, {"f1", "f3"}, {"f0", "f1", "f2", "f3"}, 11, 29]
)
def test_restricted_equals_filtered_across_segments(
    segmented: SearchIndex, folders: set[str] | int
) -> None:
    """Folder sets are dense (membership mode); every 11th/29th document is sparse
    (skipping mode)."""
    with segmented._lock:
        searcher = segmented._current_searcher()
        assert not searcher.is_atomic()  # the test is about segment offsets
        if isinstance(folders, int):
            allowed = AllowedDocs(range(3, searcher.doc_count_all(), folders))
            sub = searcher.leaf_searchers()[1][0]
            assert allowed.dense_for_searcher(sub) is None  # really the sparse path
        else:
            folder_q = wq.Or([wq.Term("folder_id", f) for f in sorted(folders)])
            allowed = AllowedDocs(searcher.docs_for_query(folder_q))
        matched_phrases = 0
        for q in QUERIES:
            expected = set(searcher.docs_for_query(q)) & allowed.set
            matched_phrases += isinstance(q, wq.Phrase) and bool(expected)
            assert set(searcher.docs_for_query(restrict(q, allowed))) == expected, q
            hits = searcher.search(restrict(q, allowed), limit=None, optimize=False)
            assert {h.docnum for h in hits} == expected, q
            plain = searcher.search(q, filter=allowed.set, limit=None, optimize=False)
            # same documents, same scores: restriction does not change ranking
            assert {h.docnum: h.score for h in hits} == pytest.approx(
                {h.docnum: h.score for h in plain}
            )
        assert matched_phrases >= 3  # the phrase matchers were really exercised


def test_restrict_wraps_every_leaf() -> None:
    allowed = AllowedDocs([1])
    q = restrict(wq.AndNot(wq.And([wq.Term("body", "a"), wq.Phrase("body", ["b", "c"])]),
                           wq.Term("body", "d")), allowed)
    leaves: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, Restricted):
            leaves.append(node.child)
            return
        assert not node.is_leaf(), node
        for child in node.children():
            walk(child)

    walk(q)
    assert len(leaves) == 3
    assert restrict(q, allowed) == q  # idempotent


def test_phrase_positions_read_only_in_allowed_documents(
    segmented: SearchIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[int] = []
    original = AdjacentPhraseMatcher._get_spans

    def spy(self: Any) -> Any:
        checked.append(self.id())
        return original(self)

    monkeypatch.setattr(AdjacentPhraseMatcher, "_get_spans", spy)
    with segmented._lock:
        searcher = segmented._current_searcher()
        allowed_global = set(searcher.docs_for_query(wq.Term("folder_id", "f2")))
        # the phrase runs over title and body (and comments, filename: empty here)
        per_field = [
            set(searcher.docs_for_query(wq.And([wq.Term(f, "de"), wq.Term(f, "het")])))
            for f in ("title", "body")
        ]
        # segment-relative numbers of the allowed documents, for every segment
        allowed_local = {
            d - offset
            for _s, offset in searcher.leaf_searchers()
            for d in allowed_global
        }
    checked.clear()
    result = segmented.search('"de het"', readable_folder_ids={"f2"}, page_size=100)
    assert checked, "the phrase was evaluated"
    assert set(checked) <= allowed_local
    # at most one position check per allowed document holding both words (whoosh's
    # filter alone would check every document holding both)
    readable_checks = sum(len(c & allowed_global) for c in per_field)
    assert len(checked) <= readable_checks < sum(len(c) for c in per_field)
    assert {h.folder_id for h in result.hits} <= {"f2"}
    unrestricted = segmented.search('"de het"', readable_folder_ids={"f0", "f1", "f2", "f3"})
    assert result.total <= unrestricted.total


def test_suggestion_for_one_misspelled_word_among_several(index: SearchIndex) -> None:
    with index.writer() as w:
        w.add_or_update(doc("o1", "open", "Dijk", "De dijk bij Westkapelle."))
        w.add_or_update(doc("c1", "closed", "Geheim", "zwaluwstaart dijk"))
    r = index.search("dijk westkapele", readable_folder_ids={"open"})
    assert r.total == 0 and r.suggestions == {"westkapele": "westkapelle"}
    assert r.corrected_query == "dijk westkapelle"
    # a word only unreadable documents hold is not offered in a longer query either
    r = index.search("dijk zwaluwstart", readable_folder_ids={"open"})
    assert r.total == 0 and r.suggestions == {}
    # and a present word is never "corrected"
    r = index.search("dijk -westkapelle", readable_folder_ids={"open"})
    assert r.total == 0 and r.suggestions == {}


def test_spelling_word_list_refreshes_with_the_index(index: SearchIndex) -> None:
    with index.writer() as w:
        w.add_or_update(doc("o1", "open", "A", "kompas"))
    assert index.search("kompaz", readable_folder_ids={"open"}).suggestions == {
        "kompaz": "kompas"
    }
    with index.writer() as w:  # a new word after the word list was cached
        w.add_or_update(doc("o2", "open", "B", "zeesluis"))
    assert index.search("zeesluiz", readable_folder_ids={"open"}).suggestions == {
        "zeesluiz": "zeesluis"
    }
