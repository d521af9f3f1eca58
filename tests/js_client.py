"""Drive stock Yjs + y-websocket clients (``tests/js/yclient.mjs``, one Node process each) from
pytest: commands go in as JSON lines, events come back as JSON lines.

    with JsClient.open(server, doc_id, token=secret) as alice:
        alice.wait_synced()
        alice.insert("hello")
        assert bob.wait_text(contains="hello")

Every wait has a deadline (generous: they only matter when something is wrong, and CI
machines are busy); nothing sleeps for a fixed time.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.live import LiveServer

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "js" / "yclient.mjs"
NODE_MODULES = REPO / "web" / "editor" / "node_modules"

Event = dict[str, Any]


def node_available() -> str | None:
    """Why the JS client cannot run here, or None if it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    for package in ("yjs", "y-websocket", "ws"):
        if not (NODE_MODULES / package).is_dir():
            return f"web/editor/node_modules/{package} missing (cd web/editor && npm ci)"
    return None


def ws_base(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://", 1) + "/sync"


class JsClientError(AssertionError):
    pass


class JsClient:
    """One Node y-websocket client.  Events are collected by a reader thread; ``history``
    keeps every event, ``wait_for`` consumes nothing (it scans from a given index)."""

    def __init__(self, base: str, document_id: str, token: str | None = None,
                 origin: str | None = None, name: str = "client") -> None:
        self.name = name
        args = ["node", str(SCRIPT), base, document_id, token or "", origin or ""]
        self.proc = subprocess.Popen(args, cwd=REPO, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     bufsize=1)
        self.history: list[Event] = []
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()
        self.wait_for(lambda e: e["event"] == "started", 30)

    @classmethod
    @contextmanager
    def open(cls, server: LiveServer, document_id: str, token: str | None = None,
             origin: str | None = None, name: str = "client") -> Iterator[JsClient]:
        client = cls(ws_base(server), document_id, token, origin, name)
        try:
            yield client
        finally:
            client.close()

    # -- plumbing ------------------------------------------------------------------------

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "garbage", "line": line}
            with self._cond:
                self.history.append(event)
                self._cond.notify_all()
        with self._cond:
            self.history.append({"event": "exit"})
            self._cond.notify_all()

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def send(self, op: str, **fields: Any) -> int:
        cmd_id = next(self._ids)
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, "id": cmd_id, **fields}) + "\n")
        self.proc.stdin.flush()
        return cmd_id

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 5.0,
                 start: int = 0) -> Event:
        """The first event from index ``start`` on that matches; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            index = start
            while True:
                while index < len(self.history):
                    event = self.history[index]
                    index += 1
                    if predicate(event):
                        return event
                    if event["event"] == "exit" and not predicate(event):
                        raise JsClientError(f"{self.name} exited:\n{''.join(self.stderr)}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise JsClientError(f"{self.name}: no matching event within {timeout} s; "
                                        f"last events: {self.history[-8:]}")
                self._cond.wait(remaining)

    def has(self, predicate: Callable[[Event], bool]) -> bool:
        with self._cond:
            return any(predicate(e) for e in self.history)

    def mark(self) -> int:
        """An index into ``history``: wait for events *after* this point."""
        with self._cond:
            return len(self.history)

    def call(self, op: str, timeout: float = 15.0, **fields: Any) -> Event:
        """Send a command and return the event that answers it."""
        cmd_id = self.send(op, **fields)
        event = self.wait_for(lambda e: e.get("re") == cmd_id, timeout)
        if event["event"] == "error":
            raise JsClientError(f"{self.name}: {op} failed: {event['error']}")
        return event

    # -- the client's API -------------------------------------------------------------------

    def wait_synced(self, timeout: float = 20.0, start: int = 0) -> None:
        self.wait_for(lambda e: e["event"] == "sync" and e["synced"], timeout, start)

    def insert(self, text: str) -> None:
        self.call("insert", text=text)

    def type(self, para: int, pos: int, text: str) -> None:
        self.call("type", para=para, pos=pos, text=text)

    def delete(self, para: int, pos: int, length: int) -> None:
        self.call("delete", para=para, pos=pos, len=length)

    def text(self) -> str:
        return str(self.call("text")["text"])

    def state_vector(self) -> str:
        return str(self.call("state-vector")["sv"])

    def wait_text(self, *, contains: str | None = None, absent: str | None = None,
                  equals: str | None = None, timeout: float = 15.0) -> str:
        """Wait until the text matches; return it (fails the test on timeout)."""
        spec = {k: v for k, v in (("contains", contains), ("absent", absent),
                                  ("equals", equals)) if v is not None}
        assert len(spec) == 1
        event = self.call("wait", timeout=timeout + 5, ms=int(timeout * 1000), **spec)
        if not event["ok"]:
            raise JsClientError(f"{self.name}: text never matched {spec}; text={event['text']!r}")
        return str(event["text"])

    def text_stays(self, *, absent: str, seconds: float) -> bool:
        """True if ``absent`` did not show up within ``seconds`` (for "never arrives")."""
        event = self.call("wait", timeout=seconds + 5, ms=int(seconds * 1000), contains=absent)
        return not event["ok"]

    def set_name(self, name: str) -> None:
        self.call("awareness", name=name)

    def peers(self) -> list[str]:
        return list(self.call("peers")["names"])

    def wait_peers(self, predicate: Callable[[list[str]], bool], timeout: float = 5.0) -> float:
        """Wait until the others' names satisfy ``predicate``; return how long it took."""
        start = time.monotonic()
        mark = self.mark()
        if predicate(self.peers()):
            return time.monotonic() - start
        self.wait_for(lambda e: e["event"] == "awareness" and predicate(e["names"]), timeout,
                      mark)
        return time.monotonic() - start

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("close")
                self.proc.wait(timeout=5)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self._reader.join(timeout=5)
        self._err_reader.join(timeout=5)
