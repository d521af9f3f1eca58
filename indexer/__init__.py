"""Plein's indexer: text extraction and the access-filtered, encrypted full-text index.

Like ``sync/``, it imports ``storage/`` only, never ``app/``: the application hands
it the folders a person may read (``readable_folder_ids``) and the documents to
index (``IndexDocument``), and calls it from its one indexing worker.

Public face:

* extraction (``indexer.extract``): ``extract_text(data, *, filename, limits)`` ->
  ``ExtractionResult`` (status ok | failed | limit | unsupported, pages, title),
  ``extract_text_async``, ``ExtractionLimits``. Runs in a pool of long-lived,
  resource-limited worker processes (``configure_workers``: how many, recycled after how
  many files); so does ``sniff_mime(prefix)`` / ``sniff_mime_async``, the uploads' sniffer.
* index (``indexer.index``): ``SearchIndex(root, keyring)`` with
  ``search(query, *, readable_folder_ids, filters, sort, page, page_size, facets)``
  -> ``SearchResults`` (total, hits with ``Snippet``s, facets, suggestions),
  ``writer()`` -> ``IndexWriter`` (add_or_update / delete / delete_folder / commit),
  ``rebuild(documents)`` (new generation + atomic switch), ``needs_rebuild``;
  ``EncryptedFileStorage`` (whoosh storage sealed under the KeyRing).
* errors: ``IndexerError`` > ``IndexUnavailable``, ``WriterBusy``, ``QueryError``.

Analysis (see ``indexer.index._analysis``): every word is indexed as its Dutch
and its English stem at one position, accents folded, stop words kept in the
index and dropped from non-phrase queries.
"""

from indexer.errors import IndexerError, IndexUnavailable, QueryError, WriterBusy
from indexer.extract import (
    DEFAULT_LIMITS,
    ExtractionLimits,
    ExtractionResult,
    ExtractionStatus,
    configure_workers,
    extract_text,
    extract_text_async,
    sniff_mime,
    sniff_mime_async,
)
from indexer.index import (
    EncryptedFileStorage,
    Hit,
    IndexDocument,
    IndexWriter,
    SearchFilters,
    SearchIndex,
    SearchResults,
    Snippet,
)

__all__ = [
    "DEFAULT_LIMITS",
    "EncryptedFileStorage",
    "ExtractionLimits",
    "ExtractionResult",
    "ExtractionStatus",
    "Hit",
    "IndexDocument",
    "IndexUnavailable",
    "IndexWriter",
    "IndexerError",
    "QueryError",
    "SearchFilters",
    "SearchIndex",
    "SearchResults",
    "Snippet",
    "WriterBusy",
    "configure_workers",
    "extract_text",
    "extract_text_async",
    "sniff_mime",
    "sniff_mime_async",
]
