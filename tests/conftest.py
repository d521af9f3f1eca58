"""Shared fixtures: a real server on loopback and named people (alice owns, bob edits,
carol only reads, dave is outside)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.live import Client, LiveServer, running_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server for the session; tests make their own uniquely named people and groups."""
    with running_server(tmp_path_factory.mktemp("plein") / "data") as live:
        yield live


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server of this test's own (first user, throttling, settings)."""
    with running_server(tmp_path / "data") as live:
        yield live


@pytest.fixture
def person(server: LiveServer) -> Iterator[Callable[[str], Client]]:
    """Make a signed-in person: ``alice = person("Alice")``."""
    clients: list[Client] = []

    def make(name: str) -> Client:
        client = server.client()
        client.sign_up(name)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def anonymous(server: LiveServer) -> Iterator[Client]:
    client = server.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def node_client_ready() -> None:
    """The stock Yjs client (Node + web/editor/node_modules) must be there: `make test` installs
    it, so its absence is a failure to see, not a reason to skip."""
    from tests.js_client import node_available

    problem = node_available()
    assert problem is None, f"{problem}; run scripts/setup --test"
