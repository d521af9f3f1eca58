"""Housekeeping that runs in the background and from the CLI: trash purge, version thinning,
orphan collection, key rotation and the storage check (fsck)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import column, func, select, table, update
from sqlalchemy.orm import Session

from app.db import Database
from app.models import Base, Blob, Document, DocumentVersion, Folder, utcnow
from app.models.sealed import sealed_columns
from app.services import account_links, audit
from app.services.documents import drop_version, purge
from app.settings import Settings
from storage import (
    FIELD_PREFIX,
    KeySource,
    LocalBlobStore,
    StorageError,
    WrappedKey,
    collect_orphans,
    field_kek_id,
    rewrap_all,
    verify_blob,
)
from sync import rewrap_manifests

log = logging.getLogger("plein.maintenance")

ORPHAN_MIN_AGE_SECONDS = 3600  # an upload in flight has a blob but no row yet: leave it be
TEMP_MIN_AGE_SECONDS = 24 * 3600


# -- trash --------------------------------------------------------------------------------

def purge_expired_trash(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """Remove documents and folders that have been in the trash longer than the setting."""
    cutoff = (now or utcnow()) - timedelta(days=settings.trash_days)
    removed = 0
    with db.write() as session:
        # Rows are listed before anything is deleted: purging flushes deletes on the same
        # connection, and a cursor read across them could hand back rows already gone.
        # The purge after PLEIN_TRASH_DAYS is nobody's act (actor_id None) but is audited like
        # a purge by hand: "where did the folder go" has an answer.
        for doc in list(session.scalars(select(Document).where(Document.trashed_at < cutoff))):
            audit.record(session, "document.purged", actor_id=None, object_type="document",
                         object_id=doc.id, group_id=doc.group_id)
            purge(session, doc)
            removed += 1
        done: set[str] = set()
        for folder in list(session.scalars(select(Folder).where(Folder.trashed_at < cutoff))):
            if folder.id in done:
                continue  # inside an expired folder purged just before: already gone
            done.update(_subtree_ids(session, folder))
            audit.record(session, "folder.purged", actor_id=None, object_type="folder",
                         object_id=folder.id, group_id=folder.group_id)
            removed += purge_folder_tree(session, folder)
    return removed


def purge_folder_tree(session: Session, folder: Folder) -> int:
    """Delete a folder with everything below it, documents' versions and blob rows included
    (the rows must go so the quota frees up and the orphan collector removes the files).
    Returns the number of documents and folders removed."""
    ids = _subtree_ids(session, folder)
    count = 0
    for doc in session.scalars(select(Document).where(Document.folder_id.in_(ids))):
        purge(session, doc)
        count += 1
    session.flush()
    # Sub-folders go with it (ON DELETE CASCADE); count them so the total does not depend on
    # whether an expired sub-folder was purged on its own first.
    session.delete(folder)
    return count + len(ids)


def _subtree_ids(session: Session, folder: Folder) -> list[str]:
    rows = session.execute(select(Folder.id, Folder.parent_id)
                           .where(Folder.group_id == folder.group_id)).all()
    children: dict[str, list[str]] = {}
    for row in rows:
        if row.parent_id:
            children.setdefault(row.parent_id, []).append(row.id)
    found: list[str] = []
    stack = [folder.id]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


# -- version thinning ---------------------------------------------------------------------

_TIERS = (  # (older than, keep one per)
    (timedelta(days=30), timedelta(weeks=1)),
    (timedelta(days=7), timedelta(days=1)),
    (timedelta(days=1), timedelta(hours=1)),
)


def versions_to_thin(versions: list[DocumentVersion], current: int, now: datetime
                     ) -> list[DocumentVersion]:
    """Like the best peers: everything from the last day, then one per hour for a week, one per
    day for a month, one per week after that. The newest in each slot survives; the current,
    labelled and restored-from versions are always kept."""
    keep_numbers = {current} | {v.number for v in versions if v.label}
    keep_numbers |= {v.restored_from for v in versions if v.restored_from is not None}
    seen_slots: set[tuple[int, int]] = set()
    drop: list[DocumentVersion] = []
    for version in sorted(versions, key=lambda v: v.created_at, reverse=True):
        age = now - version.created_at
        for tier, (older_than, slot) in enumerate(_TIERS):
            if age >= older_than:
                key = (tier, int(version.created_at.timestamp() // slot.total_seconds()))
                if key in seen_slots and version.number not in keep_numbers:
                    drop.append(version)
                seen_slots.add(key)
                break
    return drop


def thin_versions(db: Database, now: datetime | None = None) -> int:
    now = now or utcnow()
    dropped = 0
    with db.write() as session:
        docs = session.scalars(select(Document).where(Document.kind == "file",
                                                      Document.current_version > 1))
        for doc in docs:
            versions = list(session.scalars(select(DocumentVersion)
                                            .where(DocumentVersion.document_id == doc.id)))
            for version in versions_to_thin(versions, doc.current_version, now):
                drop_version(session, version)
                dropped += 1
    return dropped


# -- blobs --------------------------------------------------------------------------------

def collect_garbage(db: Database, store: LocalBlobStore) -> tuple[int, int]:
    """Remove blob files no row refers to (older than an hour) and stale temp files."""
    with db.read() as session:
        known = set(session.scalars(select(Blob.id)))
    removed = collect_orphans(store, known, ORPHAN_MIN_AGE_SECONDS)
    temps = store.clean_temp_files(TEMP_MIN_AGE_SECONDS)
    return len(removed), temps


@dataclass
class RotationReport:
    new_key_id: str
    rewrapped: int
    resealed: int = 0
    retired: list[str] = field(default_factory=list)


def rotate_keys(db: Database, ring: KeySource, batch_size: int = 1000,
                notes_root: Path | None = None) -> RotationReport:
    """Make a new KEK active and rewrap every data key under it, one batch per transaction;
    reseal every sealed database value (titles, names, comments) under it the same way.
    Blob files are not touched; an interrupted rotation is finished by running it again.
    Old KEKs that no row uses any more are retired (kept in the file, never used to wrap)."""
    new_id = ring.add_key()
    rewrapped = 0
    while True:
        with db.write() as session:
            rows = session.execute(select(Blob.id, Blob.wrapped_key)
                                   .where(Blob.kek_id != ring.active_id).limit(batch_size)).all()
            if not rows:
                break
            pairs = ((row.id, WrappedKey.from_bytes(row.wrapped_key)) for row in rows)
            for blob_id, wrapped in rewrap_all(ring, pairs):
                session.execute(update(Blob).where(Blob.id == blob_id).values(
                    wrapped_key=wrapped.to_bytes(), kek_id=wrapped.kek_id))
                rewrapped += 1
    report = RotationReport(new_key_id=new_id, rewrapped=rewrapped)
    report.resealed, in_use = _reseal_columns(db, ring, batch_size)
    with db.read() as session:
        in_use |= set(session.scalars(select(Blob.kek_id).distinct()))
    if notes_root is not None:
        # Notes keep their log and snapshot keys in per-document manifests.
        manifests, note_keys = rewrap_manifests(notes_root, ring)
        report.rewrapped += manifests
        in_use |= note_keys
    for kek_id in ring.key_ids():
        if kek_id != ring.active_id and kek_id not in in_use and not ring.is_retired(kek_id):
            ring.retire(kek_id)
            report.retired.append(kek_id)
    return report


def _not_under(value_column: Any, kek_id: str) -> Any:
    prefix = f"{FIELD_PREFIX}{kek_id}:"
    return func.substr(value_column, 1, len(prefix)) != prefix


def _reseal_columns(db: Database, keys: KeySource, batch_size: int) -> tuple[int, set[str]]:
    """Reseal every sealed value not under the active key, one batch per transaction. Rows
    are read as stored (untyped columns): the ciphertext, not what the model decrypts to.
    Returns the count and the key ids still in use (values a running server sealed under a
    key it had not yet seen replaced: they keep that key alive until the next rotation)."""
    count = 0
    in_use: set[str] = set()
    for table_name, column_name, context in sealed_columns(Base.metadata):
        rows_table = table(table_name, column("id"), column(column_name))
        value_column = rows_table.c[column_name]
        active = keys.active_id
        while True:
            with db.write() as session:
                rows = session.execute(
                    select(rows_table.c.id, value_column)
                    .where(value_column.is_not(None), _not_under(value_column, active))
                    .limit(batch_size)).all()
                for row_id, value in rows:
                    plaintext = keys.open_field(str(value), context)
                    session.execute(update(rows_table).where(rows_table.c.id == row_id)
                                    .values({column_name: keys.seal_field(plaintext, context)}))
                    count += 1
            if not rows:
                break
        with db.read() as session:
            for value in session.scalars(select(value_column).where(
                    value_column.is_not(None), _not_under(value_column, active))):
                in_use.add(field_kek_id(str(value)))
    return count, in_use


@dataclass
class FsckReport:
    checked: int = 0
    damaged: list[tuple[str, str]] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    values_checked: int = 0
    # (table.column, row id, reason): sealed database values that do not decrypt.
    damaged_values: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.damaged_values


def fsck(db: Database, store: LocalBlobStore, keys: KeySource | None = None) -> FsckReport:
    """Read every blob the database knows, check it decrypts and matches its size and hash;
    list blob files the database does not know; with ``keys``, check every sealed database
    value decrypts."""
    report = FsckReport()
    if keys is not None:
        _check_sealed_values(db, keys, report)
    for blob in _all_blobs(db):
        result = verify_blob(store, blob.id, WrappedKey.from_bytes(blob.wrapped_key),
                             blob.sha256, blob.size)
        report.checked += 1
        if not result.ok:
            report.damaged.append((blob.id, result.reason or "damaged"))
    with db.read() as session:
        known = set(session.scalars(select(Blob.id)))
    report.orphans = sorted(set(store.iter_blob_ids()) - known)
    return report


def _check_sealed_values(db: Database, keys: KeySource, report: FsckReport,
                         batch: int = 500) -> None:
    for table_name, column_name, context in sealed_columns(Base.metadata):
        rows_table = table(table_name, column("id"), column(column_name))
        value_column = rows_table.c[column_name]
        last = ""
        while True:
            with db.read() as session:
                rows = session.execute(select(rows_table.c.id, value_column)
                                       .where(rows_table.c.id > last,
                                              value_column.is_not(None))
                                       .order_by(rows_table.c.id).limit(batch)).all()
            if not rows:
                break
            for row_id, value in rows:
                report.values_checked += 1
                try:
                    keys.open_field(str(value), context)
                except StorageError as exc:
                    report.damaged_values.append((context, str(row_id), str(exc)))
            last = rows[-1][0]


@dataclass(frozen=True)
class _BlobRow:
    id: str
    wrapped_key: bytes
    sha256: str
    size: int


def _all_blobs(db: Database, batch: int = 500) -> Iterator[_BlobRow]:
    """Every blob row, in batches of short read transactions (a check of a large store must
    not hold one read snapshot for hours). Plain values, not ORM objects: the session that
    loaded them is closed, and its rollback expires every instance it handed out."""
    last = ""
    while True:
        with db.read() as session:
            rows = [_BlobRow(r.id, bytes(r.wrapped_key), r.sha256, r.size)
                    for r in session.execute(select(Blob.id, Blob.wrapped_key, Blob.sha256,
                                                    Blob.size)
                                             .where(Blob.id > last).order_by(Blob.id)
                                             .limit(batch))]
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def run_once(db: Database, settings: Settings, store: LocalBlobStore) -> None:
    purged = purge_expired_trash(db, settings)
    thinned = thin_versions(db) if settings.version_retention else 0
    orphans, temps = collect_garbage(db, store)
    with db.write() as session:
        # Expired e-mail links (verification, reset, invitation) are refused anyway.
        account_links.purge_expired(session)
        audit.expire(session, settings.audit_days)
    if purged or thinned or orphans or temps:
        log.info("maintenance: purged %d, thinned %d versions, removed %d orphan blobs and %d "
                 "temp files", purged, thinned, orphans, temps)
