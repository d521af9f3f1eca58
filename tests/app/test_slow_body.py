"""A request body that stops arriving ends with 408 and leaves no temporary file (issue 9,
item 17: an upload sending a byte every ten seconds used to hold its connection and its
partial blob for ever). A slow body that keeps moving is not cut off.

Raw sockets, so the test decides exactly when each byte leaves."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app.helpers import API, expect, make_group
from tests.live import Client, LiveServer, running_server, unique

IDLE = 2


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("slow") / "data"
    with running_server(data_dir, {"PLEIN_UPLOAD_IDLE_SECONDS": str(IDLE)}) as server:
        yield server


@pytest.fixture(scope="module")
def alice(impatient: LiveServer) -> Iterator[Client]:
    client = impatient.client()
    client.sign_up("Alice")
    yield client
    client.close()


def head(client: Client, method: str, path: str, content_type: str, length: int) -> bytes:
    cookies = "; ".join(f"{name}={value}" for name, value in client.http.cookies.items())
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Cookie: {cookies}",
             f"X-CSRF-Token: {client.csrf}", f"Content-Type: {content_type}",
             f"Content-Length: {length}", "", ""]
    return "\r\n".join(lines).encode()


def answer(sock: socket.socket, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the response (read until the server closes or the body
    is complete)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer: {data!r}"
        data += chunk
    header_block, body = data.split(b"\r\n\r\n", 1)
    status_line, *header_lines = header_block.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


def temp_files(server: LiveServer) -> list[Path]:
    return list((server.data_dir / "blobs").rglob(".tmp-*"))


def multipart(size: int) -> tuple[bytes, bytes, str]:
    boundary = "plein" + uuid.uuid4().hex
    start = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
             f"filename=\"traag.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    return start + os.urandom(size), f"\r\n--{boundary}--\r\n".encode(), boundary


def test_a_stalled_upload_ends_with_408_and_no_temp_file(impatient: LiveServer,
                                                          alice: Client) -> None:
    folder = make_group(alice, unique("Traag"))["root_folder_id"]
    # More than a megabyte first, so the encrypted temp file exists; then nothing more.
    body, end, boundary = multipart(1536 * 1024)
    with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
        sock.sendall(head(alice, "POST", f"{API}/folders/{folder}/files",
                          f"multipart/form-data; boundary={boundary}",
                          len(body) + 4096 + len(end)))
        sock.sendall(body)
        started = time.monotonic()
        status, headers, raw = answer(sock)
    assert status == 408, raw[:300]
    assert json.loads(raw)["error"]["code"] == "request_timeout"
    assert headers["cache-control"] == "no-store"
    assert time.monotonic() - started >= IDLE - 0.5
    deadline = time.monotonic() + 20
    while temp_files(impatient):
        assert time.monotonic() < deadline, temp_files(impatient)
        time.sleep(0.05)  # polling for the cleanup, with a deadline
    assert expect(alice.get(f"{API}/folders/{folder}"), 200)["documents"] == []


def test_a_stalled_json_body_ends_with_408(impatient: LiveServer, alice: Client) -> None:
    with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
        sock.sendall(head(alice, "POST", f"{API}/groups", "application/json", 100))
        sock.sendall(b'{"name": "tra')
        status, _headers, raw = answer(sock)
    assert status == 408 and json.loads(raw)["error"]["code"] == "request_timeout"


def test_a_slow_upload_that_keeps_moving_is_not_cut_off(impatient: LiveServer,
                                                       alice: Client) -> None:
    folder = make_group(alice, unique("Gestaag"))["root_folder_id"]
    body, end, boundary = multipart(64 * 1024)
    whole = body + end
    pieces = [whole[i:i + 8 * 1024] for i in range(0, len(whole), 8 * 1024)]
    with socket.create_connection(("127.0.0.1", impatient.port)) as sock:
        sock.sendall(head(alice, "POST", f"{API}/folders/{folder}/files",
                          f"multipart/form-data; boundary={boundary}", len(whole)))
        for piece in pieces:  # ~2 s in all, longer than IDLE, never idle for long
            sock.sendall(piece)
            time.sleep(IDLE / 10)  # pacing the client on purpose, not waiting for the server
        status, _headers, raw = answer(sock)
    assert status == 201, raw[:300]
