"""Plain text, Markdown and CSV: encoding detection and a binary check."""

from __future__ import annotations

import codecs

from indexer.extract._common import Budget, NotExtractable

__all__ = ["decode_text", "extract_plain"]

# Bytes that do not occur in text files: NUL and C0 controls other than
# tab/LF/VT/FF/CR/ESC. A few are tolerated (stray control codes in old files).
_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1B}
_SAMPLE = 1 << 16
_MAX_CONTROL_RATIO = 0.02


def _looks_binary(data: bytes) -> bool:
    sample = data[:_SAMPLE]
    if not sample:
        return False
    bad = sum(1 for b in sample if b in _CONTROL)
    return bad / len(sample) > _MAX_CONTROL_RATIO


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding, or raise NotExtractable for binary data.

    Order: a BOM decides (UTF-8, UTF-16 LE/BE); then the binary check (UTF-16
    without a BOM is not accepted: it is indistinguishable from binary by this
    check and rare in practice); then strict UTF-8; then strict cp1252 (what
    Dutch Windows machines write); latin-1 last, which never fails.
    """
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", "replace")
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom) :].decode(codec, "replace")
    if _looks_binary(data):
        raise NotExtractable("binary content in a text file")
    for codec in ("utf-8", "cp1252"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def extract_plain(data: bytes, budget: Budget) -> None:
    budget.add(decode_text(data).replace("\x00", ""))
