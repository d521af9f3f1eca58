"""Canary checks: which files under a data directory contain any of the given byte strings."""

from __future__ import annotations

from pathlib import Path


def files_containing(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files, f"nothing under {root}"
    for path in files:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            # A writer's temporary file (the index's, say) renamed or removed between listing
            # and reading: gone is not at rest, and what it became is in the listing or the
            # caller's next scan.
            continue
        hits += [f"{path.relative_to(root)}: {n!r}" for n in needles if n in data]
    return hits
