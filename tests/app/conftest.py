"""The app tests' fixtures (servers, ``cast``, alice, bob, carol, dave) are in tests/plugin.py;
their helpers (groups, folders, uploads, error shapes) in tests/app/helpers.py."""

from __future__ import annotations

from tests.plugin import Cast

__all__ = ["Cast"]
