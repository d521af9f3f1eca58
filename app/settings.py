"""Typed settings, read in one place from ``PLEIN_*`` environment variables (and CLI flags).

Nothing else in the code base reads ``os.environ``: tests and the CLI build a :class:`Settings`
and hand it to :func:`app.create_app`. Parsing is pydantic-settings'; the rules below only say
what pydantic cannot know, in the words an operator sees (a :class:`ConfigurationError` at start).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from app.errors import ConfigurationError
from sync import SyncLimits
from sync.render import MAX_DEPTH as NOTE_MAX_DEPTH
from sync.render import MAX_DEPTH_LIMIT as NOTE_DEPTH_LIMIT
from sync.render import MIN_DEPTH as NOTE_MIN_DEPTH

ENV_PREFIX = "PLEIN_"
SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")
ARGON2_MIN_MEMORY_KIB = 19 * 1024
ARGON2_MIN_TIME_COST = 2

# The error type of the rules below: its message follows the variable's name as it stands.
RULE = "plein_setting"


def _rule(message: str, holds: Callable[[Any], bool]) -> AfterValidator:
    def check(value: Any) -> Any:
        if not holds(value):
            raise PydanticCustomError(RULE, message)
        return value

    return AfterValidator(check)


def _flag(raw: object) -> object:
    """Booleans as operators write them; stricter than pydantic's (no t/f/y/n), spaces allowed."""
    if not isinstance(raw, str):
        return raw
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise PydanticCustomError(RULE, "is not a boolean: {raw}", {"raw": repr(raw)})


def _origins(raw: object) -> object:
    if not isinstance(raw, str):
        return raw
    return tuple(part.strip().rstrip("/") for part in raw.split(",") if part.strip())


Positive = Annotated[int, _rule("must be positive", lambda value: value > 0)]
NonNegative = Annotated[int, _rule("must not be negative", lambda value: value >= 0)]
NoteDepth = Annotated[int, _rule(
    f"must be between {NOTE_MIN_DEPTH} and {NOTE_DEPTH_LIMIT}",
    lambda value: NOTE_MIN_DEPTH <= value <= NOTE_DEPTH_LIMIT,
)]
Flag = Annotated[bool, BeforeValidator(_flag)]
# Comma separated, not JSON (NoDecode): "https://a.example, https://b.example/".
Origins = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_origins)]
SmtpUrl = Annotated[str, _rule(
    "must start with smtp://, smtp+starttls:// or smtps://",
    lambda value: not value or value.split("://", 1)[0] in SMTP_SCHEMES,
)]


