"""The parent side of extraction: hand the bytes to a pooled worker, read back its answer.

The parent never parses the file (not even libmagic runs here); it only moves bytes over
pipes and reads back one bounded JSON answer. The workers are long-lived and limited
(``_pool``: RLIMITs, ``python -I``, recycled after N jobs or on any limit); the same pool
runs the type sniffer that uploads ask for a file's media type. Anything that goes wrong on
the other side -- a crash, a kill by the CPU limit, a hang, an oversized answer -- becomes an
ExtractionResult, never an exception.
"""

from __future__ import annotations

import json
import re
import signal
import time
from typing import Any

from indexer.extract import _pool
from indexer.extract._result import ExtractionLimits, ExtractionResult, ExtractionStatus

__all__ = [
    "DEFAULT_LIMITS",
    "SNIFF_BYTES",
    "SNIFF_LIMITS",
    "configure_workers",
    "extract_text",
    "extract_text_async",
    "sniff_mime",
    "sniff_mime_async",
]

DEFAULT_LIMITS = ExtractionLimits()
# Sniffing reads a few KiB: libmagic's signatures sit near the start.
SNIFF_BYTES = 8192
SNIFF_LIMITS = ExtractionLimits(memory_bytes=256 * (1 << 20), cpu_seconds=5, wall_seconds=10.0)
UNKNOWN_MIME = "application/octet-stream"
_MIME_RE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}/[a-z0-9][a-z0-9.+-]{0,127}")
_BOOT = _pool.BOOT  # a module attribute, read per job: tests swap in a misbehaving worker
configure_workers = _pool.configure
_MALFORMED = "worker answer malformed"
_SUFFIX_RE = re.compile(r"[a-z0-9]{1,10}")


def _suffix(filename: str) -> str:
    # Only a sanitized extension crosses over: the file name itself is metadata
    # (and may be sensitive), the worker has no use for it.
    ext = filename.rpartition(".")[2].lower() if "." in filename else ""
    return ext if _SUFFIX_RE.fullmatch(ext) else ""


def _result(status: ExtractionStatus, reason: str, started: float) -> ExtractionResult:
    return ExtractionResult(status=status, reason=reason, seconds=time.monotonic() - started)


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
        return _result(ExtractionStatus.FAILED, _MALFORMED, started)
    return ExtractionResult(
        status=status,
        pages=tuple(pages) if status is ExtractionStatus.OK else (),
        truncated=truncated,
        seconds=time.monotonic() - started,
        **fields,
    )


def _judge_extraction(started: float) -> Any:
    def judge(answer: _pool.Answer) -> tuple[ExtractionResult, bool]:
        if answer.problem in ("wall-clock limit", "output size limit"):
            return _result(ExtractionStatus.LIMIT, answer.problem, started), False
        if answer.problem:
            return _result(ExtractionStatus.FAILED, _MALFORMED, started), False
        code = answer.returncode
        if code is not None:
            if code in (-signal.SIGXCPU, -signal.SIGKILL):
                # SIGXCPU: our CPU limit; SIGKILL without us: the hard CPU limit or the OOM
                # killer.
                return _result(ExtractionStatus.LIMIT, "cpu time or memory limit", started), False
            if code < 0:
                return _result(ExtractionStatus.FAILED, f"worker killed by signal {-code}",
                               started), False
            # Usually a MemoryError outside our handler (the interpreter itself ran dry).
            return _result(ExtractionStatus.FAILED, "worker exited with an error", started), False
        result = _parse(answer.raw, started)
        # A worker that hit a limit of its own (memory, a bomb) is replaced too: its heap may
        # be fragmented or near the cap; a malformed answer means it is not our worker's.
        clean = result.status is not ExtractionStatus.LIMIT and result.reason != _MALFORMED
        return result, clean

    return judge


def extract_text(
    data: bytes, *, filename: str = "", limits: ExtractionLimits = DEFAULT_LIMITS
) -> ExtractionResult:
    """Extract the text of ``data`` in a limited, pooled worker process.

    Blocking (up to ``limits.wall_seconds``, plus the wait for a free worker when all are
    busy); from async code call it through ``anyio.to_thread.run_sync``. ``filename`` is
    only used for its extension (a ``.txt`` that libmagic calls binary still gets the text
    extractor's binary check). Never raises for bad content.
    """
    started = time.monotonic()
    if not data:
        return _result(ExtractionStatus.FAILED, "empty file", started)
    if len(data) > limits.max_input_bytes:
        return _result(ExtractionStatus.LIMIT, "input larger than the limit", started)
    out_cap = 6 * limits.max_output_chars + (1 << 20)  # JSON escapes: <= 6 bytes/char
    result: ExtractionResult = _pool.run_job(
        _BOOT, {"limits": limits.to_json()}, {"op": "extract", "suffix": _suffix(filename)},
        data, _judge_extraction(started), wall_seconds=limits.wall_seconds, out_cap=out_cap,
        started=started)
    return result


def _judge_sniff(answer: _pool.Answer) -> tuple[str, bool]:
    if answer.problem or answer.returncode is not None:
        return UNKNOWN_MIME, False
    try:
        mime = json.loads(answer.raw)["mime"]
    except (ValueError, KeyError, TypeError):
        return UNKNOWN_MIME, False
    if mime == "":
        return UNKNOWN_MIME, True
    if not isinstance(mime, str) or not _MIME_RE.fullmatch(mime):
        return UNKNOWN_MIME, False
    return mime, True


def sniff_mime(prefix: bytes, *, limits: ExtractionLimits = SNIFF_LIMITS) -> str:
    """The media type libmagic gives the first ``SNIFF_BYTES`` of a file, sniffed in a
    limited, pooled worker process (libmagic parses untrusted bytes: not in the server).
    Blocking; ``application/octet-stream`` when it cannot tell or anything goes wrong."""
    started = time.monotonic()
    data = prefix[:SNIFF_BYTES]
    if not data:
        return UNKNOWN_MIME
    mime: str = _pool.run_job(
        _BOOT, {"limits": limits.to_json()}, {"op": "sniff"}, data, _judge_sniff,
        wall_seconds=limits.wall_seconds, out_cap=4096, started=started)
    return mime


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
