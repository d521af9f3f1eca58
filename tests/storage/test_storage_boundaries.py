"""Architecture rules for storage/: imports nothing of ours above it, reads no env."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STORAGE = Path(__file__).resolve().parents[2] / "storage"
SOURCES = sorted(STORAGE.rglob("*.py"))
FORBIDDEN_PACKAGES = {"app", "sync", "indexer"}


def test_sources_found() -> None:
    assert len(SOURCES) >= 5


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_forbidden_imports_and_no_environment(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                assert alias.name.split(".")[0] not in FORBIDDEN_PACKAGES, alias.name
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] not in FORBIDDEN_PACKAGES, node.module
            if node.module == "os":
                names = {a.name for a in node.names}
                assert not names & {"environ", "environb", "getenv", "fsync", "write"}, names
        elif isinstance(node, ast.Attribute):
            assert node.attr not in {"environ", "environb", "getenv", "getenvb"}, node.attr
