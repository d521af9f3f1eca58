"""The index on disk: generations behind a ``current`` pointer, one writer, many searches.

Layout under the index root::

    current            {"dir": "gen-...", "schema": N}   (written durably, atomically)
    gen-<time>-<rand>/  one whoosh index (EncryptedFileStorage)

Searches open whichever generation ``current`` names. ``rebuild`` fills a new
generation while searches keep answering from the old one, then switches the
pointer in one durable rename; the old generation is removed afterwards (open
readers keep their file descriptors, POSIX semantics).
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
import time
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from pathlib import Path
from types import TracebackType
from typing import Any

from whoosh.filedb.filestore import FileStorage
from whoosh.index import EmptyIndexError, LockError
from whoosh.query import Term

from indexer.errors import IndexUnavailable, WriterBusy
from indexer.index._query import parse_query
from indexer.index._restrict import AllowedDocs
from indexer.index._schema import IndexDocument, make_schema, to_fields
from indexer.index._search import (
    SearcherCache,
    SearchFilters,
    SearchResults,
    Sort,
    build_filter,
    empty_results,
    run_search,
)
from indexer.index.encrypted import EncryptedFileStorage, RingKeys
from storage import Keys, StorageError, durable_write_bytes, ensure_dir

__all__ = ["IndexWriter", "SearchIndex"]

SCHEMA_VERSION = 2  # 2: the ``words`` field for suggestions (see _schema)
POINTER = "current"
_GEN_RE = re.compile(r"gen-[A-Za-z0-9_-]{1,64}")
_FILTER_CACHE = 64
_WRITER_LIMIT_MB = 256


class SearchIndex:
    """One process's handle on the index: searches (thread-safe) and the single writer.

    ``keys=None`` stores the index in plaintext: for benchmarks and tests only.
    """

    def __init__(self, root: Path, keys: Keys | None, *, create: bool = True) -> None:
        self.root = Path(root)
        self._keys = None if keys is None else RingKeys(keys)
        self._lock = threading.Lock()
        self._ix: Any = None
        self._searcher: Any = None
        self._gen = ""
        self._filters: dict[tuple[Any, ...], AllowedDocs] = {}
        self._cache = SearcherCache()  # per searcher: cleared whenever it changes
        if not (self.root / POINTER).exists():
            if not create:
                raise IndexUnavailable(f"no index at {self.root}")
            ensure_dir(self.root)
            self._switch(self._new_generation())

    # -- generations ------------------------------------------------------------

    def _storage(self, gen: str) -> Any:
        path = self.root / gen
        if self._keys is None:
            return FileStorage(str(path))
        return EncryptedFileStorage(path, self._keys)

    def _new_generation(self) -> str:
        gen = f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
        ensure_dir(self.root / gen)
        self._storage(gen).create_index(make_schema())
        return gen

    def _read_pointer(self) -> tuple[str, int]:
        try:
            doc = json.loads((self.root / POINTER).read_bytes())
            gen, version = doc["dir"], doc["schema"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexUnavailable(f"index pointer unreadable ({type(exc).__name__})") from None
        if not isinstance(gen, str) or not _GEN_RE.fullmatch(gen) or not isinstance(version, int):
            raise IndexUnavailable("index pointer malformed")
        return gen, version

    def _switch(self, gen: str) -> None:
        data = json.dumps({"dir": gen, "schema": SCHEMA_VERSION}).encode() + b"\n"
        durable_write_bytes(self.root / POINTER, [data], mode=0o600)

    @property
    def needs_rebuild(self) -> bool:
        """True when the index on disk predates this code's schema (run ``rebuild``)."""
        return self._read_pointer()[1] != SCHEMA_VERSION

    def _open(self, gen: str) -> Any:
        try:
            return self._storage(gen).open_index(schema=make_schema())
        except (EmptyIndexError, OSError, StorageError) as exc:
            raise IndexUnavailable(f"cannot open index generation ({type(exc).__name__})") from exc

    # -- searching --------------------------------------------------------------

    def _current_searcher(self) -> Any:
        """The shared searcher, reopened when the pointer or the index generation moved."""
        gen, _version = self._read_pointer()
        if gen != self._gen or self._ix is None:
            try:
                ix = self._open(gen)
            except IndexUnavailable:
                # Another process may have switched generations and removed this one
                # between our pointer read and the open: read the pointer once more.
                gen, _version = self._read_pointer()
                ix = self._open(gen)
            if self._searcher is not None:
                self._searcher.close()
            self._ix, self._gen, self._searcher = ix, gen, ix.searcher()
            self._filters.clear()
            self._cache = SearcherCache()
        elif not self._searcher.up_to_date():
            self._searcher = self._searcher.refresh()
            self._filters.clear()
            self._cache.prune(self._searcher.reader())  # per segment: kept across commits
        return self._searcher

    def search(
        self,
        query: str,
        *,
        readable_folder_ids: AbstractSet[str],
        filters: SearchFilters | None = None,
        sort: Sort = "relevance",
        page: int = 1,
        page_size: int = 20,
        facets: bool = False,
        snippets: int = 2,
    ) -> SearchResults:
        """Search only the documents in ``readable_folder_ids`` (computed by the app).

        The folder set is applied inside the query, before counting, paging,
        grouping, highlighting and spelling suggestions. An empty set finds nothing.
        Raises QueryError for an unsearchable query string.
        """
        if page < 1 or not 1 <= page_size <= 100:
            raise ValueError("page >= 1 and 1 <= page_size <= 100")
        parsed = parse_query(query)
        filters = filters or SearchFilters()
        allowed_folders = frozenset(readable_folder_ids)
        if filters.folder_ids is not None:
            allowed_folders &= frozenset(filters.folder_ids)
        if not allowed_folders:
            return empty_results(query, page, page_size)
        with self._lock:  # whoosh searchers share file positions: one query at a time
            searcher = self._current_searcher()
            key = (
                allowed_folders,
                *(None if v is None else frozenset(v) for v in (
                    filters.group_ids, filters.kinds, filters.authors)),
                filters.modified_from,
                filters.modified_to,
            )
            allowed = self._filters.get(key)
            if allowed is None:
                allowed = build_filter(searcher, allowed_folders, filters)
                if len(self._filters) >= _FILTER_CACHE:
                    self._filters.pop(next(iter(self._filters)))
                self._filters[key] = allowed
            return run_search(
                searcher, parsed, allowed=allowed, sort=sort, page=page,
                page_size=page_size, facets=facets, snippet_count=snippets,
                cache=self._cache,
            )

    def doc_count(self) -> int:
        with self._lock:
            return int(self._current_searcher().doc_count())

    # -- writing ----------------------------------------------------------------

    def writer(self) -> IndexWriter:
        """The index's single writer (whoosh allows one; a second raises WriterBusy)."""
        return IndexWriter(self)

    def rebuild(self, documents: Iterable[IndexDocument], *, commit_every: int = 10_000) -> int:
        """Index ``documents`` into a new generation, then switch to it atomically.

        Searches answer from the old generation until the switch. Updates the
        worker makes meanwhile go to the old generation and are lost with it:
        the worker should replay outbox entries newer than the rebuild's start
        afterwards (updates are idempotent). Returns the number of documents.
        """
        old, _version = self._read_pointer()
        gen = self._new_generation()
        count = 0
        try:
            ix = self._open(gen)
            writer = _fast_flush(ix.writer(limitmb=_WRITER_LIMIT_MB))
            for doc in documents:
                # A fresh generation and one document per id: nothing to replace (whoosh's
                # update_document would open a searcher over every segment per document).
                writer.add_document(**to_fields(doc))
                count += 1
                if count % commit_every == 0:
                    writer.commit()
                    writer = _fast_flush(ix.writer(limitmb=_WRITER_LIMIT_MB))
            writer.commit()
            ix.close()
        except BaseException:
            shutil.rmtree(self.root / gen, ignore_errors=True)
            raise
        self._switch(gen)
        with self._lock:
            self._current_searcher()
        shutil.rmtree(self.root / old, ignore_errors=True)
        return count

    def close(self) -> None:
        with self._lock:
            if self._searcher is not None:
                self._searcher.close()
            if self._ix is not None:
                self._ix.close()
            self._searcher = self._ix = None
            self._gen = ""

    def __enter__(self) -> SearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fast_flush(writer: Any) -> Any:
    """Make ``writer``'s segment flush ask the store whether a column file exists once per
    field, not once per posting.

    whoosh's per-document reader caches a length column it found but not one that is
    absent (ID and ``words`` fields have none), so writing a segment called
    ``os.path.exists`` for every posting of those fields: 8% of a batch's indexing time.
    The files do not change during the flush (the per-document writer is closed by then).
    """
    original = writer.per_document_reader

    def per_document_reader() -> Any:
        reader = original()
        has_column = reader.has_column
        known: dict[str, bool] = {}

        def cached(fieldname: str) -> bool:
            found = known.get(fieldname)
            if found is None:
                found = known[fieldname] = bool(has_column(fieldname))
            return found

        reader.has_column = cached
        return reader

    writer.per_document_reader = per_document_reader
    return writer


