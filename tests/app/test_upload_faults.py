"""Fault injection during uploads (SECURITY.md, "Crash safety"): EIO from fsync and ENOSPC
from a write in the middle of the stream. The client gets a 503 in the API error shape (the
upload was *not* stored), the previous version stays intact and current, and no temp file is
left. The app runs in-process (httpx over ASGI) so ``os.fsync``/``os.write`` can be patched:
storage looks both up on the ``os`` module at call time for exactly this."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.settings import Settings

API = "/api/v1"
OLD = os.urandom(150_000)
NEW = os.urandom(3 * 1024 * 1024 + 123)  # several 1 MiB flushes: the fault hits mid-stream


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Site:
    def __init__(self, client: httpx.AsyncClient, data_dir: Path) -> None:
        self.client = client
        self.data_dir = data_dir
        self.csrf = ""

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf} if self.csrf else {}
        return await self.client.request(method, API + path, headers=headers, **kwargs)

    def blob_files(self) -> set[Path]:
        return {p for p in (self.data_dir / "blobs").rglob("*")
                if p.is_file() and not p.name.startswith(".tmp-")}

    def temp_files(self) -> list[Path]:
        return list((self.data_dir / "blobs").rglob(".tmp-*"))


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    data_dir = tmp_path / "d"
    app = create_app(Settings(data_dir=data_dir))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        site = Site(client, data_dir)
        account = {"email": "alice@example.nl", "name": "Alice",
                   "password": "correct horse battery staple"}
        assert (await site.call("POST", "/users", json=account)).status_code == 201
        signed_in = await site.call("POST", "/session", json={
            "email": account["email"], "password": account["password"]})
        assert signed_in.status_code == 200, signed_in.text
        site.csrf = (await site.call("GET", "/session")).json()["csrf_token"]
        yield site
    app.state.runtime.db.dispose()


async def _document_with_one_version(site: Site) -> tuple[str, str]:
    group = await site.call("POST", "/groups", json={"name": "G", "access": "closed"})
    folder = group.json()["root_folder_id"]
    made = await site.call("POST", f"/folders/{folder}/files",
                           files={"file": ("plan.bin", OLD, "application/octet-stream")})
    assert made.status_code == 201, made.text
    return made.json()["id"], folder


async def _assert_untouched(site: Site, doc_id: str, blobs_before: set[Path]) -> None:
    doc = (await site.call("GET", f"/documents/{doc_id}")).json()
    assert doc["version"] == 1 and doc["sha256"] == hashlib.sha256(OLD).hexdigest()
    versions = (await site.call("GET", f"/documents/{doc_id}/versions")).json()
    assert [v["number"] for v in versions] == [1]
    content = await site.call("GET", f"/documents/{doc_id}/content")
    assert content.status_code == 200 and content.content == OLD
    assert site.temp_files() == []
    assert site.blob_files() == blobs_before  # nothing half-made, nothing orphaned


def _assert_storage_error(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text[:300]
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "storage_unavailable"
    assert body["error"]["message"]


def _is_blob_fd(fd: int, data_dir: Path) -> bool:
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    return target.startswith(str(data_dir / "blobs"))


def _failing(real: Callable[..., Any], should_fail: Callable[[int], bool],
             code: int) -> Callable[..., Any]:
    calls: list[int] = []

    def fake(fd: int, *args: Any) -> Any:
        if should_fail(fd):
            calls.append(fd)
            raise OSError(code, os.strerror(code))
        return real(fd, *args)

    fake.calls = calls  # type: ignore[attr-defined]
    return fake


@pytest.mark.anyio
async def test_fsync_eio_of_the_blob_file(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    doc_id, _ = await _document_with_one_version(site)
    before = site.blob_files()

    def blob_file(fd: int) -> bool:
        return _is_blob_fd(fd, site.data_dir) and stat.S_ISREG(os.fstat(fd).st_mode)

    fake = _failing(os.fsync, blob_file, errno.EIO)
    monkeypatch.setattr(os, "fsync", fake)
    response = await site.call("POST", f"/documents/{doc_id}/versions",
                               files={"file": ("plan.bin", NEW, "application/octet-stream")})
    monkeypatch.undo()
    assert fake.calls, "the fault was never injected"  # type: ignore[attr-defined]
    _assert_storage_error(response)
    await _assert_untouched(site, doc_id, before)


@pytest.mark.anyio
async def test_fsync_eio_of_the_directory_after_the_rename(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The blob was renamed into place but its directory entry is not known to be durable:
    still a failed write, and the file must be taken back out."""
    doc_id, _ = await _document_with_one_version(site)
    before = site.blob_files()
    file_synced: list[int] = []
    real_fsync = os.fsync

    def directory_after_file(fd: int) -> bool:
        if not _is_blob_fd(fd, site.data_dir):
            return False
        if stat.S_ISREG(os.fstat(fd).st_mode):
            file_synced.append(fd)
            return False
        return bool(file_synced)

    fake = _failing(real_fsync, directory_after_file, errno.EIO)
    monkeypatch.setattr(os, "fsync", fake)
    response = await site.call("POST", f"/documents/{doc_id}/versions",
                               files={"file": ("plan.bin", NEW, "application/octet-stream")})
    monkeypatch.undo()
    assert fake.calls and file_synced  # type: ignore[attr-defined]
    _assert_storage_error(response)
    await _assert_untouched(site, doc_id, before)


@pytest.mark.anyio
async def test_enospc_mid_stream(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    doc_id, _ = await _document_with_one_version(site)
    before = site.blob_files()
    real_write = os.write
    written = [0]
    calls: list[int] = []

    def fake(fd: int, data: Any) -> int:
        # Counted in bytes, not calls: the writer hands the disk whole batches of chunks.
        if _is_blob_fd(fd, site.data_dir):
            if written[0] >= 1024 * 1024:  # a megabyte went through, then the disk is full
                calls.append(fd)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written[0] += memoryview(data).nbytes
        return real_write(fd, data)

    fake.calls = calls  # type: ignore[attr-defined]
    monkeypatch.setattr(os, "write", fake)
    response = await site.call("POST", f"/documents/{doc_id}/versions",
                               files={"file": ("plan.bin", NEW, "application/octet-stream")})
    monkeypatch.undo()
    assert fake.calls  # type: ignore[attr-defined]
    _assert_storage_error(response)
    await _assert_untouched(site, doc_id, before)


@pytest.mark.anyio
async def test_enospc_on_a_new_file_leaves_nothing(site: Site,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    doc_id, folder = await _document_with_one_version(site)
    before = site.blob_files()
    fake = _failing(os.write, lambda fd: _is_blob_fd(fd, site.data_dir), errno.ENOSPC)
    monkeypatch.setattr(os, "write", fake)
    response = await site.call("POST", f"/folders/{folder}/files",
                               files={"file": ("nieuw.bin", NEW, "application/octet-stream")})
    monkeypatch.undo()
    _assert_storage_error(response)
    listing = (await site.call("GET", f"/folders/{folder}")).json()
    assert [d["id"] for d in listing["documents"]] == [doc_id]
    await _assert_untouched(site, doc_id, before)

    # The store recovers once the disk does: the same upload now succeeds.
    retry = await site.call("POST", f"/documents/{doc_id}/versions",
                            files={"file": ("plan.bin", NEW, "application/octet-stream")})
    assert retry.status_code == 201, retry.text
    content = await site.call("GET", f"/documents/{doc_id}/content")
    assert content.content == NEW
