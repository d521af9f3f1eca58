"""The key file a test database uses: sealed columns need keys attached to the engine
(app/models/sealed.py), exactly as ``plein serve`` attaches the installation's key file."""

from __future__ import annotations

from pathlib import Path

from storage import KeySource


def keys_in(directory: Path) -> KeySource:
    """``directory/keys.json``: the server's key file when it exists, a new one otherwise."""
    path = directory / "keys.json"
    return KeySource.load(path) if path.exists() else KeySource.create(path)
