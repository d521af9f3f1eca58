"""Write ``docs/configuration.md`` from the :class:`Settings` fields and their descriptions,
so the operators' table cannot fall behind the code (``python -m app.settings_doc``; a test
checks it)."""

from __future__ import annotations

import sys

from app.settings import ENV_PREFIX, Settings

HEADER = """# Configuration

Plein reads its settings in one place (`app/settings.py`) from `PLEIN_*` environment variables;
`plein serve` flags (`--data-dir`, `--host`, `--port`) override them. Every setting has a default
that makes a first run work: `plein serve` on an empty directory creates the data directory, the
SQLite database, the session secret and the key file.

This page is generated: `python -m app.settings_doc > docs/configuration.md`.

| variable | default | meaning |
|---|---|---|
"""

FOOTER = """
Booleans accept `1/0`, `true/false`, `yes/no`, `on/off`. Lists are comma separated.

## Behind a reverse proxy

Terminate TLS at the proxy, set `PLEIN_BASE_URL=https://plein.example.nl` (cookies then get the
`Secure` flag) and start with `plein serve --proxy-headers` so client addresses (used by sign-in
throttling) come from `X-Forwarded-For`. Only do that when the proxy is the sole way in.

## E-mail: proven addresses, password reset, invitations

With `PLEIN_SMTP_URL` set (and `PLEIN_REQUIRE_EMAIL_VERIFICATION` at `auto` or `on`), a new
account must open the link mailed to its address before it can sign in: signing in with the
right password but an unproven address answers 403 `email_unverified`, and the sign-in page
offers to send the link again (`POST /api/v1/email-verification/resend`). The first account and
accounts made with `plein createuser` count as verified; so do site administrators of an
existing installation (migration 0006). Other existing accounts prove their address once, at
their next sign-in, when mail is turned on.

Registration then answers `202 {"status": "verification_sent"}` whether or not the address
already has an account, and the existing owner gets a mail instead ("someone tried to register
with your address"), so the form tells nobody which addresses are known. Without verification
(no mail, or `off`) a new account is usable at once, so a taken address has to be refused
(`409 email_taken`): that mode reveals which addresses have accounts.

"Forgot your password?" (`POST /api/v1/password-reset`) always answers 202 the same way; the
link works once, for `PLEIN_PASSWORD_RESET_MINUTES`, sets the password, ends every session of
the account and counts as proof of the address. Its tokens (like verification and invitation
tokens) are stored only as SHA-256 hashes and mails leave after the answer, from a thread of
their own.

Inviting an address without an account mails it an invitation link (valid
`PLEIN_INVITATION_DAYS`). Following it while signed in, with any account, accepts the
invitation: the link proves that its holder reads mail at the invited address (and, if the
account has that address, the address counts as verified). Registering with an invited address
claims nothing; verifying it does. Without mail no address can be proven: an invitation then
waits until a manager adds the person's account by hand. Adding an existing account is
immediate (the manager chose that account) unless verification is required and the account's
address is not proven yet: then it is invited like a newcomer.
"""


def _default(value: object) -> str:
    if value is None or value == "":
        return "(derived)"
    if isinstance(value, tuple):
        return ",".join(value) or "(none)"
    return str(value)


def render() -> str:
    rows = [f"| `{ENV_PREFIX}{name.upper()}` | `{_default(field.default)}` | {field.description} |"
            for name, field in Settings.model_fields.items()]
    return HEADER + "\n".join(rows) + "\n" + FOOTER


if __name__ == "__main__":
    sys.stdout.write(render())
