"""Uploads are a pipeline (issue 18): while the disk takes one batch the event loop goes on
receiving the next ones (up to a short queue, then TCP pushes back), and the blob writes run
on threads of their own, never on the pool that database transactions and live editing
share. The app runs in-process so ``os.write`` can be held up on the blob files."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

from app.http.uploads import FLUSH_BYTES, QUEUE_BATCHES
from app.main import create_app
from app.settings import Settings

API = "/api/v1"
PIECE = 256 * 1024
PIECES = 32  # 8 MiB: more than the batches the queue may hold


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _is_blob_fd(fd: int, data_dir: Path) -> bool:
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    return target.startswith(str(data_dir / "blobs"))


async def _signed_in(client: httpx.AsyncClient) -> tuple[str, str]:
    """(CSRF token, root folder id) of a new account with a new group."""
    account = {"email": "alice@example.nl", "name": "Alice",
               "password": "correct horse battery staple"}
    assert (await client.post(f"{API}/users", json=account)).status_code == 201
    signed_in = await client.post(f"{API}/session", json={
        "email": account["email"], "password": account["password"]})
    assert signed_in.status_code == 200, signed_in.text
    csrf = (await client.get(f"{API}/session")).json()["csrf_token"]
    group = await client.post(f"{API}/groups", json={"name": "G", "access": "closed"},
                              headers={"X-CSRF-Token": csrf})
    return csrf, group.json()["root_folder_id"]


@pytest.mark.anyio
async def test_the_body_keeps_arriving_while_the_disk_is_busy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "d"
    app = create_app(Settings(data_dir=data_dir))
    disk_free = threading.Event()
    disk_busy = threading.Event()
    real_write = os.write

    def stalled_write(fd: int, data: Any) -> int:
        if _is_blob_fd(fd, data_dir) and not disk_free.is_set():
            disk_busy.set()
            disk_free.wait(30)
        return int(real_write(fd, data))

    boundary = "pipeline-test"
    sent = [0]
    content = os.urandom(PIECE)

    async def body() -> AsyncIterator[bytes]:
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
               "filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
        for _ in range(PIECES):
            sent[0] += PIECE
            yield content
        yield f"\r\n--{boundary}--\r\n".encode()

    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            csrf, folder = await _signed_in(client)
            monkeypatch.setattr(os, "write", stalled_write)
            answers: list[httpx.Response] = []

            async def upload() -> None:
                answers.append(await client.post(
                    f"{API}/folders/{folder}/files", content=body(),
                    headers={"X-CSRF-Token": csrf,
                             "Content-Type": f"multipart/form-data; boundary={boundary}"}))

            async with anyio.create_task_group() as tasks:
                tasks.start_soon(upload)
                try:
                    with anyio.fail_after(10):
                        while not disk_busy.is_set():  # noqa: ASYNC110 - a thread sets it
                            await anyio.sleep(0.005)
                    # The first batch is stuck in os.write: the loop still takes the batches
                    # the queue holds and fills the next one.
                    with anyio.fail_after(10):
                        while sent[0] < (QUEUE_BATCHES + 1) * FLUSH_BYTES:  # noqa: ASYNC110
                            await anyio.sleep(0.005)
                    # ... and the stuck write holds no thread of the pool the database
                    # transactions and live editing share.
                    shared = anyio.to_thread.current_default_thread_limiter()
                    assert shared.borrowed_tokens == 0
                    # The queue is bounded: the body waits for the disk, it is not buffered.
                    await anyio.sleep(0.2)
                    assert sent[0] <= (QUEUE_BATCHES + 3) * FLUSH_BYTES + PIECE
                finally:
                    disk_free.set()
            monkeypatch.undo()
            assert answers and answers[0].status_code == 201, answers[0].text
            stored = await client.get(f"{API}/documents/{answers[0].json()['id']}/content")
            assert stored.content == content * PIECES
    finally:
        app.state.runtime.db.dispose()
