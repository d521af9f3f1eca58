"""The group archive's fixed names and the rules for paths inside it (docs/export-format.md).

Shared by export (which makes names) and import (which refuses names it would not make: an
archive is untrusted input, and a name like ``../../x`` or ``/etc/x`` must never be followed).
"""

from __future__ import annotations

import re

FORMAT = "plein-group-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CONTENT = "content"

_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_MAX_SEGMENT = 120


def safe_segment(name: str) -> str:
    """A file or folder name as one path segment every common file system accepts: no
    separators, control or reserved characters, no leading dots (hidden files, ``..``)."""
    cleaned = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    return cleaned[:_MAX_SEGMENT].rstrip(" .") or "_"


class NameBook:
    """Unique names within one folder, case-insensitively (Windows and macOS fold case):
    the second "Report" becomes "Report (2)"."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, name: str) -> str:
        base = safe_segment(name)
        candidate, n = base, 1
        while candidate.lower() in self._taken:
            n += 1
            candidate = f"{base} ({n})"
        self._taken.add(candidate.lower())
        return candidate


def is_safe_member_name(name: str) -> bool:
    """Whether a zip entry name is a plain relative path with nothing that climbs out."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return False
    if re.match(r"^[A-Za-z]:", name):
        return False
    parts = name.rstrip("/").split("/")
    return all(part not in ("", ".", "..") for part in parts)
