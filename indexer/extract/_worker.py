"""The extraction worker: runs in its own process, never in the server.

Protocol: argv[1] = JSON ``{"suffix": ..., "limits": {...}}`` (no file name, no
content); the file's bytes arrive on stdin; one JSON object goes to stdout.
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

__all__ = ["extract_in_process", "main"]

_TEXT_SUFFIXES = frozenset({"txt", "text", "md", "markdown", "csv", "tsv", "log"})
_HTML_MIMES = frozenset({"text/html", "application/xhtml+xml"})
_ZIP_MIMES = frozenset({"application/zip", "application/x-zip-compressed"})
_NOT_TEXT = frozenset({"text/xml", "image/svg+xml", "text/rtf"})


def apply_limits(limits: ExtractionLimits) -> None:
    def cap(which: int, value: int) -> None:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else hard))

    cap(resource.RLIMIT_AS, limits.memory_bytes)
    # Soft CPU limit -> SIGXCPU (kills us: no handler); the parent also has a wall clock.
    cap(resource.RLIMIT_CPU, limits.cpu_seconds)
    cap(resource.RLIMIT_FSIZE, 0)
    cap(resource.RLIMIT_CORE, 0)


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


def main(argv: list[str]) -> int:
    params = json.loads(argv[1])
    limits = ExtractionLimits.from_json(params["limits"])
    apply_limits(limits)
    # Parser warnings and log lines can quote document content: never emit them.
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    data = sys.stdin.buffer.read(limits.max_input_bytes + 1)
    result = extract_in_process(data, str(params.get("suffix", "")), limits)
    out = json.dumps(_result_json(result), ensure_ascii=False).encode("utf-8")
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
