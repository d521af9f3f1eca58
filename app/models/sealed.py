"""Sealed columns: content kept in the database encrypted with the key ring.

Comment bodies, titles, file and folder names, version labels and activity details are what a
person typed; a copy of the data directory without the key file must not show them
(docs/security.md, "Data at rest"). ``SealedText``/``SealedJSON`` encrypt on the way in and
decrypt on the way out with ``KeyRing.seal_field``: AES-GCM under a key derived from the
active KEK, stored as ``v1:<kek_id>:<base64url>``, with ``table.column`` as associated data so a
value copied into another column does not decrypt.

The keys are not a global: each ``Database`` attaches its ``KeySource`` to its engine's
dialect (one dialect per engine), which is what SQLAlchemy hands a type's processors. An
engine without keys refuses to read or write these columns rather than store plaintext.

What this costs: the database cannot sort, filter or compare on these columns (equal values
encrypt differently), so such work happens in Python after the rows are read.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from sqlalchemy import Engine, MetaData, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

_ATTRIBUTE = "plein_field_keys"


class FieldKeys(Protocol):
    def seal_field(self, plaintext: bytes, context: str) -> str: ...

    def open_field(self, value: str, context: str) -> bytes: ...


class MissingKeys(RuntimeError):
    """A sealed column was used on an engine that was given no keys."""


def attach_keys(engine: Engine, keys: FieldKeys) -> None:
    """Make ``keys`` seal and open the sealed columns of everything run on ``engine``."""
    setattr(engine.dialect, _ATTRIBUTE, keys)


def keys_of(dialect: Dialect) -> FieldKeys:
    keys: FieldKeys | None = getattr(dialect, _ATTRIBUTE, None)
    if keys is None:
        raise MissingKeys("this database engine has no key source attached "
                          "(app.models.sealed.attach_keys); sealed columns cannot be used")
    return keys


class SealedText(TypeDecorator[str]):
    """A text column stored sealed; ``context`` is its ``table.column`` name."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keys_of(dialect).seal_field(value.encode("utf-8"), self.context)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keys_of(dialect).open_field(str(value), self.context).decode("utf-8")


class SealedJSON(TypeDecorator[Any]):
    """A JSON value stored sealed (the serialised document is encrypted as one text)."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        raw = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return keys_of(dialect).seal_field(raw, self.context)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.loads(keys_of(dialect).open_field(str(value), self.context))


def sealed_columns(metadata: MetaData) -> list[tuple[str, str, str]]:
    """Every sealed column as (table, column, context): what rotation reseals and fsck reads."""
    return [(table.name, column.name, column.type.context)
            for table in metadata.sorted_tables for column in table.columns
            if isinstance(column.type, SealedText | SealedJSON)]
