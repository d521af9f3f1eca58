"""A real Plein server on loopback (uvicorn in a subprocess) and a small API client for tests.

The server is a separate process so tests exercise exactly what runs in production, and so a
test can ``kill -9`` it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 30.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLEIN_")}
        env.update({"PLEIN_LOG_LEVEL": "warning", **self.extra_env})
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--data-dir", str(self.data_dir),
                 "--port", str(self.port)],
                cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling for readiness, not a fixed wait
        raise RuntimeError(f"server did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def client(self) -> Client:
        return Client(self.url)

    def http(self, **kwargs: Any) -> httpx.Client:
        """A bare httpx client on this server (no CSRF token, no account)."""
        kwargs.setdefault("follow_redirects", False)
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=self.url, **kwargs)


class Client:
    """An httpx client that behaves like our own pages: it sends the CSRF token it was given."""

    def __init__(self, base_url: str, transport: httpx.BaseTransport | None = None) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False,
                                 transport=transport)
        self.csrf: str | None = None
        self.user: dict[str, Any] | None = None
        self.password: str | None = None

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if method.upper() in ("POST", "PUT", "PATCH", "DELETE") and self.csrf:
            headers.setdefault("X-CSRF-Token", self.csrf)
        return self.http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    def refresh_csrf(self) -> None:
        response = self.http.get("/api/v1/session")
        response.raise_for_status()
        self.csrf = response.json()["csrf_token"] or None

    def sign_up(self, name: str, email: str | None = None,
                password: str = "correct horse battery staple") -> dict[str, Any]:
        email = email or f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.nl"
        response = self.http.post("/api/v1/users",
                                  json={"email": email, "name": name, "password": password})
        assert response.status_code == 201, response.text
        self.sign_in(email, password)
        return self.user or {}

    def sign_in(self, email: str, password: str) -> httpx.Response:
        response = self.http.post("/api/v1/session", json={"email": email, "password": password})
        if response.status_code == 200:
            self.user = response.json()
            self.password = password
            self.refresh_csrf()
        return response

    def close(self) -> None:
        self.http.close()


@contextmanager
def running_server(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    server = LiveServer(data_dir, env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
