"""Text analysis for Dutch and English in one field.

Chain: tokenizer (letters/digits; ``_ . -`` split words) -> lowercase -> accent
folding -> both stemmers. Choice (documented in ``indexer/__init__``):

* **Both stems at the same position** instead of language detection: Dutch
  public-sector text mixes in English terms ("policy", "stakeholders"), and
  detection on short documents (a title, a comment) is unreliable. Every token is
  indexed as its Dutch snowball stem and, when different, its English Porter2
  stem, at the same position. A query word is searched as OR(its Dutch stem, its
  English stem), so ``dijken`` finds ``dijk`` (nl), ``policies`` finds ``policy``
  (en), whatever language a document is in. Cost: one extra posting for words
  whose stems differ (measured in the benchmark), and a little over-matching
  across languages.
* **Phrases** use the Dutch stem of each word: every indexed position carries it,
  so a phrase matches its inflected variants too.
* **Stop words stay in the index** and are dropped from non-phrase queries only
  (``indexer.index._query``): phrases like "wet op de ruimtelijke ordening" stay
  exact, and "één" (a numeral, folded to the stop word "een") is still findable
  when it is all that was asked.

Folding runs before stemming so ``café``/``cafe`` and ``financiën``/``financien``
reach the stemmers as the same string.

The analyzer is pickled into the index's TOC by whoosh, so its parts must be
module-level classes (``DualStemFilter``) -- no lambdas or closures.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from whoosh.analysis import CharsetFilter, Filter, LowercaseFilter, RegexTokenizer
from whoosh.lang.porter2 import stem as _english_stem
from whoosh.lang.snowball.dutch import DutchStemmer
from whoosh.lang.stopwords import stoplists
from whoosh.support.charset import accent_map

__all__ = [
    "STOP_WORDS",
    "DualStemFilter",
    "fold",
    "make_analyzer",
    "plain_analyzer",
    "stems",
    "words",
]

TOKEN_PATTERN = r"[^\W_]+"  # noqa: S105 - a regex, not a secret
_dutch = DutchStemmer()
_tokenizer = RegexTokenizer(TOKEN_PATTERN)


@lru_cache(maxsize=200_000)
def _stems(word: str) -> tuple[str, ...]:
    # Stemming is pure and the vocabulary Zipf-distributed: a large cache pays.
    nl = _dutch.stem(word)
    en = _english_stem(word)
    return (nl,) if nl == en else (nl, en)


def fold(word: str) -> str:
    """Lowercase and strip accents (the same normalisation the index applies)."""
    return word.lower().translate(accent_map)


STOP_WORDS: frozenset[str] = frozenset(
    fold(w) for lang in ("nl", "en") for w in stoplists[lang]
)


def stems(folded_word: str) -> tuple[str, ...]:
    """The index terms of one already-folded word: (dutch,) or (dutch, english)."""
    return _stems(folded_word)


class DualStemFilter(Filter):  # type: ignore[misc]  # whoosh is untyped
    """Yield each token as its Dutch stem, then (if different) its English stem.

    Both carry the token's position and character range, so phrases and
    highlighting see one word. ``is_morph`` lets whoosh skip this filter for the
    unstemmed spelling field.
    """

    is_morph = True

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(type(self))

    def __call__(self, tokens: Iterator[Any]) -> Iterator[Any]:
        for t in tokens:
            if t.stopped:
                yield t
                continue
            variants = _stems(t.text)
            t.text = variants[0]
            yield t
            if len(variants) > 1:
                t.text = variants[1]
                yield t


def make_analyzer() -> Any:
    """tokenizer | lowercase | accent folding | Dutch+English stems (no stop filter)."""
    return (
        RegexTokenizer(TOKEN_PATTERN)
        | LowercaseFilter()
        | CharsetFilter(accent_map)
        | DualStemFilter()
    )


def plain_analyzer() -> Any:
    """tokenizer | lowercase | folding: for filenames and query-side word splitting."""
    return RegexTokenizer(TOKEN_PATTERN) | LowercaseFilter() | CharsetFilter(accent_map)


def words(text: str) -> list[str]:
    """Folded words of ``text`` in order (query side)."""
    return [fold(t.text) for t in _tokenizer(text)]
