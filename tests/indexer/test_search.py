"""Queries, filters, sorting, paging, snippets -- and the access filter inside all of them.

carol may read folder ``open`` only; ``closed`` holds documents sharing her words.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from indexer import QueryError, SearchFilters, SearchIndex
from tests.indexer.conftest import doc

CAROL = {"open"}


@pytest.fixture
def filled(index: SearchIndex) -> SearchIndex:
    with index.writer() as w:
        w.add_or_update(doc("o1", "open", "Dijkversterking Walcheren",
                            "De dijken bij Westkapelle worden versterkt.",
                            "Op pagina twee staan de woningen.",
                            kind="file", author="alice", modified=datetime(2026, 1, 5)))
        w.add_or_update(doc("o2", "open", "Notulen raad", "Besluit over de dijk en het strand.",
                            author="bob", modified=datetime(2026, 2, 5)))
        w.add_or_update(doc("o3", "open", "Woonvisie", "Nieuwe woningen in Middelburg.",
                            group_id="g2", modified=datetime(2026, 3, 5)))
        # closed: shares "dijk", has a secret word, its own kind and a misspelling bait
        w.add_or_update(doc("c1", "closed", "Geheim dijkrapport",
                            "Het dijk project zwaluwstaart kost veel.",
                            kind="secret-kind", author="alice"))
        w.add_or_update(doc("c2", "closed", "Dijk memo", "dijk dijk dijk woningen zwaluwstaart"))
    return index


def ids(results: object) -> list[str]:
    return [h.document_id for h in results.hits]  # type: ignore[attr-defined]


def test_words_are_anded(filled: SearchIndex) -> None:
    assert ids(filled.search("dijk besluit", readable_folder_ids=CAROL)) == ["o2"]
    assert sorted(ids(filled.search("dijk", readable_folder_ids=CAROL))) == ["o1", "o2"]


def test_phrase_and_prefix(filled: SearchIndex) -> None:
    assert ids(filled.search('"worden versterkt"', readable_folder_ids=CAROL)) == ["o1"]
    assert ids(filled.search('"versterkt worden"', readable_folder_ids=CAROL)) == []
    assert sorted(ids(filled.search("wonin*", readable_folder_ids=CAROL))) == ["o1", "o3"]
    assert ids(filled.search("westkap*", readable_folder_ids=CAROL)) == ["o1"]


def test_exclusion(filled: SearchIndex) -> None:
    assert ids(filled.search("dijk -strand", readable_folder_ids=CAROL)) == ["o1"]


def test_title_is_boosted(filled: SearchIndex) -> None:
    with filled.writer() as w:
        w.add_or_update(doc("o4", "open", "Over iets anders", "strand " * 3))
        w.add_or_update(doc("o5", "open", "Strand", "iets anders"))
    assert ids(filled.search("strand", readable_folder_ids=CAROL))[0] == "o5"


def test_filters_narrow(filled: SearchIndex) -> None:
    def search(**kw: object) -> list[str]:
        return sorted(ids(filled.search("dijk OR woningen", readable_folder_ids=CAROL,
                                        filters=SearchFilters(**kw))))  # type: ignore[arg-type]

    assert sorted(ids(filled.search("woningen", readable_folder_ids=CAROL,
                                    filters=SearchFilters(group_ids={"g2"})))) == ["o3"]
    assert ids(filled.search("dijk", readable_folder_ids=CAROL,
                             filters=SearchFilters(kinds={"file"}))) == ["o1"]
    assert ids(filled.search("dijk", readable_folder_ids=CAROL,
                             filters=SearchFilters(authors={"bob"}))) == ["o2"]
    assert ids(filled.search("dijk", readable_folder_ids=CAROL, filters=SearchFilters(
        modified_from=datetime(2026, 2, 1), modified_to=datetime(2026, 2, 28)))) == ["o2"]
    # a folder filter can only narrow: asking for "closed" does not open it
    assert ids(filled.search("dijk", readable_folder_ids=CAROL,
                             filters=SearchFilters(folder_ids={"closed"}))) == []
    del search


def test_sort_by_date_and_paging(filled: SearchIndex) -> None:
    with filled.writer() as w:
        for i in range(25):
            w.add_or_update(doc(f"p{i:02}", "open", f"Rapport {i}", "havenrapport",
                                modified=datetime(2025, 1, 1 + i)))
    newest = filled.search("havenrapport", readable_folder_ids=CAROL, sort="newest", page_size=10)
    assert newest.total == 25 and newest.pages == 3
    assert ids(newest) == [f"p{i:02}" for i in range(24, 14, -1)]
    last = filled.search("havenrapport", readable_folder_ids=CAROL, sort="oldest",
                         page=3, page_size=10)
    assert ids(last) == [f"p{i:02}" for i in range(20, 25)]


def test_snippets_escape_text_and_mark_matches(index: SearchIndex) -> None:
    with index.writer() as w:
        w.add_or_update(doc("x", "open", "<b>Titel</b> & co",
                            "Tekst met <script>alert('dijk')</script> en de dijk & meer."))
    hit = index.search("dijk", readable_folder_ids=CAROL).hits[0]
    html = " ".join(s.html for s in hit.snippets)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<mark>dijk</mark>" in html
    # the only tags are ours
    assert set(re.findall(r"</?([a-z]+)", html)) == {"mark"}
    assert hit.title_html == "&lt;b&gt;Titel&lt;/b&gt; &amp; co"


def test_snippet_names_the_page(index: SearchIndex) -> None:
    pages = [f"Pagina {i}. " + "vulling " * 80 for i in range(1, 11)]
    pages[6] += " kwartelkoning gezien"
    with index.writer() as w:
        w.add_or_update(doc("pdf", "open", "Verslag", *pages, kind="file"))
    hit = index.search("kwartelkoning", readable_folder_ids=CAROL).hits[0]
    assert [s.page for s in hit.snippets] == [7]
    assert "<mark>kwartelkoning</mark>" in hit.snippets[0].html


def test_snippet_deep_in_a_long_document(index: SearchIndex) -> None:
    body = "opvulling " * 50_000 + " kwartelkoning " + "opvulling " * 100
    with index.writer() as w:
        w.add_or_update(doc("long", "open", "Lang", body))
    hit = index.search("kwartelkoning", readable_folder_ids=CAROL).hits[0]
    assert "<mark>kwartelkoning</mark>" in hit.snippets[0].html


def test_snippet_from_a_comment(index: SearchIndex) -> None:
    with index.writer() as w:
        w.add_or_update(doc("n", "open", "Notitie", "gewone tekst",
                            comments=["Let op de <b>kwartelkoning</b>"]))
    hit = index.search("kwartelkoning", readable_folder_ids=CAROL).hits[0]
    html = hit.snippets[0].html
    assert html.startswith("Let op de &lt;b&gt;<mark>kwartelkoning</mark>&lt;/b")
    assert "<b>" not in html


def test_query_errors(index: SearchIndex) -> None:
    with pytest.raises(QueryError):
        index.search("   ", readable_folder_ids=CAROL)
    with pytest.raises(QueryError):
        index.search("-alleen", readable_folder_ids=CAROL)
    with pytest.raises(QueryError):
        index.search("x" * 600, readable_folder_ids=CAROL)


def test_no_field_syntax(filled: SearchIndex) -> None:
    # "folder_id:closed" is two plain words, never a field query
    assert filled.search("folder_id:closed", readable_folder_ids=CAROL).total == 0


# -- access -------------------------------------------------------------------------

def test_totals_hits_snippets_only_from_readable(filled: SearchIndex) -> None:
    result = filled.search("dijk", readable_folder_ids=CAROL, facets=True, page_size=1)
    assert result.total == 2  # c1, c2 match too but are not counted
    assert len(result.hits) == 1
    page2 = filled.search("dijk", readable_folder_ids=CAROL, page=2, page_size=1)
    assert {result.hits[0].document_id, page2.hits[0].document_id} == {"o1", "o2"}
    assert filled.search("dijk", readable_folder_ids=CAROL, page=3, page_size=1).hits == ()
    everything = " ".join(s.html for h in result.hits + page2.hits for s in h.snippets)
    assert "zwaluw" not in everything and "project" not in everything


@pytest.mark.parametrize("facets", [False, True])
@pytest.mark.parametrize("sort", ["relevance", "newest"])
@pytest.mark.parametrize("page_size", [1, 3, 50])
def test_total_counts_only_readable_whatever_the_options(
    index: SearchIndex, facets: bool, sort: str, page_size: int
) -> None:
    # Many unreadable matches and a page smaller than the result set: the paths where
    # whoosh stops scoring early and counts separately (its TermsCollector once
    # counted those without the filter).
    with index.writer() as w:
        for i in range(5):
            w.add_or_update(doc(f"o{i}", "open", "Open", "haven beleid"))
        for i in range(40):
            w.add_or_update(doc(f"c{i}", "closed", "Dicht", "haven beleid haven"))
    result = index.search("haven", readable_folder_ids=CAROL, facets=facets,
                          sort=sort, page_size=page_size)  # type: ignore[arg-type]
    assert result.total == 5
    assert {h.folder_id for h in result.hits} == {"open"}
    if facets:
        assert result.facets["folder_id"] == {"open": 5}


def test_secret_word_invisible(filled: SearchIndex) -> None:
    result = filled.search("zwaluwstaart", readable_folder_ids=CAROL)
    assert result.total == 0 and result.hits == ()
    assert result.suggestions == {} and result.corrected_query is None


def test_facets_only_count_readable(filled: SearchIndex) -> None:
    result = filled.search("dijk", readable_folder_ids=CAROL, facets=True)
    assert result.facets["folder_id"] == {"open": 2}
    assert "secret-kind" not in result.facets["kind"]
    assert sum(result.facets["kind"].values()) == 2


def test_suggestions_only_from_readable(filled: SearchIndex) -> None:
    # misspelling of a word only the closed folder holds: no suggestion
    assert filled.search("zwaluwstart", readable_folder_ids=CAROL).suggestions == {}
    # whoever may read the closed folder gets it
    both = filled.search("zwaluwstart", readable_folder_ids={"open", "closed"})
    assert both.suggestions == {"zwaluwstart": "zwaluwstaart"}
    assert both.corrected_query == "zwaluwstaart"
    # a misspelling of a readable word is corrected for carol
    fixed = filled.search("westkapele", readable_folder_ids=CAROL)
    assert fixed.suggestions == {"westkapele": "westkapelle"}


def test_suggestion_ranking_ignores_unreadable_frequencies(index: SearchIndex) -> None:
    with index.writer() as w:
        w.add_or_update(doc("o", "open", "A", "kaart"))
        for i in range(20):  # "kaars" is far more frequent, but only in the closed folder
            w.add_or_update(doc(f"c{i}", "closed", "B", "kaars"))
    assert index.search("kaarx", readable_folder_ids=CAROL).suggestions == {"kaarx": "kaart"}


def test_no_readable_folders_finds_nothing(filled: SearchIndex) -> None:
    # whoosh reads an empty filter as "no filter": the empty set must short-circuit
    assert filled.search("dijk", readable_folder_ids=set()).total == 0
    assert filled.search("dijk", readable_folder_ids={"nonexistent"}).total == 0
