"""A built wheel (``pip install .``, not editable) carries the pages: templates, styles and the
editor bundle are package data, and a server started from the installed package, outside the
checkout, serves every page a person visits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import REPO, Client, free_port

pytestmark = pytest.mark.server  # a wheel, installed, served by a real subprocess


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(REPO)], check=True, capture_output=True)
    (built,) = out.glob("plein-*.whl")
    return built


def test_the_wheel_carries_templates_styles_and_the_editor(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("plein_web/templates/base.html", "plein_web/templates/document_note.html",
                   "plein_web/static/plein.css", "plein_web/static/build/editor.js",
                   "app/migrations/versions/0001_foundation_accounts_groups_folders.py",
                   "app/locale/nl/LC_MESSAGES/messages.po"):
        assert needed in names, f"{needed} is not in the wheel"
    assert not any("node_modules" in name or name.startswith("plein_web/editor/")
                   for name in names), "the editor's sources or node_modules were packaged"
    assert not any(name.startswith("tests/") for name in names)


@pytest.fixture(scope="module")
def installed_server(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The wheel unpacked into a folder of its own and run from outside the checkout: the
    packages come from that folder (first on the path), never from the repository."""
    root = tmp_path_factory.mktemp("installed")
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEIN_")}
    env.update({"PYTHONPATH": str(target), "PLEIN_LOG_LEVEL": "warning"})
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--data-dir",
                             str(root / "data"), "--port", str(port)],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(timeout=2) as probe:
            for _ in range(600):
                assert proc.poll() is None, (root / "server.log").read_text()
                try:
                    if probe.get(url + "/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)  # polling for readiness, not a fixed wait
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_the_installed_package_serves_every_page(installed_server: str, tmp_path: Path) -> None:
    client = Client(installed_server)
    try:
        anonymous = httpx.get(installed_server + "/login")
        assert anonymous.status_code == 200 and "<form" in anonymous.text
        assert httpx.get(installed_server + "/register").status_code == 200
        for asset in ("/static/plein.css", "/static/build/editor.js", "/static/upload.js"):
            assert httpx.get(installed_server + asset).status_code == 200, asset
        client.sign_up("Alice")
        group = client.post("/api/v1/groups", json={"name": "Dossier", "access": "closed"})
        assert group.status_code == 201, group.text
        root = group.json()["root_folder_id"]
        note = client.post(f"/api/v1/folders/{root}/notes", json={"title": "Nota",
                                                                 "text": "Tekst"})
        upload = client.post(f"/api/v1/folders/{root}/files",
                             files={"file": ("a.txt", b"hallo", "text/plain")})
        assert note.status_code == 201 and upload.status_code == 201, upload.text
        pages = ["/", "/groups/new", f"/groups/{group.json()['id']}",
                 f"/groups/{group.json()['id']}/trash", f"/groups/{group.json()['id']}/activity",
                 f"/folders/{root}", "/profile", "/notifications", "/search?q=tekst",
                 f"/documents/{note.json()['id']}", f"/documents/{upload.json()['id']}"]
        for path in pages:
            response = client.get(path)
            assert response.status_code == 200, (path, response.text[:300])
            assert "</html>" in response.text, path
    finally:
        client.close()
