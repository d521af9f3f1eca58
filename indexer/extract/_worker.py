"""The extraction worker: runs in its own process, never in the server.

A long-lived worker of the pool (``_pool``): argv[1] = JSON ``{"limits": {...},
"max_jobs": N}``. Per job, one header line ``{"op": "extract"|"sniff", "suffix": ...,
"size": n}`` (no file name, no content), then the ``n`` bytes of the file; one JSON line
goes back. End-of-file on stdin ends the worker.
Plaintext never touches disk: RLIMIT_FSIZE = 0 makes any file write fail and
RLIMIT_CORE = 0 keeps a crash from dumping memory (= document text) to a core file.

The limits are applied first, before stdin is read or a parser is imported, so
everything that touches untrusted bytes (libmagic included) runs under them.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
import warnings
from typing import Any

from indexer.extract._common import Budget, LimitExceeded, NotExtractable, OutputFull
from indexer.extract._result import ExtractionLimits, ExtractionResult, ExtractionStatus

__all__ = ["extract_in_process", "serve"]

_TEXT_SUFFIXES = frozenset({"txt", "text", "md", "markdown", "csv", "tsv", "log"})
_HTML_MIMES = frozenset({"text/html", "application/xhtml+xml"})
_ZIP_MIMES = frozenset({"application/zip", "application/x-zip-compressed"})
_NOT_TEXT = frozenset({"text/xml", "image/svg+xml", "text/rtf"})


def apply_limits(limits: ExtractionLimits, *, jobs: int = 1) -> None:
    """Address space, no file writes, no core dumps; CPU: ``cpu_seconds`` now (soft) and,
    as the hard limit, enough for ``jobs`` jobs (see ``allow_cpu_for_next_job``)."""
    def cap(which: int, soft: int, hard: int) -> None:
        _soft, old_hard = resource.getrlimit(which)
        if old_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, old_hard), min(hard, old_hard)
        resource.setrlimit(which, (soft, hard))

    cap(resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes)
    # Soft CPU limit -> SIGXCPU (kills us: no handler); the parent also has a wall clock.
    cap(resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds * (jobs + 1))
    cap(resource.RLIMIT_FSIZE, 0, 0)
    cap(resource.RLIMIT_CORE, 0, 0)


def allow_cpu_for_next_job(limits: ExtractionLimits) -> None:
    """RLIMIT_CPU counts the process's whole life: move the soft limit to what this worker
    has used so far plus one job's allowance (never past the hard limit)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + limits.cpu_seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _sniff(data: bytes) -> str:
    import magic

    try:
        mime: str = magic.from_buffer(data[: 1 << 20], mime=True)
    except Exception:  # libmagic errors on odd input: treat as unknown, not fatal
        return "application/octet-stream"
    return mime.split(";")[0].strip().lower()


def _extract(
    data: bytes, mime: str, suffix: str, limits: ExtractionLimits, budget: Budget
) -> tuple[str, str]:
    """Run the right extractor; return (kind, title). Raises the _common exceptions."""
    if mime == "application/pdf" or data[:1024].lstrip().startswith(b"%PDF-"):
        from indexer.extract._pdf import extract_pdf

        return "pdf", extract_pdf(data, budget, limits)
    if data.startswith(b"PK\x03\x04") or mime in _ZIP_MIMES or mime.startswith(
        ("application/vnd.openxmlformats", "application/vnd.oasis.opendocument")
    ):
        from indexer.extract._office import extract_office

        return extract_office(data, budget, limits), ""
    if mime in _HTML_MIMES:
        from indexer.extract._html import extract_html

        return "html", extract_html(data, budget)
    if (mime.startswith("text/") and mime not in _NOT_TEXT) or suffix in _TEXT_SUFFIXES:
        # A .txt that libmagic calls binary still goes here: the binary check in
        # decode_text then refuses it (metadata only) instead of indexing garbage.
        from indexer.extract._text import extract_plain

        extract_plain(data, budget)
        return "text", ""
    raise _Unsupported(mime)


