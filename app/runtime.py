"""The runtime: the long-lived objects one application instance shares across requests (its
settings, database, key source, stores, live sync, mail and search machinery). Not to be
confused with ``app.services``, the business functions that requests call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.db import Database
from app.db_hooks import SessionHooks
from app.services.mail_queue import MailQueue
from app.services.passwords import Passwords
from app.settings import Settings

if TYPE_CHECKING:
    from app.http.search_gate import SearchGate
    from app.live import LiveSync
from indexer import SearchIndex
from storage import KeySource, LocalBlobStore


@dataclass
class Runtime:
    settings: Settings
    db: Database
    hooks: SessionHooks
    passwords: Passwords
    secret: bytes
    keys: KeySource
    blob_store: LocalBlobStore
    live: LiveSync
    search_index: SearchIndex
    mail_queue: MailQueue
    search_gate: SearchGate