class Settings(BaseSettings):
    """Every setting Plein has; each field's description is what ``docs/configuration.md`` lists."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True)

    data_dir: Path = Field(
        default=Path("./plein-data"),
        description="Directory for the database, key file, blobs and index (created on first run).",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite at DATA_DIR/plein.sqlite3.",
    )
    key_file: Path | None = Field(
        default=None,
        description="Key-encryption key file (mode 0600); default DATA_DIR/keys.json.",
    )
    secret_file: Path | None = Field(
        default=None,
        description="Random secret for CSRF tokens; default DATA_DIR/secret "
        "(created on first run).",
    )
    host: str = Field(default="127.0.0.1", description="Address `plein serve` listens on.")
    port: Positive = Field(default=8000, description="Port `plein serve` listens on.")
    base_url: str = Field(
        default="",
        description="Public URL (e.g. https://plein.example.nl); empty means http://HOST:PORT.",
    )
    allowed_origins: Origins = Field(
        default=(),
        description="Extra origins (comma separated) allowed for WebSockets and cookie requests.",
    )
    open_registration: Flag = Field(
        default=True,
        description="Whether anyone may create an account (the first user may always).",
    )
    secure_cookies: Flag | None = Field(
        default=None,
        description="Force the Secure cookie flag; default: on when BASE_URL is https.",
    )
    session_days: int = Field(default=14, description="Days a session lives without use.")
    max_upload_bytes: Positive = Field(
        default=1024 * 1024 * 1024,
        description="Largest accepted upload in bytes (413 above).",
    )
    max_json_bytes: Positive = Field(
        default=256 * 1024, description="Largest accepted JSON or form request body in bytes.",
    )
    audit_days: Positive = Field(
        default=365, description="Days the audit log keeps an entry (plein maintenance "
                                 "forgets older ones).",
    )
    audit_download_minutes: NonNegative = Field(
        default=60, description="The audit log records a person's download of a document "
                                "version once in this many minutes (0: every download, "
                                "including each part of a ranged one).",
    )
    audit_csv_rows: Positive = Field(
        default=100_000, description="Most audit entries one CSV download of the audit log "
                                     "holds (the newest that match its filters).",
    )
    require_totp_for_admins: bool = Field(
        default=False,
        description="Site administrators must use two-step sign-in (TOTP): without it they "
                    "have no operator rights until they turn it on.",
    )
    import_max_bytes: Positive = Field(
        default=64 * 1024 * 1024 * 1024,
        description="Largest total size, unpacked, of a group archive to import (zip bombs "
                    "are refused before anything is written).",
    )
    import_max_entries: Positive = Field(
        default=200_000, description="Most files a group archive to import may hold.",
    )
    import_max_ratio: Positive = Field(
        default=200,
        description="Highest unpacked/packed size ratio of one entry of an imported archive "
                    "(entries over 1 MiB; higher is treated as a zip bomb).",
    )
    import_max_manifest_bytes: Positive = Field(
        default=256 * 1024 * 1024,
        description="Largest manifest.json of an imported archive, in bytes.",
    )
    login_free_failures: int = Field(
        default=3, description="Failed sign-ins allowed before delays start.",
    )
    login_max_delay_seconds: int = Field(
        default=900, description="Cap on the growing delay after failed sign-ins.",
    )
    argon2_memory_kib: int = Field(
        default=19 * 1024, description="argon2id memory cost in KiB (at least 19456).",
    )
    argon2_time_cost: int = Field(default=2, description="argon2id iterations (at least 2).")
    default_language: Literal["nl", "en"] = Field(
        default="nl", description="UI language: nl or en."
    )
    page_size: Positive = Field(
        default=50,
        description="Default `limit` of the API's list endpoints (groups, comments, activity, "
        "notifications).",
    )
    max_page_size: Positive = Field(
        default=500, description="Largest `limit` a client may ask of those endpoints (400 above).",
    )
    group_quota_bytes: int = Field(
        default=10 * 1024 * 1024 * 1024,
        description="Bytes of stored files (all versions) a group may use; 0 = no limit.",
    )
    trash_days: int = Field(
        default=30, description="Days an item stays in the trash before it is purged.",
    )
    version_retention: Flag = Field(
        default=True,
        description="Thin old file versions: keep all for a day, hourly for a week, daily for "
        "30 days, weekly after; labelled and current versions are always kept.",
    )
    maintenance_interval_seconds: Positive = Field(
        default=3600, description="How often trash purge and version thinning run.",
    )
    sync_max_message_bytes: int = Field(
        default=1024 * 1024, description="Largest live-sync WebSocket message in bytes.",
    )
    sync_max_document_bytes: int = Field(
        default=16 * 1024 * 1024, description="Largest encoded state of one note in bytes.",
    )
    sync_messages_per_second: int = Field(
        default=200, description="Sustained live-sync messages per second per connection.",
    )
    sync_queue_messages: int = Field(
        default=1024,
        description="Outbound messages queued per connection before a slow reader is disconnected.",
    )
    sync_awareness_per_second: Positive = Field(
        default=20,
        description="Live-sync presence (awareness) messages per second per connection.",
    )
    sync_ticket_seconds: Positive = Field(
        default=60,
        description="How long a single-use live-sync ticket may wait to be used.",
    )
    live_check_seconds: Positive = Field(
        default=10,
        description="How often open live channels re-check that their credential and access "
        "still hold (a safety net: sign-out, password change and revocation act at once).",
    )
    note_snapshot_minutes: int = Field(
        default=10,
        description="Automatic note versions: at most one per this many minutes, taken "
        "after a pause in editing.",
    )
    note_snapshot_pause_seconds: int = Field(
        default=60, description="Quiet time after which an automatic note version is taken.",
    )
    indexer: Literal["inprocess", "external"] = Field(
        default="inprocess",
        description="inprocess: the server runs the indexing worker; external: run "
        "`plein indexer` as its own process (one writer either way).",
    )
    index_batch_size: Positive = Field(
        default=200,
        description="Index tasks the indexing worker takes per round; one index commit (one "
        "new encrypted segment) per round.",
    )
    index_batch_ms: Positive = Field(
        default=1000,
        description="A round stops taking documents after this many milliseconds and "
        "commits what it has, so a burst does not hold back the documents already done.",
    )
    index_poll_ms: Positive = Field(
        default=200,
        description="How often the idle indexing worker looks for new index tasks.",
    )
    extract_workers: Positive = Field(
        default=2,
        description="Long-lived text-extraction worker processes (each resource-limited); "
        "also how many files are extracted at once. One per core.",
    )
    extract_worker_jobs: Positive = Field(
        default=200,
        description="An extraction worker is replaced by a fresh process after this many "
        "files (and at once after any limit is hit).",
    )
    index_max_file_bytes: int = Field(
        default=64 * 1024 * 1024,
        description="Files larger than this are found by name and metadata only.",
    )
    search_threads: Positive = Field(
        default=4,
        description="Worker threads reserved for searches (their own pool: a burst of searches "
        "never holds the threads other requests and live editing use).",
    )
    search_per_person: Positive = Field(
        default=4,
        description="Searches one person may have running or waiting at once (429 above).",
    )
    log_level: str = Field(
        default="info", description="Log level: debug, info, warning, error.",
    )
    comment_max_chars: Positive = Field(
        default=10_000, description="Longest accepted comment body in characters (400 above).",
    )
    comments_per_minute: NonNegative = Field(
        default=20,
        description="Comments one person may post per minute (429 above); 0 = no limit.",
    )
    smtp_url: SmtpUrl = Field(
        default="",
        description="Outgoing mail server for notification e-mail: smtp://[user:pass@]host:port "
        "(plain), smtp+starttls://... or smtps://... (TLS); empty = no e-mail.",
    )
    mail_from: str = Field(
        default="",
        description="From address of notification e-mail; empty = plein@ the BASE_URL host.",
    )
    mail_interval_seconds: Positive = Field(
        default=30,
        description="How often immediate notification e-mail and due daily digests are sent.",
    )
    note_max_depth: NoteDepth = Field(
        default=NOTE_MAX_DEPTH,
        description=f"Levels of nesting (quotes, lists) a note shows as structure "
        f"({NOTE_MIN_DEPTH}-{NOTE_DEPTH_LIMIT}); deeper content is shown as plain text, and "
        "Markdown imports nest at most min(this, 20) levels.",
    )
    upload_idle_seconds: Positive = Field(
        default=60,
        description="An upload or request body that sends nothing for this many seconds is "
        "ended with 408 and its partial file removed.",
    )

    require_email_verification: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Whether a new account must prove its e-mail address (by a link sent to it) "
        "before it can sign in: auto (when SMTP_URL is set), on or off. The first account "
        "and accounts made with `plein createuser` count as verified.",
    )
    email_verification_hours: Positive = Field(
        default=48, description="Hours an e-mail verification link stays valid.",
    )
    oidc_issuer: str = Field(
        default="",
        description="Single sign-on: the OpenID Connect provider's issuer URL (its discovery "
                    "document is ISSUER/.well-known/openid-configuration); empty = off.",
    )
    oidc_client_id: str = Field(default="", description="Single sign-on: Plein's client id "
                                "at the provider.")
    oidc_client_secret: str = Field(default="", description="Single sign-on: Plein's client "
                                    "secret at the provider.")
    oidc_scopes: str = Field(default="openid email profile",
                             description="Single sign-on: the scopes asked for.")
    oidc_timeout_seconds: Positive = Field(
        default=10, description="Single sign-on: how long to wait for the provider.",
    )
    password_reset_minutes: Positive = Field(
        default=60, description="Minutes a password reset link stays valid.",
    )
    invitation_days: Positive = Field(
        default=14, description="Days an invitation link sent by e-mail stays valid.",
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
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

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

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if (self.argon2_memory_kib < ARGON2_MIN_MEMORY_KIB
                or self.argon2_time_cost < ARGON2_MIN_TIME_COST):
            raise PydanticCustomError(
                RULE, "argon2id needs at least m=19456 KiB and t=2 (OWASP minimum)")
        if self.page_size > self.max_page_size:
            raise PydanticCustomError(
                RULE, "PLEIN_PAGE_SIZE must not be larger than PLEIN_MAX_PAGE_SIZE")
        if self.require_email_verification == "on" and not self.smtp_url:
            # Nobody could ever prove an address: every new account would be locked out.
            raise PydanticCustomError(
                RULE, "PLEIN_REQUIRE_EMAIL_VERIFICATION=on needs PLEIN_SMTP_URL")
        return self

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigurationError(_explain(exc)) from exc

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # ``Settings(...)`` takes only what it is given: the environment is read by from_env,
        # so a test's settings never pick up a developer's PLEIN_* variables.
        return (init_settings,)

    def replace(self, **changes: Any) -> Settings:
        return type(self)(**{**dict(self), **changes})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``PLEIN_*`` variables; explicit ``overrides`` (CLI flags) win."""
        found = _Environ(cls, os.environ if environ is None else environ)()
        return cls(**{**found, **{k: v for k, v in overrides.items() if v is not None}})


class _Environ(EnvSettingsSource):
    """The ``PLEIN_*`` variables of one mapping: ``os.environ``, or a test's dict."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)


def _explain(exc: ValidationError) -> str:
    """One line per bad variable, named as the operator set it."""
    lines: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        if name in lines:  # a union (``bool | None``) reports each member; the first says it
            continue
        variable = ENV_PREFIX + name.upper() if name else ""
        if error["type"] == RULE:
            lines[name] = f"{variable} {error['msg']}".strip()
        elif error["type"] == "literal_error":
            *first, last = get_args(Settings.model_fields[name].annotation)
            lines[name] = f"{variable} must be {', '.join(first)} or {last}"
        else:
            lines[name] = f"{variable}: {error['msg']}"
    return "; ".join(lines.values())
