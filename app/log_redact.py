"""Keep secrets out of every log line.

Sync clients put their credential in the WebSocket URL (``/sync/{id}?token=plein_...`` or
``?ticket=...``: browsers cannot set headers on a WebSocket), and uvicorn's access log and the
WebSocket library's debug log print request lines and headers as they come. The filter here
is installed on every handler ``plein serve`` configures (uvicorn's and the root logger's),
so whatever logger a record comes from and at whatever level, a secret is replaced by
``[redacted]`` before it is written: query values of names that carry secrets (``token``,
``ticket``, ``*_token`` such as reset and verification tokens, ``code``, ``key``,
``password``, ``secret``, ``signature``), long path segments after ``/reset``, ``/verify``,
``/confirm``, ``/invite(s)``, ``/invitations`` or ``/password`` (links sent by e-mail),
bearer tokens, the session cookie, and anything shaped like one of our tokens or tickets
wherever it appears.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"

_PATTERNS = (
    # ?token=...&ticket=... and friends, in URLs and request lines.
    re.compile(r"(?i)([?&;](?:[\w.-]*token|ticket|code|key|password|passwd|secret|signature"
               r"|sig|auth)=)[^&\s\"'#;]+"),
    re.compile(r"(?i)(bearer\s+)[\w.~+/=-]+"),
    re.compile(r"(?i)(plein_session=)[^;\s\"',]+"),
    # A secret as a path segment of a link sent by e-mail (reset, verification, invitation).
    re.compile(r"(?i)(/(?:reset|verify|verification|confirm|invitations?|invite|password)"
               r"(?:/[\w-]*?)*?/)[A-Za-z0-9_-]{16,}"),
    # Our own token and ticket shapes, wherever they appear (a pasted URL, an error text).
    re.compile(r"()plein_[A-Za-z0-9_-]{8,}_[A-Za-z0-9_-]{16,}"),
    re.compile(r"()plein-ticket_[A-Za-z0-9_-]{16,}"),
)


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def _redact_value(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Rewrites a record's message, arguments and traceback text; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            # Kept a tuple of the same length: uvicorn's access formatter unpacks it.
            record.args = tuple(_redact_value(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_value(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with the filter on each of its handlers."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    return config


def install_on_root() -> None:
    """The filter on every handler of the root logger (``logging.basicConfig``'s)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
