"""The test plugin (registered by tests/conftest.py): the servers, the named people of
CONVENTIONS.md (alice owns, bob edits, carol only reads, dave is outside) and the layers.

Two servers answer the app tests:

* ``app_server``: the app in this process (tests/inprocess.py), the fast layer's;
* ``server``: a real uvicorn subprocess on loopback (tests/live.py), for what needs a real
  server: crashes, sync over websockets, browsers, logs, timeouts, settings by environment.

A test that uses ``server`` or ``fresh_server`` (directly or through a fixture) is marked
``server``, and so is every test of its module: the module's people (``cast``, ``person``,
``anonymous``, ``alice``...) then live on the real server too.  So are the modules that
start real servers of their own (they import ``running_server``), and any module may say
``pytestmark = pytest.mark.server``.  ``make test-fast`` runs
``-m "not slow and not browser and not server"``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import httpx
import pytest

from tests.inprocess import InProcessServer
from tests.live import Client, LiveServer, running_server

#: Fixtures that start the real server: a test using one is marked ``server`` (with its module).
REAL_SERVER_FIXTURES = {"server", "fresh_server"}
_SERVER_MODULES = pytest.StashKey[set[str]]()


class Site(Protocol):
    """What both servers offer a test: their address, a person's client, a bare client."""

    data_dir: Path
    url: str

    def client(self) -> Client: ...

    def http(self, **kwargs: object) -> httpx.Client: ...


# -- layers ----------------------------------------------------------------------------------

def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    modules: set[str] = set()
    for item in items:
        module = item.nodeid.split("::")[0]
        if item.get_closest_marker("server") is not None \
                or REAL_SERVER_FIXTURES & set(getattr(item, "fixturenames", ())) \
                or getattr(getattr(item, "module", None), "running_server", None) \
                is running_server:
            modules.add(module)
    for item in items:
        if item.nodeid.split("::")[0] in modules and item.get_closest_marker("server") is None:
            item.add_marker(pytest.mark.server)
    config.stash[_SERVER_MODULES] = modules


# -- servers ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server for the session; tests make their own uniquely named people and groups."""
    with running_server(tmp_path_factory.mktemp("plein") / "data") as live:
        yield live


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A real server of this test's own (first user, throttling, settings)."""
    with running_server(tmp_path / "data") as live:
        yield live


@pytest.fixture(scope="session")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessServer]:
    """The app in this process, one for the session (the fast layer's server)."""
    app = InProcessServer(tmp_path_factory.mktemp("inprocess") / "data")
    app.start()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def site(request: pytest.FixtureRequest) -> Site:
    """The server this module's people live on: the real one in ``server`` modules, else the
    app in this process."""
    module = request.node.nodeid.split("::")[0]
    if module in request.config.stash.get(_SERVER_MODULES, set()):
        live: LiveServer = request.getfixturevalue("server")
        return live
    in_process: InProcessServer = request.getfixturevalue("app_server")
    return in_process


# -- people ----------------------------------------------------------------------------------

PEOPLE = ("Alice", "Bob", "Carol", "Dave")
Cast = Callable[[str], Client]


def sign_up_all(site: Site, names: tuple[str, ...] = PEOPLE) -> dict[str, Client]:
    """``names`` signed up on ``site``: ``{"alice": Client, ...}`` (the caller closes them)."""
    people: dict[str, Client] = {}
    for name in names:
        people[name.lower()] = site.client()
        people[name.lower()].sign_up(name.capitalize())
    return people


@contextmanager
def signed_up(site: Site, names: tuple[str, ...] = PEOPLE) -> Iterator[dict[str, Client]]:
    """``names`` signed up on ``site``: ``{"alice": Client, ...}``, closed afterwards."""
    people = sign_up_all(site, names)
    try:
        yield people
    finally:
        for client in people.values():
            client.close()


@pytest.fixture(scope="module")
def cast(site: Site) -> Iterator[Cast]:
    """``cast("Alice")``: the module's signed-in Alice (made on first use).  Signing up costs
    an argon2id hash, so each module signs its people up once and every test makes its own
    uniquely named groups and folders."""
    clients: dict[str, Client] = {}

    def get(name: str) -> Client:
        if name not in clients:
            client = site.client()
            client.sign_up(name)
            clients[name] = client
        return clients[name]

    yield get
    for client in clients.values():
        client.close()


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


@pytest.fixture
def person(site: Site) -> Iterator[Cast]:
    """Make a new signed-in person for this test: ``alice = person("Alice")``."""
    clients: list[Client] = []

    def make(name: str) -> Client:
        client = site.client()
        client.sign_up(name)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def anonymous(site: Site) -> Iterator[Client]:
    client = site.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def node_client_ready() -> None:
    """The stock Yjs client (Node + web/editor/node_modules) must be there: `make test` installs
    it, so its absence is a failure to see, not a reason to skip."""
    from tests.js_client import node_available

    problem = node_available()
    assert problem is None, f"{problem}; run scripts/setup --test"
