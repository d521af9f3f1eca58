"""Long-lived, resource-limited worker processes for extraction and type sniffing.

Starting a worker per file cost an interpreter start and the parsers' imports (~100-250 ms
of CPU) for every upload's sniff and every indexed file: the pipeline's main cost. A pool
keeps a few workers started and hands each job to an idle one. Each worker is still its
own sandbox: ``python -I``, no environment, RLIMIT_AS, RLIMIT_FSIZE = 0, RLIMIT_CORE = 0, a
CPU limit per job (the soft RLIMIT_CPU is moved to "used so far + the job's allowance"
before each job) and the parent's wall clock.

A worker is **recycled** (killed, its process group with it; a fresh one takes its place
on the next job) after ``max_jobs`` jobs, on any limit (wall clock, CPU, memory, output
size, a content limit the worker reports), on a crash or on an answer that does not parse.
So a bomb still kills only its worker, and the longest any process lives is ``max_jobs``
files. Bytes travel over pipes only: a header line, the file's bytes, one JSON answer line.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = ["Answer", "PoolConfig", "configure", "run_job", "shutdown"]

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
# -I: isolated mode (no PYTHON* variables, no cwd/user site on sys.path); the package root
# is added explicitly so the worker imports *this* indexer. The ``indexer`` package itself is
# stubbed: its __init__ pulls in the index (whoosh), which a worker has no use for.
BOOT = (
    "import sys, types; root = sys.argv.pop(1); sys.path.insert(0, root); "
    "pkg = types.ModuleType('indexer'); pkg.__path__ = [root + '/indexer']; "
    "sys.modules['indexer'] = pkg; "
    "from indexer.extract._worker import serve; sys.exit(serve(sys.argv))"
)
_IO = 1 << 16
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PoolConfig:
    workers: int = 2  # concurrent jobs per kind of worker (one per core suits a 2-core box)
    max_jobs: int = 200  # a worker is replaced after this many files


@dataclass(frozen=True, slots=True)
class Answer:
    """What came back from one job: the answer line (``b""`` if none), the problem the
    parent saw (``""``, "wall-clock limit", "output size limit", "internal error"), and the
    worker's exit status when it ended during the job (``None`` while it lives)."""

    raw: bytes
    problem: str
    returncode: int | None


def _child_env() -> dict[str, str]:
    # The server's environment may hold secrets (PLEIN_* settings); the parser gets none.
    return {"PATH": os.defpath, "LC_ALL": "C.UTF-8"}