class IndexWriter:
    """Batched, idempotent changes for the indexing worker; ``commit`` makes them visible.

    ``add_or_update`` replaces any document with the same id, so replaying an
    outbox entry is harmless. Mark outbox rows done only after ``commit`` returns.
    """

    def __init__(self, index: SearchIndex) -> None:
        self._index = index
        self._writer: Any = None
        self._ix: Any = None
        self._searcher: Any = None

    def _w(self) -> Any:
        if self._writer is None:
            gen, _version = self._index._read_pointer()
            self._ix = self._index._open(gen)
            try:
                self._writer = _fast_flush(self._ix.writer(limitmb=_WRITER_LIMIT_MB))
            except LockError:
                self._ix.close()
                self._ix = None
                raise WriterBusy("another process is writing the index") from None
        return self._writer

    def _committed(self) -> Any:
        """One searcher over the committed segments for the whole batch. (whoosh's
        ``update_document`` opens a new one per document: every segment's reader, each a
        decryption on the encrypted store.)"""
        writer = self._w()
        if self._searcher is None:
            self._searcher = writer.searcher()
        return self._searcher

    def add_or_update(self, doc: IndexDocument) -> None:
        """Replace the committed document with this id, if any. One writer batch must not
        hold the same id twice (the outbox has one task per document)."""
        fields = to_fields(doc)
        writer = self._w()
        writer.delete_by_term("document_id", doc.document_id, searcher=self._committed())
        writer.add_document(**fields)

    def delete(self, document_id: str) -> None:
        self._w().delete_by_term("document_id", document_id, searcher=self._committed())

    def delete_folder(self, folder_id: str) -> None:
        """Remove every document of a folder (folder deleted or moved out of reach)."""
        self._w().delete_by_query(Term("folder_id", folder_id), searcher=self._committed())

    def _close_searcher(self) -> None:
        if self._searcher is not None:
            searcher, self._searcher = self._searcher, None
            searcher.close()

    def commit(self) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        self._close_searcher()
        try:
            writer.commit()
        finally:
            self._ix.close()
            self._ix = None

    def cancel(self) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        self._close_searcher()
        try:
            writer.cancel()
        finally:
            self._ix.close()
            self._ix = None

    def __enter__(self) -> IndexWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.cancel()


