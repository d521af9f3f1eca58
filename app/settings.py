"""Typed settings, read in one place from ``PLEIN_*`` environment variables (and CLI flags).

Nothing else in the code base reads ``os.environ``: tests and the CLI build a :class:`Settings`
and hand it to :func:`app.create_app`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from app.errors import ConfigurationError
from sync import SyncLimits
from sync.render import MAX_DEPTH as NOTE_MAX_DEPTH
from sync.render import MAX_DEPTH_LIMIT as NOTE_DEPTH_LIMIT
from sync.render import MIN_DEPTH as NOTE_MIN_DEPTH

ENV_PREFIX = "PLEIN_"
SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")


@dataclass(frozen=True)
class Settings:
    """Every setting Plein has; each field's ``doc`` is what ``docs/configuration.md`` lists."""

    data_dir: Path = field(
        default=Path("./plein-data"),
        metadata={
            "doc": "Directory for the database, key file, blobs and index (created on first run)."
        },
    )
    database_url: str = field(
        default="",
        metadata={"doc": "SQLAlchemy URL; empty means SQLite at DATA_DIR/plein.sqlite3."},
    )
    key_file: Path | None = field(
        default=None,
        metadata={"doc": "Key-encryption key file (mode 0600); default DATA_DIR/keys.json."},
    )
    secret_file: Path | None = field(
        default=None,
        metadata={
            "doc": "Random secret for CSRF tokens; default DATA_DIR/secret (created on first run)."
        },
    )
    host: str = field(default="127.0.0.1", metadata={"doc": "Address `plein serve` listens on."})
    port: int = field(default=8000, metadata={"doc": "Port `plein serve` listens on."})
    base_url: str = field(
        default="",
        metadata={
            "doc": "Public URL (e.g. https://plein.example.nl); empty means http://HOST:PORT."
        },
    )
    allowed_origins: tuple[str, ...] = field(
        default=(),
        metadata={
            "doc": "Extra origins (comma separated) allowed for WebSockets and cookie requests."
        },
    )
    open_registration: bool = field(
        default=True,
        metadata={"doc": "Whether anyone may create an account (the first user may always)."},
    )
    secure_cookies: bool | None = field(
        default=None,
        metadata={"doc": "Force the Secure cookie flag; default: on when BASE_URL is https."},
    )
    session_days: int = field(default=14, metadata={"doc": "Days a session lives without use."})
    max_upload_bytes: int = field(
        default=1024 * 1024 * 1024,
        metadata={"doc": "Largest accepted upload in bytes (413 above)."},
    )
    max_json_bytes: int = field(
        default=256 * 1024, metadata={"doc": "Largest accepted JSON or form request body in bytes."}
    )
    login_free_failures: int = field(
        default=3, metadata={"doc": "Failed sign-ins allowed before delays start."}
    )
    login_max_delay_seconds: int = field(
        default=900, metadata={"doc": "Cap on the growing delay after failed sign-ins."}
    )
    argon2_memory_kib: int = field(
        default=19 * 1024, metadata={"doc": "argon2id memory cost in KiB (at least 19456)."}
    )
    argon2_time_cost: int = field(default=2, metadata={"doc": "argon2id iterations (at least 2)."})
    default_language: str = field(default="nl", metadata={"doc": "UI language: nl or en."})
    page_size: int = field(default=50, metadata={"doc": "Default page size of list endpoints."})
    max_page_size: int = field(default=500, metadata={"doc": "Largest page size a client may ask."})
    group_quota_bytes: int = field(
        default=10 * 1024 * 1024 * 1024,
        metadata={"doc": "Bytes of stored files (all versions) a group may use; 0 = no limit."},
    )
    trash_days: int = field(
        default=30, metadata={"doc": "Days an item stays in the trash before it is purged."}
    )
    version_retention: bool = field(
        default=True,
        metadata={
            "doc": "Thin old file versions: keep all for a day, hourly for a week, daily for "
            "30 days, weekly after; labelled and current versions are always kept."
        },
    )
    maintenance_interval_seconds: int = field(
        default=3600, metadata={"doc": "How often trash purge and version thinning run."}
    )
    sync_max_message_bytes: int = field(
        default=1024 * 1024, metadata={"doc": "Largest live-sync WebSocket message in bytes."}
    )
    sync_max_document_bytes: int = field(
        default=16 * 1024 * 1024, metadata={"doc": "Largest encoded state of one note in bytes."}
    )
    sync_messages_per_second: int = field(
        default=200, metadata={"doc": "Sustained live-sync messages per second per connection."}
    )
    sync_queue_messages: int = field(
        default=1024,
        metadata={
            "doc": "Outbound messages queued per connection before a slow reader is disconnected."
        },
    )
    sync_awareness_per_second: int = field(
        default=20,
        metadata={"doc": "Live-sync presence (awareness) messages per second per connection."},
    )
    sync_ticket_seconds: int = field(
        default=60,
        metadata={"doc": "How long a single-use live-sync ticket may wait to be used."},
    )
    live_check_seconds: int = field(
        default=10,
        metadata={
            "doc": "How often open live channels re-check that their credential and access "
            "still hold (a safety net: sign-out, password change and revocation act at once)."
        },
    )
    note_snapshot_minutes: int = field(
        default=10,
        metadata={
            "doc": "Automatic note versions: at most one per this many minutes, taken "
            "after a pause in editing."
        },
    )
    note_snapshot_pause_seconds: int = field(
        default=60, metadata={"doc": "Quiet time after which an automatic note version is taken."}
    )
    indexer: str = field(
        default="inprocess",
        metadata={
            "doc": "inprocess: the server runs the indexing worker; external: run "
            "`plein indexer` as its own process (one writer either way)."
        },
    )
    index_max_file_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata={"doc": "Files larger than this are found by name and metadata only."},
    )
    search_threads: int = field(
        default=4,
        metadata={
            "doc": "Worker threads reserved for searches (their own pool: a burst of searches "
            "never holds the threads other requests and live editing use)."
        },
    )
    search_per_person: int = field(
        default=4,
        metadata={"doc": "Searches one person may have running or waiting at once (429 above)."},
    )
    log_level: str = field(
        default="info", metadata={"doc": "Log level: debug, info, warning, error."}
    )
    comment_max_chars: int = field(
        default=10_000, metadata={"doc": "Longest accepted comment body in characters (400 above)."}
    )
    comments_per_minute: int = field(
        default=20,
        metadata={"doc": "Comments one person may post per minute (429 above); 0 = no limit."},
    )
    smtp_url: str = field(
        default="",
        metadata={
            "doc": "Outgoing mail server for notification e-mail: smtp://[user:pass@]host:port "
            "(plain), smtp+starttls://... or smtps://... (TLS); empty = no e-mail."
        },
    )
    mail_from: str = field(
        default="",
        metadata={"doc": "From address of notification e-mail; empty = plein@ the BASE_URL host."},
    )
    mail_interval_seconds: int = field(
        default=30,
        metadata={"doc": "How often immediate notification e-mail and due daily digests are sent."},
    )
    note_max_depth: int = field(
        default=NOTE_MAX_DEPTH,
        metadata={
            "doc": f"Levels of nesting (quotes, lists) a note shows as structure "
            f"({NOTE_MIN_DEPTH}-{NOTE_DEPTH_LIMIT}); deeper content is shown as plain text, and "
            "Markdown imports nest at most min(this, 20) levels."
        },
    )
    upload_idle_seconds: int = field(
        default=60,
        metadata={
            "doc": "An upload or request body that sends nothing for this many seconds is "
            "ended with 408 and its partial file removed."
        },
    )

    require_email_verification: str = field(
        default="auto",
        metadata={
            "doc": "Whether a new account must prove its e-mail address (by a link sent to it) "
            "before it can sign in: auto (when SMTP_URL is set), on or off. The first account "
            "and accounts made with `plein createuser` count as verified."
        },
    )
    email_verification_hours: int = field(
        default=48, metadata={"doc": "Hours an e-mail verification link stays valid."}
    )
    password_reset_minutes: int = field(
        default=60, metadata={"doc": "Minutes a password reset link stays valid."}
    )
    invitation_days: int = field(
        default=14, metadata={"doc": "Days an invitation link sent by e-mail stays valid."}
    )

    @property
    def email_verification_required(self) -> bool:
        if self.require_email_verification == "auto":
            return bool(self.smtp_url)
        return self.require_email_verification == "on"

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or self.data_dir / "keys.json"

    @property
    def resolved_secret_file(self) -> Path:
        return self.secret_file or self.data_dir / "secret"

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'plein.sqlite3').resolve()}"

    @property
    def resolved_base_url(self) -> str:
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.resolved_base_url.startswith("https://")

    def sync_limits(self) -> SyncLimits:
        return SyncLimits(
            max_message_bytes=self.sync_max_message_bytes,
            max_document_bytes=self.sync_max_document_bytes,
            max_messages_per_second=float(self.sync_messages_per_second),
            max_queued_messages=self.sync_queue_messages,
            max_awareness_per_second=float(self.sync_awareness_per_second),
        )

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``PLEIN_*`` variables; explicit ``overrides`` (CLI flags) win."""
        env = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _parse(f.name, hints[f.name], raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.indexer not in ("inprocess", "external"):
            raise ConfigurationError("PLEIN_INDEXER must be inprocess or external")
        if self.default_language not in ("nl", "en"):
            raise ConfigurationError("PLEIN_DEFAULT_LANGUAGE must be nl or en")
        if self.argon2_memory_kib < 19 * 1024 or self.argon2_time_cost < 2:
            raise ConfigurationError("argon2id needs at least m=19456 KiB and t=2 (OWASP minimum)")
        for name in (
            "max_upload_bytes",
            "max_json_bytes",
            "page_size",
            "max_page_size",
            "port",
            "maintenance_interval_seconds",
            "comment_max_chars",
            "mail_interval_seconds",
            "email_verification_hours",
            "password_reset_minutes",
            "invitation_days",
            "sync_awareness_per_second",
            "sync_ticket_seconds",
            "live_check_seconds",
            "search_threads",
            "search_per_person",
            "upload_idle_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"PLEIN_{name.upper()} must be positive")
        if not NOTE_MIN_DEPTH <= self.note_max_depth <= NOTE_DEPTH_LIMIT:
            raise ConfigurationError(f"PLEIN_NOTE_MAX_DEPTH must be between {NOTE_MIN_DEPTH} "
                                     f"and {NOTE_DEPTH_LIMIT}")
        if self.comments_per_minute < 0:
            raise ConfigurationError("PLEIN_COMMENTS_PER_MINUTE must not be negative")
        if self.require_email_verification not in ("auto", "on", "off"):
            raise ConfigurationError("PLEIN_REQUIRE_EMAIL_VERIFICATION must be auto, on or off")
        if self.require_email_verification == "on" and not self.smtp_url:
            # Nobody could ever prove an address: every new account would be locked out.
            raise ConfigurationError("PLEIN_REQUIRE_EMAIL_VERIFICATION=on needs PLEIN_SMTP_URL")
        if self.smtp_url and self.smtp_url.split("://", 1)[0] not in SMTP_SCHEMES:
            raise ConfigurationError(
                "PLEIN_SMTP_URL must start with smtp://, smtp+starttls:// or smtps://"
            )


def _parse(name: str, hint: Any, raw: str) -> Any:
    text = str(hint)
    try:
        if hint is bool or text == "bool | None":
            return _parse_bool(raw)
        if hint is int:
            return int(raw)
        if "Path" in text:
            return Path(raw)
        if "tuple" in text:
            return tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())
        return raw
    except ValueError as exc:
        raise ConfigurationError(f"PLEIN_{name.upper()}: {exc}") from exc


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {raw!r}")