class _Unsupported(Exception):
    pass


def _office_mime(kind: str) -> str:
    from indexer.extract._office import OFFICE_MIMES

    return OFFICE_MIMES.get(kind, "")


def extract_in_process(data: bytes, suffix: str, limits: ExtractionLimits) -> ExtractionResult:
    """Extraction without a subprocess. Only the worker (and tests of it) may call this."""
    started = time.monotonic()
    budget = Budget(limits.max_output_chars)
    kind = title = ""
    status, reason = ExtractionStatus.OK, ""
    mime = _sniff(data)
    try:
        kind, title = _extract(data, mime, suffix, limits, budget)
    except OutputFull:
        pass  # keep what fits; budget.truncated says so
    except _Unsupported:
        status, reason = ExtractionStatus.UNSUPPORTED, "no extractor for this type"
    except LimitExceeded as exc:
        status, reason = ExtractionStatus.LIMIT, str(exc)
    except NotExtractable as exc:
        status, reason = ExtractionStatus.FAILED, str(exc)
    except MemoryError:
        status, reason = ExtractionStatus.LIMIT, "memory limit"
    except RecursionError:
        status, reason = ExtractionStatus.FAILED, "nesting too deep"
    except Exception as exc:  # any parser bug on hostile input is that file's failure
        status, reason = ExtractionStatus.FAILED, f"extractor error ({type(exc).__name__})"
    pages: tuple[str, ...] = ()
    if status is ExtractionStatus.OK:
        # Lone surrogates (from broken PDF text) cannot be UTF-8 encoded on the way out.
        pages = tuple(
            p.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
            for p in budget.finish()
        )
    return ExtractionResult(
        status=status,
        reason=reason,
        mime=_office_mime(kind) or mime,
        kind=kind,
        pages=pages,
        title=title,
        truncated=budget.truncated and status is ExtractionStatus.OK,
        seconds=time.monotonic() - started,
    )


def _result_json(result: ExtractionResult) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "reason": result.reason,
        "mime": result.mime,
        "kind": result.kind,
        "pages": list(result.pages),
        "title": result.title,
        "truncated": result.truncated,
    }


def _read_exactly(stream: Any, size: int) -> bytes:
    parts: list[bytes] = []
    while size > 0:
        chunk = stream.read(min(size, 1 << 20))
        if not chunk:
            raise EOFError
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)


def sniff(data: bytes) -> str:
    """libmagic's media type for an upload's first bytes ("" when it cannot tell)."""
    import magic

    try:
        mime = str(magic.from_buffer(data, mime=True)) if data else ""
    except Exception:  # libmagic errors on odd input: unknown, not fatal
        mime = ""
    return mime.split(";")[0].strip().lower()


def serve(argv: list[str]) -> int:
    """The pooled worker's loop: limits first, parsers loaded once, then job after job."""
    params = json.loads(argv[1])
    limits = ExtractionLimits.from_json(params["limits"])
    apply_limits(limits, jobs=int(params.get("max_jobs", 1)))
    # Parser warnings and log lines can quote document content: never emit them.
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    import magic  # noqa: F401 - loaded before the first job, under the limits
    import pypdf  # noqa: F401

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = stdin.readline(4096)
        if not header:
            return 0
        job = json.loads(header)
        size = int(job["size"])
        if not 0 <= size <= limits.max_input_bytes:
            return 2  # the parent checks sizes first: this is not our parent talking
        try:
            data = _read_exactly(stdin, size)
        except EOFError:
            return 0
        allow_cpu_for_next_job(limits)
        answer: dict[str, Any]
        if job.get("op") == "sniff":
            answer = {"mime": sniff(data)}
        else:
            answer = _result_json(extract_in_process(data, str(job.get("suffix", "")), limits))
        stdout.write(json.dumps(answer, ensure_ascii=False).encode("utf-8") + b"\n")
        stdout.flush()
