"""The parent side of extraction: spawn the worker, pump bytes, enforce the wall clock.

The parent never parses the file (not even libmagic runs here); it only moves
bytes over pipes and reads back one bounded JSON answer. The same machinery runs
the type sniffer (``_sniff.py``) that uploads ask for a file's media type. Anything that goes
wrong on the other side -- a crash, a kill by the CPU limit, a hang, an
oversized answer -- becomes an ExtractionResult, never an exception.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from indexer.extract._result import ExtractionLimits, ExtractionResult, ExtractionStatus

__all__ = [
    "DEFAULT_LIMITS",
    "SNIFF_BYTES",
    "SNIFF_LIMITS",
    "extract_text",
    "extract_text_async",
    "sniff_mime",
    "sniff_mime_async",
]

DEFAULT_LIMITS = ExtractionLimits()
# Sniffing reads a few KiB: libmagic's signatures sit near the start, and the cost of the
# call is the process start, not the bytes.
SNIFF_BYTES = 8192
SNIFF_LIMITS = ExtractionLimits(memory_bytes=256 * (1 << 20), cpu_seconds=5, wall_seconds=10.0)
UNKNOWN_MIME = "application/octet-stream"
_MIME_RE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}/[a-z0-9][a-z0-9.+-]{0,127}")
_SNIFF_SCRIPT = str(Path(__file__).resolve().parent / "_sniff.py")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
# -I: isolated mode (no PYTHON* variables, no cwd/user site on sys.path); the
# package root is added explicitly so the worker imports *this* indexer.
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); "
    "from indexer.extract._worker import main; sys.exit(main(sys.argv))"
)
_SUFFIX_RE = re.compile(r"[a-z0-9]{1,10}")
_STDERR_CAP = 64 * 1024
_IO = 1 << 16


def _suffix(filename: str) -> str:
    # Only a sanitized extension crosses over: the file name itself is metadata
    # (and may be sensitive), the worker has no use for it.
    ext = filename.rpartition(".")[2].lower() if "." in filename else ""
    return ext if _SUFFIX_RE.fullmatch(ext) else ""


def _child_env() -> dict[str, str]:
    # The server's environment may hold secrets (PLEIN_* settings); the parser gets none.
    return {"PATH": os.defpath, "LC_ALL": "C.UTF-8"}


def _result(status: ExtractionStatus, reason: str, started: float) -> ExtractionResult:
    return ExtractionResult(status=status, reason=reason, seconds=time.monotonic() - started)


def _pump(
    proc: subprocess.Popen[bytes], data: bytes, deadline: float, out_cap: int
) -> tuple[bytes, str]:
    """Feed stdin, collect stdout (capped) and drain stderr; return (stdout, problem)."""
    if proc.stdin is None or proc.stdout is None or proc.stderr is None:
        raise RuntimeError("worker started without pipes")
    sel = selectors.DefaultSelector()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        os.set_blocking(f.fileno(), False)
    view = memoryview(data)
    if view:
        sel.register(proc.stdin, selectors.EVENT_WRITE)
    else:
        proc.stdin.close()
    sel.register(proc.stdout, selectors.EVENT_READ)
    sel.register(proc.stderr, selectors.EVENT_READ)
    out = bytearray()
    err_seen = 0
    try:
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bytes(out), "wall-clock limit"
            for key, _ in sel.select(min(remaining, 1.0)):
                if key.fileobj is proc.stdin:
                    try:
                        n = os.write(proc.stdin.fileno(), view[:_IO])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        n, view = 0, view[:0]  # worker stopped reading (died or refused)
                    view = view[n:]
                    if not view:
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                try:
                    chunk = os.read(key.fd, _IO)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                if key.fileobj is proc.stdout:
                    out += chunk
                    if len(out) > out_cap:
                        return bytes(out), "output size limit"
                else:
                    # stderr is drained so the worker cannot block on it, and dropped:
                    # tracebacks can quote document content.
                    err_seen += len(chunk)
                    if err_seen > _STDERR_CAP * 16:
                        return bytes(out), "output size limit"
        return bytes(out), ""
    finally:
        sel.close()


def _parse(raw: bytes, started: float) -> ExtractionResult:
    try:
        doc: Any = json.loads(raw)
        status = ExtractionStatus(doc["status"])
        pages = doc["pages"]
        if not isinstance(pages, list) or not all(isinstance(p, str) for p in pages):
            raise TypeError("pages")
        fields = {k: doc[k] for k in ("reason", "mime", "kind", "title")}
        if not all(isinstance(v, str) for v in fields.values()):
            raise TypeError("fields")
        truncated = doc["truncated"]
        if not isinstance(truncated, bool):
            raise TypeError("truncated")
    except (ValueError, KeyError, TypeError):
        return _result(ExtractionStatus.FAILED, "worker answer malformed", started)
    return ExtractionResult(
        status=status,
        pages=tuple(pages) if status is ExtractionStatus.OK else (),
        truncated=truncated,
        seconds=time.monotonic() - started,
        **fields,
    )


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - fixed argv: our interpreter, our module
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_child_env(),
        close_fds=True,
        start_new_session=True,  # its own process group: the kill reaches everything
    )


def _run_worker(
    proc: subprocess.Popen[bytes], data: bytes, wall_seconds: float, out_cap: int,
    started: float
) -> tuple[bytes, str, int]:
    """Feed ``data`` to a started worker: (stdout, problem, returncode); the process group
    is killed on any problem and the worker is always reaped."""
    raw, problem = b"", "internal error"
    try:
        raw, problem = _pump(proc, data, started + wall_seconds, out_cap)
    finally:
        if problem:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        try:
            returncode = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            returncode = proc.wait()
    return raw, problem, returncode


def extract_text(
    data: bytes, *, filename: str = "", limits: ExtractionLimits = DEFAULT_LIMITS
) -> ExtractionResult:
    """Extract the text of ``data`` in a limited worker subprocess.

    Blocking (up to ``limits.wall_seconds`` plus a moment to reap the worker);
    from async code call it through ``anyio.to_thread.run_sync``. ``filename`` is
    only used for its extension (a ``.txt`` that libmagic calls binary still gets
    the text extractor's binary check). Never raises for bad content.
    """
    started = time.monotonic()
    if not data:
        return _result(ExtractionStatus.FAILED, "empty file", started)
    if len(data) > limits.max_input_bytes:
        return _result(ExtractionStatus.LIMIT, "input larger than the limit", started)
    params = json.dumps({"suffix": _suffix(filename), "limits": limits.to_json()})
    out_cap = 6 * limits.max_output_chars + (1 << 20)  # JSON escapes: <= 6 bytes/char
    raw, problem, returncode = _run_worker(
        _spawn([sys.executable, "-I", "-c", _BOOT, _PACKAGE_ROOT, params]),
        data, limits.wall_seconds, out_cap, started)
    if problem:
        return _result(ExtractionStatus.LIMIT, problem, started)
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        # SIGXCPU: our CPU limit; SIGKILL without us: the hard CPU limit or the OOM killer.
        return _result(ExtractionStatus.LIMIT, "cpu time or memory limit", started)
    if returncode < 0:
        return _result(ExtractionStatus.FAILED, f"worker killed by signal {-returncode}", started)
    if returncode != 0:
        # Usually a MemoryError outside our handler (the interpreter itself ran dry).
        return _result(ExtractionStatus.FAILED, "worker exited with an error", started)
    return _parse(raw, started)


def sniff_mime(prefix: bytes, *, limits: ExtractionLimits = SNIFF_LIMITS) -> str:
    """The media type libmagic gives the first ``SNIFF_BYTES`` of a file, sniffed in a
    limited worker process (libmagic parses untrusted bytes: not in the server). Blocking;
    ``application/octet-stream`` when it cannot tell or anything goes wrong. A worker serves
    one file only; the next one is started ahead, so an upload waits for its answer (a few
    ms), not for an interpreter and libmagic to start (~60 ms)."""
    started = time.monotonic()
    data = prefix[:SNIFF_BYTES]
    if not data:
        return UNKNOWN_MIME
    params = json.dumps({"memory_bytes": limits.memory_bytes,
                         "cpu_seconds": limits.cpu_seconds, "max_bytes": SNIFF_BYTES})
    proc = _SPARES.take([sys.executable, "-I", _SNIFF_SCRIPT, params])
    raw, problem, returncode = _run_worker(proc, data, limits.wall_seconds, 4096, started)
    if problem or returncode != 0:
        return UNKNOWN_MIME
    try:
        mime = json.loads(raw)["mime"]
    except (ValueError, KeyError, TypeError):
        return UNKNOWN_MIME
    return mime if isinstance(mime, str) and _MIME_RE.fullmatch(mime) else UNKNOWN_MIME


class _Spares:
    """One sniffer per argv, started ahead of need: it applies its limits, loads libmagic
    and waits on stdin. Taken for one file and replaced at once, so no process ever sees
    two files (what one hostile file does to it cannot touch the next). A spare whose
    server goes away reads end-of-file and exits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready: dict[tuple[str, ...], subprocess.Popen[bytes]] = {}
        atexit.register(self.close)

    def take(self, argv: list[str]) -> subprocess.Popen[bytes]:
        key = tuple(argv)
        with self._lock:
            proc = self._ready.pop(key, None)
        # The replacement starts beside this file's work, not before it: forking a large
        # server process is itself a few milliseconds.
        threading.Thread(target=self._refill, args=(key,), daemon=True).start()
        if proc is None or proc.poll() is not None:
            if proc is not None:
                _close_spare(proc)
            proc = _spawn(argv)
        return proc

    def _refill(self, key: tuple[str, ...]) -> None:
        with self._lock:
            if key in self._ready:
                return
            self._ready[key] = _spawn(list(key))

    def close(self) -> None:
        with self._lock:
            procs, self._ready = list(self._ready.values()), {}
        for proc in procs:
            _close_spare(proc)


def _close_spare(proc: subprocess.Popen[bytes]) -> None:
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None:
            with contextlib.suppress(OSError):
                f.close()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - it exits on end-of-file
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


_SPARES = _Spares()


async def sniff_mime_async(prefix: bytes, *, limits: ExtractionLimits = SNIFF_LIMITS) -> str:
    """``sniff_mime`` in a worker thread, for upload handlers."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(lambda: sniff_mime(prefix, limits=limits))


async def extract_text_async(
    data: bytes, *, filename: str = "", limits: ExtractionLimits = DEFAULT_LIMITS
) -> ExtractionResult:
    """``extract_text`` in a worker thread, for the app's async indexing worker."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(
        lambda: extract_text(data, filename=filename, limits=limits)
    )