class _Worker:
    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv: our interpreter, our module
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # tracebacks can quote document content
            env=_child_env(),
            close_fds=True,
            start_new_session=True,  # its own process group: the kill reaches everything
        )
        self.jobs = 0
        assert self.proc.stdin is not None and self.proc.stdout is not None  # noqa: S101
        os.set_blocking(self.proc.stdin.fileno(), False)
        os.set_blocking(self.proc.stdout.fileno(), False)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def exchange(self, header: bytes, data: bytes, deadline: float, out_cap: int) -> Answer:
        """Send one job, read one answer line; stop at the deadline or the output cap."""
        stdin, stdout = self.proc.stdin, self.proc.stdout
        assert stdin is not None and stdout is not None  # noqa: S101
        sel = selectors.DefaultSelector()
        pieces = [memoryview(header), memoryview(data)]
        sel.register(stdin, selectors.EVENT_WRITE)
        sel.register(stdout, selectors.EVENT_READ)
        out = bytearray()
        writing = True
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return Answer(bytes(out), "wall-clock limit", None)
                for key, _ in sel.select(min(remaining, 1.0)):
                    if key.fileobj is stdin:
                        while pieces and not pieces[0]:
                            pieces.pop(0)
                        try:
                            n = os.write(stdin.fileno(), pieces[0][:_IO]) if pieces else 0
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:
                            pieces, n = [], 0  # the worker stopped reading (died or refused)
                        if pieces:
                            pieces[0] = pieces[0][n:]
                            while pieces and not pieces[0]:
                                pieces.pop(0)
                        if not pieces and writing:
                            sel.unregister(stdin)
                            writing = False
                        continue
                    try:
                        chunk = os.read(stdout.fileno(), _IO)
                    except BlockingIOError:
                        continue
                    if not chunk:  # the worker ended: its exit status tells why
                        return Answer(bytes(out), "", self._reap())
                    out += chunk
                    end = out.find(b"\n")
                    if end >= 0:
                        if end + 1 < len(out):  # more than one answer: not our worker's way
                            return Answer(bytes(out[:end]), "answer malformed", None)
                        return Answer(bytes(out[:end]), "", None)
                    if len(out) > out_cap:
                        return Answer(bytes(out), "output size limit", None)
        finally:
            sel.close()

    def _reap(self) -> int:
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # stdout closed but still running: end it
            self.kill()
            return self.proc.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._close_pipes()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def retire(self) -> None:
        """A healthy worker at the end of its life: end-of-file on stdin makes it exit."""
        self._close_pipes()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()

    def _close_pipes(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()


class _Pool:
    """Idle workers per argv (a kind of worker: its boot code and limits), at most
    ``config.workers`` jobs of one kind at a time."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._config = PoolConfig()
        self._idle: dict[tuple[str, ...], list[_Worker]] = {}
        self._busy: dict[tuple[str, ...], int] = {}
        self._closed = False

    def configure(self, config: PoolConfig) -> None:
        with self._lock:
            self._config = config
            self._lock.notify_all()

    @property
    def config(self) -> PoolConfig:
        return self._config

    def take(self, key: tuple[str, ...]) -> _Worker:
        with self._lock:
            while self._busy.get(key, 0) >= self._config.workers:
                self._lock.wait()
            self._busy[key] = self._busy.get(key, 0) + 1
            idle = self._idle.get(key, [])
            worker = idle.pop() if idle else None
        # A worker can die between jobs (the OOM killer, an operator): start a fresh one.
        if worker is not None and not worker.alive():
            worker.kill()
            worker = None
        if worker is None:
            try:
                worker = _Worker(list(key))
            except BaseException:
                self._release(key)
                raise
        return worker

    def _release(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._busy[key] -= 1
            self._lock.notify()

    def give_back(self, key: tuple[str, ...], worker: _Worker, *, healthy: bool) -> None:
        worker.jobs += 1
        keep = healthy and worker.jobs < self._config.max_jobs and not self._closed
        if not keep:
            if healthy:
                worker.retire()
            else:
                worker.kill()
        with self._lock:
            if keep:
                self._idle.setdefault(key, []).append(worker)
            self._busy[key] -= 1
            self._lock.notify()

    def shutdown(self) -> None:
        with self._lock:
            workers = [w for idle in self._idle.values() for w in idle]
            self._idle.clear()
        for worker in workers:
            worker.retire()


_POOL = _Pool()
atexit.register(_POOL.shutdown)


def configure(*, workers: int, max_jobs: int) -> None:
    """Set the pool's size and the recycling count (the app calls this from its settings)."""
    if workers < 1 or max_jobs < 1:
        raise ValueError("workers and max_jobs must be at least 1")
    _POOL.configure(PoolConfig(workers=workers, max_jobs=max_jobs))


def shutdown() -> None:
    """End the idle workers (busy ones end when their job does)."""
    _POOL.shutdown()


def run_job(boot: str, params: dict[str, object], header: dict[str, object], data: bytes,
            judge: Callable[[Answer], tuple[T, bool]], *, wall_seconds: float, out_cap: int,
            started: float) -> T:
    """Run one job on a pooled worker of the kind (``boot``, ``params``). ``judge`` turns
    the answer into the caller's result and says whether the worker may serve again; it is
    recycled when not, or on any problem the parent saw (see the module doc)."""
    params = {**params, "max_jobs": _POOL.config.max_jobs}
    key = (sys.executable, "-I", "-c", boot, _PACKAGE_ROOT,
           json.dumps(params, sort_keys=True))
    worker = _POOL.take(key)
    healthy = False
    try:
        line = json.dumps({**header, "size": len(data)}).encode() + b"\n"
        answer = worker.exchange(line, data, started + wall_seconds, out_cap)
        result, clean = judge(answer)
        healthy = clean and not answer.problem and answer.returncode is None
        return result
    finally:
        _POOL.give_back(key, worker, healthy=healthy)
