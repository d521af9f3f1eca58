"""Text extraction from untrusted files, in a pool of resource-limited worker processes.

Public face::

    extract_text(data, *, filename="", limits=DEFAULT_LIMITS) -> ExtractionResult
    extract_text_async(...)                       (same, off the event loop)
    sniff_mime(prefix) -> str, sniff_mime_async   (libmagic on SNIFF_BYTES, in a worker)
    configure_workers(workers=, max_jobs=)        (the pool of long-lived limited workers)
    ExtractionResult(status, reason, mime, kind, pages, title, truncated, seconds)
    ExtractionStatus: ok | failed | limit | unsupported
    ExtractionLimits(memory_bytes, cpu_seconds, wall_seconds, max_input_bytes,
                     max_output_chars, max_pages, zip_max_entries, zip_max_total_bytes,
                     zip_max_entry_bytes, zip_max_ratio)

Types: PDF (per page), plain text / Markdown / CSV, HTML, DOCX / PPTX (per slide) /
XLSX, ODT / ODS / ODP. The type is sniffed from the bytes (python-magic) inside
the worker. A non-ok result carries no text: the caller indexes metadata only.
"""

from indexer.extract._result import ExtractionLimits, ExtractionResult, ExtractionStatus
from indexer.extract._runner import (
    DEFAULT_LIMITS,
    SNIFF_BYTES,
    configure_workers,
    extract_text,
    extract_text_async,
    sniff_mime,
    sniff_mime_async,
)

__all__ = [
    "DEFAULT_LIMITS",
    "ExtractionLimits",
    "ExtractionResult",
    "ExtractionStatus",
    "SNIFF_BYTES",
    "configure_workers",
    "extract_text",
    "extract_text_async",
    "sniff_mime",
    "sniff_mime_async",
]
