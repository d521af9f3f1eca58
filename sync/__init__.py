"""Plein live co-editing: the y-websocket protocol, rooms, durable CRDT persistence.

Public face (everything else is an implementation detail)::

    RoomManager(store, limits[, storage_guard=])  async context manager / start() + stop()
        .serve(transport, document_id, permission, conn_key[, identity]) -> close code
        .set_permission(document_id, conn_key, permission) -> int
        .revoke(document_id, conn_key[, code, reason]) -> int
        .close_document(document_id) -> bool
        .initialize(document_id, updates) -> bool
        .snapshot_state(document_id) -> bytes
        .apply_update(document_id, update) -> None
    Permission (EDIT, READ), SyncLimits, Identity (who a connection speaks for),
    StorageGuard (the app's quota hook)
    Transport (protocol: send / recv / close), CloseCode, memory_transport_pair
    DocumentStore / DocumentHandle (protocols), FileDocumentStore, stored_bytes,
    validate_document_id
    render_html / render_markdown / render_text  (note -> output; MAX_DEPTH levels as
    structure, deeper content flattened to text)
    markdown_to_update / text_to_update / restore_update  (input -> CRDT operations)
    protocol: the message codec (``sync.protocol``), for clients and tests
    errors: SyncError and subclasses (see ``sync.errors``)

Depends on ``storage`` (encrypted logs and snapshot blobs) and pycrdt; never on ``app``.
"""

from sync.awareness import Identity
from sync.compose import markdown_to_update, restore_update, text_to_update
from sync.errors import (
    ConnectionClosed,
    DocumentCorrupt,
    DocumentTooLarge,
    InvalidDocumentId,
    ProtocolError,
    RoomUnavailable,
    StorageFull,
    SyncError,
)
from sync.limits import StorageGuard, SyncLimits
from sync.manager import RoomManager
from sync.memory import MemoryTransport, memory_transport_pair
from sync.permission import Permission
from sync.render import MAX_DEPTH, render_html, render_markdown, render_text
from sync.store import (
    DocumentHandle,
    DocumentStore,
    FileDocumentStore,
    rewrap_manifests,
    stored_bytes,
    validate_document_id,
)
from sync.transport import CloseCode, Transport
from sync.urls import SAFE_URL_SCHEMES, safe_href, url_scheme

__all__ = [
    "MAX_DEPTH",
    "SAFE_URL_SCHEMES",
    "CloseCode",
    "ConnectionClosed",
    "DocumentCorrupt",
    "DocumentHandle",
    "DocumentStore",
    "DocumentTooLarge",
    "FileDocumentStore",
    "Identity",
    "InvalidDocumentId",
    "MemoryTransport",
    "Permission",
    "ProtocolError",
    "RoomManager",
    "RoomUnavailable",
    "StorageFull",
    "StorageGuard",
    "SyncError",
    "SyncLimits",
    "Transport",
    "markdown_to_update",
    "memory_transport_pair",
    "render_html",
    "render_markdown",
    "render_text",
    "restore_update",
    "rewrap_manifests",
    "safe_href",
    "stored_bytes",
    "text_to_update",
    "url_scheme",
    "validate_document_id",
]
