"""The whoosh full-text index: Dutch+English analysis, encryption at rest, access filter."""

from indexer.index._schema import IndexDocument
from indexer.index._search import Hit, SearchFilters, SearchResults, Snippet
from indexer.index._store import SCHEMA_VERSION, IndexWriter, SearchIndex
from indexer.index.encrypted import EncryptedFileStorage

__all__ = [
    "SCHEMA_VERSION",
    "EncryptedFileStorage",
    "Hit",
    "IndexDocument",
    "IndexWriter",
    "SearchFilters",
    "SearchIndex",
    "SearchResults",
    "Snippet",
]
