"""Zip reading with bomb checks before and while decompressing.

Checked before any entry is read: entry count, the total declared uncompressed
size, and each entry's compression ratio. Headers can lie (the central directory
may claim a small size), so every read also counts the bytes actually produced
and stops at the per-entry cap and at the declared size.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from indexer.extract._common import LimitExceeded, NotExtractable
from indexer.extract._result import ExtractionLimits

__all__ = ["SafeZip"]

_RATIO_FLOOR = 1 << 20  # small parts may compress very well legitimately
_READ = 1 << 16


class SafeZip:
    def __init__(self, data: bytes, limits: ExtractionLimits) -> None:
        self._limits = limits
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
            raise NotExtractable("zip: malformed") from None
        if len(infos) > limits.zip_max_entries:
            raise LimitExceeded("zip: too many entries")
        total = 0
        for info in infos:
            total += info.file_size
            if info.file_size > _RATIO_FLOOR and (
                info.compress_size <= 0
                or info.file_size / info.compress_size > limits.zip_max_ratio
            ):
                raise LimitExceeded("zip: compression ratio above the limit")
        if total > limits.zip_max_total_bytes:
            raise LimitExceeded("zip: declared uncompressed size above the limit")
        self._infos = {i.filename: i for i in infos}
        self.read_total = 0

    def names(self) -> list[str]:
        return list(self._infos)

    def read(self, name: str, *, max_bytes: int | None = None) -> bytes:
        info = self._infos.get(name)
        if info is None:
            raise NotExtractable("zip: missing part")
        cap = self._limits.zip_max_entry_bytes if max_bytes is None else max_bytes
        if info.file_size > cap:
            raise LimitExceeded("zip: entry larger than the limit")
        out = bytearray()
        try:
            with self._zip.open(info) as stream:
                while chunk := stream.read(_READ):
                    out += chunk
                    self.read_total += len(chunk)
                    # zipfile already stops at the declared size; these are the caps
                    # that hold even if that check ever changes.
                    if len(out) > min(cap, info.file_size):
                        raise LimitExceeded("zip: entry inflates past its declared size")
                    if self.read_total > self._limits.zip_max_total_bytes:
                        raise LimitExceeded("zip: total inflated size above the limit")
        except (
            zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError, OSError
        ):
            # RuntimeError: encrypted entry; NotImplementedError: unknown compression.
            raise NotExtractable("zip: entry unreadable") from None
        return bytes(out)
