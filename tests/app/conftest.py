"""Fixtures of the app tests.

Signing up costs an argon2id hash and verification (~0.1-0.3 s), so each module signs its
named people up once (``cast``) on the session server and every test makes its own uniquely
named groups and folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.live import Client, LiveServer


@pytest.fixture(scope="module")
def cast(server: LiveServer) -> Iterator[Callable[[str], Client]]:
    """``cast("Alice")``: the module's signed-in Alice (made on first use)."""
    clients: dict[str, Client] = {}

    def get(name: str) -> Client:
        if name not in clients:
            client = server.client()
            client.sign_up(name)
            clients[name] = client
        return clients[name]

    yield get
    for client in clients.values():
        client.close()


# The people of CONVENTIONS.md: alice owns, bob edits (admin), carol reads, dave is outside.
Cast = Callable[[str], Client]


@pytest.fixture
def alice(cast: Cast) -> Client:
    return cast("Alice")


@pytest.fixture
def bob(cast: Cast) -> Client:
    return cast("Bob")


@pytest.fixture
def carol(cast: Cast) -> Client:
    return cast("Carol")


@pytest.fixture
def dave(cast: Cast) -> Client:
    return cast("Dave")
