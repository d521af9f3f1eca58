"""Dutch + English analysis: stemming both ways, accent folding, stop words."""

from __future__ import annotations

import pytest

from indexer import SearchIndex
from tests.indexer.conftest import doc

OPEN = {"open"}


@pytest.mark.parametrize(
    ("indexed", "query"),
    [
        ("De dijk bij Vlissingen", "dijken"),
        ("Alle dijken zijn versterkt", "dijk"),
        ("Nieuwe woningen in Goes", "woning"),
        ("Eén woning te koop", "woningen"),
        ("Housing policies of the province", "policy"),
        ("The policy on water", "policies"),
        ("Gemeenten werken samen", "gemeente"),
    ],
)
def test_stemming_both_languages(index: SearchIndex, indexed: str, query: str) -> None:
    with index.writer() as w:
        w.add_or_update(doc("d1", "open", "Stuk", indexed))
    assert index.search(query, readable_folder_ids=OPEN).total == 1


@pytest.mark.parametrize(
    ("indexed", "query"),
    [("één regel", "een"), ("een regel", "één"), ("café Zeeland", "cafe"),
     ("cafe Zeeland", "café"), ("financiën", "financien"), ("reünie", "reunie")],
)
def test_accent_folding(index: SearchIndex, indexed: str, query: str) -> None:
    with index.writer() as w:
        w.add_or_update(doc("d1", "open", "Stuk", indexed))
    assert index.search(query, readable_folder_ids=OPEN).total == 1


def test_stop_words_dropped_from_queries_but_phrases_exact(index: SearchIndex) -> None:
    with index.writer() as w:
        w.add_or_update(doc("d1", "open", "Wet", "de wet op de ruimtelijke ordening"))
        w.add_or_update(doc("d2", "open", "Wet", "ruimtelijke wet van de ordening"))
    # "op" and "de" are stop words: the plain query needs only the content words
    assert index.search("wet op ordening", readable_folder_ids=OPEN).total == 2
    phrase = index.search('"wet op de ruimtelijke ordening"', readable_folder_ids=OPEN)
    assert [h.document_id for h in phrase.hits] == ["d1"]
    # a query of stop words only still searches
    assert index.search("de", readable_folder_ids=OPEN).total == 2


def test_case_and_tokenizing_of_filenames(index: SearchIndex) -> None:
    with index.writer() as w:
        w.add_or_update(doc("d1", "open", "Verslag", "tekst", filename="Jaarverslag_2025-def.pdf"))
    assert index.search("jaarverslag", readable_folder_ids=OPEN).total == 1
    assert index.search("2025", readable_folder_ids=OPEN).total == 1
