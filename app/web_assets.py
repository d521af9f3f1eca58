"""Where the browser's files are: ``web/`` beside ``app/`` in a checkout, or ``plein_web`` beside
``app/`` in an installed wheel (``pip install .`` copies web/templates and web/static there; the
editor's sources and node_modules stay out, see setup.py)."""

from __future__ import annotations

from pathlib import Path


def web_dir() -> Path:
    root = Path(__file__).resolve().parent.parent
    for candidate in (root / "web", root / "plein_web"):
        if (candidate / "templates").is_dir():
            return candidate
    raise RuntimeError("Plein's web files are missing: reinstall the package or run from a "
                       "checkout (scripts/setup builds the editor bundle)")
