"""A real SMTP server on loopback (aiosmtpd) that keeps what Plein sends, and helpers to find
a message and the link in it (the tests follow links the way a person would)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
import sqlite3
import threading
import time
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.live import free_port


class MailSink:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self._lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for rcpt, m in self.messages if address.lower() in rcpt]

    def wait_for(self, address: str, subject: str, count: int = 1,
                 timeout: float = 30.0) -> EmailMessage:
        """The ``count``-th message to ``address`` whose subject contains ``subject``."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.to(address) if subject in str(m["Subject"])]
            if len(found) >= count:
                return found[count - 1]
            subjects = [str(m["Subject"]) for m in self.to(address)]
            assert time.monotonic() < deadline, f"no mail {subject!r} #{count}: {subjects}"
            time.sleep(0.05)  # polling for a condition, not a fixed wait


def body_of(message: EmailMessage) -> str:
    return str(message.get_content())


def token_in(message: EmailMessage, path: str) -> str:
    """The ``token`` of the link to ``path`` in the message."""
    found = re.search(re.escape(path) + r"\?token=([A-Za-z0-9_%\-]+)", body_of(message))
    assert found, body_of(message)
    return unquote(found.group(1))


def expire_token(data_dir: Path, token: str) -> None:
    """Age a mailed token past its expiry, as time would (the table stores only its hash)."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    with sqlite3.connect(data_dir / "plein.sqlite3") as db:
        changed = db.execute("update account_tokens set expires_at = '2000-01-01 00:00:00.000000'"
                             " where token_hash = ?", (digest,)).rowcount
    assert changed == 1
