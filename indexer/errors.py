"""Exceptions raised by the indexer package.

One base so the app can catch indexer failures without catching programming errors::

    IndexerError
    ├── IndexUnavailable   no usable index (missing/garbled ``current`` pointer, unreadable
    │                      or unauthenticated index file, wrong key)
    ├── WriterBusy         another process holds whoosh's single writer lock
    └── QueryError         a query the parser cannot turn into a search (empty, too long)

Extraction never raises for bad *content*: a broken or hostile file is an
``ExtractionResult`` with a non-ok status (the caller indexes metadata only).
None of the messages contain document text or key material.
"""

from __future__ import annotations

__all__ = ["IndexUnavailable", "IndexerError", "QueryError", "WriterBusy"]


class IndexerError(Exception):
    """Base class of every error the indexer package raises deliberately."""


class IndexUnavailable(IndexerError):
    """The index cannot be opened or one of its files failed authentication."""


class WriterBusy(IndexerError):
    """Another writer holds the index (whoosh allows exactly one)."""


class QueryError(IndexerError, ValueError):
    """The query string cannot be searched (empty after analysis, or too long)."""
