"""Write ``docs/configuration.md`` from the :class:`Settings` fields, so the operators' table
cannot fall behind the code (``python -m app.settings_doc``; a test checks it)."""

from __future__ import annotations

import dataclasses
import sys

from app.settings import Settings

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
"""


def _default(value: object) -> str:
    if value is None or value == "":
        return "(derived)"
    if isinstance(value, tuple):
        return ",".join(value) or "(none)"
    return str(value)


def render() -> str:
    rows = [f"| `PLEIN_{f.name.upper()}` | `{_default(f.default)}` | {f.metadata['doc']} |"
            for f in dataclasses.fields(Settings)]
    return HEADER + "\n".join(rows) + "\n" + FOOTER


if __name__ == "__main__":
    sys.stdout.write(render())
