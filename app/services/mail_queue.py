"""Account mail (verification, password reset, invitation links) sent after the request.

These messages carry single-use secrets, so they are not written to a database outbox (the
tokens are stored only as hashes): the request hands them over after its commit, and one
worker thread of their own sends them, so neither a slow mail server nor SMTP timing shows in
the answer (the password-reset form must not reveal whether an account exists)."""

from __future__ import annotations

import logging
import queue
import threading

from app.services import mail
from app.services.mail import Mail
from app.settings import Settings

log = logging.getLogger("plein.mail")
ATTEMPTS = 3


class MailQueue:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._queue: queue.Queue[list[Mail]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, mails: list[Mail]) -> None:
        if not mails or not mail.enabled(self.settings):
            return
        self._queue.put(list(mails))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="plein-account-mail",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            self._send(batch)

    def _send(self, batch: list[Mail]) -> None:
        for attempt in range(ATTEMPTS):
            try:
                mail.send(self.settings, batch)
                return
            except OSError as exc:
                # Never the message or its link in the log: it holds a secret.
                log.warning("account mail not sent (attempt %d of %d): %s", attempt + 1,
                            ATTEMPTS, type(exc).__name__)
                threading.Event().wait(2 ** attempt)
