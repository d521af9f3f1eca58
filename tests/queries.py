"""Counting the SQL a piece of code makes (CONVENTIONS.md: listing a folder of 1,000
documents is a fixed number of queries; a hidden id and a missing one do the same work)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


@contextmanager
def counted_queries(engine: Engine) -> Iterator[list[str]]:
    """Every statement ``engine`` sends to the database inside the block from this thread, in
    order:

        with counted_queries(db.engine) as statements:
            listing()
        assert len(statements) == 6, statements

    Only this thread's: with the app in the test process, its background loops (indexer,
    maintenance, mail) use the same engine at the same time."""
    statements: list[str] = []
    thread = threading.get_ident()

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.get_ident() == thread:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
