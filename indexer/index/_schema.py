"""The index schema and the document value the app hands in."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from whoosh.fields import DATETIME, ID, STORED, TEXT, FieldType, Schema
from whoosh.formats import Existence

from indexer.index._analysis import make_analyzer, plain_analyzer

__all__ = ["SEARCH_FIELDS", "IndexDocument", "make_schema", "to_fields"]

# Fields a query word is looked up in (title is boosted in the schema).
SEARCH_FIELDS = ("title", "body", "comments", "filename")
PAGE_SEPARATOR = "\n\n"
_MAX_STORED_CHARS = 4_000_000


def make_schema() -> Schema:
    """document_id is the only unique key; folder_id is the only access datum stored.

    The body is indexed but not stored as a whoosh text field; its text is kept
    zlib-compressed in ``body_z`` (inside the encrypted index) as the snippet
    source, with ``page_starts`` mapping a character offset to a page number.

    ``words`` holds each document's words as written (folded, not stemmed), with
    postings: "did you mean" draws its candidates from this field and offers one only
    when a readable document holds that very word. (whoosh's ``spelling=True`` word
    lists have no postings, so they could only be checked by stem, which let a
    planted inflection reveal whether any document anywhere holds a word.)
    """
    analyzer = make_analyzer()
    return Schema(
        document_id=ID(stored=True, unique=True),
        title=TEXT(analyzer=analyzer, stored=True, field_boost=3.0),
        body=TEXT(analyzer=analyzer, stored=False),
        comments=TEXT(analyzer=analyzer, stored=False),
        filename=TEXT(analyzer=plain_analyzer(), stored=True),
        author=ID(stored=True),
        group_id=ID(stored=True),
        folder_id=ID(stored=True),
        kind=ID(stored=True),
        mime=ID(stored=True),
        created=DATETIME(stored=True, sortable=True),
        modified=DATETIME(stored=True, sortable=True),
        body_z=STORED(),
        comments_z=STORED(),
        page_starts=STORED(),
        words=FieldType(Existence(), plain_analyzer()),
    )


@dataclass(frozen=True, slots=True)
class IndexDocument:
    """One searchable document, as the app's indexing worker builds it.

    ``pages``: the extracted text, one element per page/slide (``ExtractionResult.pages``)
    or a single element for notes and page-less files; empty when extraction failed
    (the document is then findable by its metadata: title, filename, comments).
    ``author`` is an id the app can filter on, not a display name.
    """

    document_id: str
    folder_id: str
    group_id: str
    title: str
    kind: str
    modified: datetime
    created: datetime | None = None
    pages: Sequence[str] = ()
    comments: Sequence[str] = ()
    filename: str = ""
    author: str = ""
    mime: str = ""


def _utc(value: datetime) -> datetime:
    # whoosh compares naive datetimes; keep everything in naive UTC.
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def to_fields(doc: IndexDocument) -> dict[str, Any]:
    if not doc.document_id or not doc.folder_id:
        raise ValueError("document_id and folder_id are required")
    starts: list[int] = []
    pos = 0
    for page in doc.pages:
        starts.append(pos)
        pos += len(page) + len(PAGE_SEPARATOR)
    body = PAGE_SEPARATOR.join(doc.pages)
    comments = "\n".join(doc.comments)
    fields: dict[str, Any] = {
        "document_id": doc.document_id,
        "title": doc.title,
        "body": body,
        "comments": comments,
        "filename": doc.filename,
        "group_id": doc.group_id,
        "folder_id": doc.folder_id,
        "kind": doc.kind,
        "modified": _utc(doc.modified),
        "created": _utc(doc.created or doc.modified),
        "body_z": zlib.compress(body[:_MAX_STORED_CHARS].encode("utf-8"), 6),
        "comments_z": zlib.compress(comments[:_MAX_STORED_CHARS].encode("utf-8"), 6),
        "page_starts": starts if len(starts) > 1 else [],
        "words": "\n".join((doc.title, body, comments)),
    }
    # whoosh refuses empty values for ID fields: leave unknown ones out.
    if doc.author:
        fields["author"] = doc.author
    if doc.mime:
        fields["mime"] = doc.mime
    return fields
