"""The search box syntax, turned into a whoosh query.

Deliberately small (users type words, not Lucene): ``word`` (all words must
match), ``"a phrase"``, ``pref*`` (at least two letters), ``-word`` / ``-"phrase"``
(exclude). No ``field:value`` syntax: filters are explicit parameters, so a query
string can never reach a field the app did not mean to expose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from whoosh import query as wq

from indexer.errors import QueryError
from indexer.index._analysis import STOP_WORDS, stems, words
from indexer.index._schema import SEARCH_FIELDS

__all__ = ["ParsedQuery", "parse_query"]

MAX_QUERY_CHARS = 500
MAX_CLAUSES = 24
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(-?)(\S+)')
_STEMMED = tuple(f for f in SEARCH_FIELDS if f != "filename")


@dataclass
class ParsedQuery:
    query: Any
    words: list[str] = field(default_factory=list)  # positive folded words, for suggestions
    text: str = ""
    # The whole query is one plain word (no phrase, prefix or exclusion): zero hits
    # then already means that word is in no readable document.
    single_word: bool = False


def _word(w: str) -> Any:
    variants = stems(w)
    terms = [wq.Term(f, s) for f in _STEMMED for s in variants]
    terms.append(wq.Term("filename", w))
    return wq.Or(terms)


def _prefix(w: str) -> Any:
    # Stems are (almost always) prefixes of their words, so a prefix over the stemmed
    # terms works; the word's own stems are added for "woningen*" (stem "woning").
    clauses = [wq.Prefix(f, w) for f in SEARCH_FIELDS]
    clauses += [wq.Term(f, s) for f in _STEMMED for s in stems(w)]
    return wq.Or(clauses)


def _phrase(ws: list[str]) -> Any:
    # Every position carries the Dutch stem, so a phrase of Dutch stems matches.
    dutch = [stems(w)[0] for w in ws]
    clauses = [wq.Phrase(f, dutch) for f in _STEMMED]
    clauses.append(wq.Phrase("filename", ws))
    return wq.Or(clauses)


def parse_query(text: str) -> ParsedQuery:
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"query longer than {MAX_QUERY_CHARS} characters")
    items: list[tuple[bool, str, list[str]]] = []  # (negated, kind, folded words)
    for m in _TOKEN.finditer(text):
        if m.group(2) is not None:
            ws = words(m.group(2))
            if ws:
                items.append((m.group(1) == "-", "phrase" if len(ws) > 1 else "word", ws))
            continue
        raw = m.group(4)
        negated = m.group(3) == "-"
        ws = words(raw)
        if not ws:
            continue
        if raw.endswith("*") and len(ws) == 1 and len(ws[0]) >= 2:
            items.append((negated, "prefix", ws))
        elif len(ws) > 1:  # "e-mail", "2025.pdf": the parts in order
            items.append((negated, "phrase", ws))
        else:
            items.append((negated, "word", ws))
    # Stop words are dropped from plain words -- unless nothing else is left, so
    # "de" or "één" alone still searches (they are indexed: see _analysis).
    content = [i for i in items if not (i[1] == "word" and i[2][0] in STOP_WORDS)]
    if any(not neg for neg, _, _ in content):
        items = content
    if len(items) > MAX_CLAUSES:
        raise QueryError(f"more than {MAX_CLAUSES} search terms")
    positive: list[Any] = []
    negative: list[Any] = []
    found: list[str] = []
    for negated, kind, ws in items:
        clause = _word(ws[0]) if kind == "word" else (
            _prefix(ws[0]) if kind == "prefix" else _phrase(ws)
        )
        (negative if negated else positive).append(clause)
        if not negated and kind == "word":
            found.append(ws[0])
    if not positive:
        raise QueryError("nothing to search for")
    q: Any = positive[0] if len(positive) == 1 else wq.And(positive)
    if negative:
        q = wq.AndNot(q, wq.Or(negative))
    single = len(items) == 1 and items[0][1] == "word" and not items[0][0]
    return ParsedQuery(query=q, words=found, text=text, single_word=single)
