"""Canary checks: which files under a data directory contain any of the given byte strings."""

from __future__ import annotations

from pathlib import Path


def files_containing(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files, f"nothing under {root}"
    for path in files:
        data = path.read_bytes()
        hits += [f"{path.relative_to(root)}: {n!r}" for n in needles if n in data]
    return hits
