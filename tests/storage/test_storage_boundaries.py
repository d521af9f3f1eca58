"""Architecture rule for storage/: reads no environment (settings come from the app).

What storage/ may import is an import-linter contract in pyproject.toml (scripts/lint)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STORAGE = Path(__file__).resolve().parents[2] / "storage"
SOURCES = sorted(STORAGE.rglob("*.py"))


def test_sources_found() -> None:
    assert len(SOURCES) >= 5


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_environment(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            names = {a.name for a in node.names}
            assert not names & {"environ", "environb", "getenv", "fsync", "write"}, names
        elif isinstance(node, ast.Attribute):
            assert node.attr not in {"environ", "environb", "getenv", "getenvb"}, node.attr
