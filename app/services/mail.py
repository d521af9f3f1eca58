"""Outgoing e-mail over SMTP with the standard library (``PLEIN_SMTP_URL``).

Only ever called from a worker thread of the background mail task, never inside a request's
transaction: a slow or dead mail server must not hold a database lock or a request."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from urllib.parse import unquote, urlsplit

from app.settings import Settings

log = logging.getLogger("plein.mail")
TIMEOUT_SECONDS = 20
_DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str


def enabled(settings: Settings) -> bool:
    return bool(settings.smtp_url)


def sender(settings: Settings) -> str:
    if settings.mail_from:
        return settings.mail_from
    host = urlsplit(settings.resolved_base_url).hostname or "localhost"
    return formataddr(("Plein", f"plein@{host}"))


def _one_line(value: str) -> str:
    # Names and titles are single-line already; this keeps a header a header regardless.
    return " ".join(value.split())


def compose(settings: Settings, mail: Mail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender(settings)
    message["To"] = mail.to
    message["Subject"] = _one_line(mail.subject)
    message["Message-ID"] = make_msgid(domain="plein")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.text)
    return message


def send(settings: Settings, mails: list[Mail]) -> list[bool]:
    """Send over one connection; per message whether the server took it. Raises ``OSError``
    (``smtplib.SMTPException`` included) when the server cannot be reached at all."""
    if not mails:
        return []
    url = urlsplit(settings.smtp_url)
    host = url.hostname or "localhost"
    port = url.port or _DEFAULT_PORTS.get(url.scheme, 25)
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if url.scheme == "smtps":
        client = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT_SECONDS, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS)
    results: list[bool] = []
    with client:
        if url.scheme == "smtp+starttls":
            client.starttls(context=context)
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        for mail in mails:
            try:
                client.send_message(compose(settings, mail))
                results.append(True)
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError,
                    smtplib.SMTPSenderRefused) as exc:
                log.warning("mail to a recipient refused: %s", exc)
                results.append(False)
    return results
