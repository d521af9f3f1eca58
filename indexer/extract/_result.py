"""Value types shared by the parent (``extract_text``) and the worker subprocess."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["ExtractionLimits", "ExtractionResult", "ExtractionStatus"]

MIB = 1 << 20


class ExtractionStatus(StrEnum):
    OK = "ok"  # text extracted (possibly truncated at the output cap: see ``truncated``)
    FAILED = "failed"  # broken, encrypted, binary-in-a-.txt, empty, worker crashed
    LIMIT = "limit"  # a memory/CPU/wall-clock/size/page/zip-bomb limit was hit
    UNSUPPORTED = "unsupported"  # a type we do not extract (images, archives, ...)


@dataclass(frozen=True, slots=True)
class ExtractionLimits:
    """Resource limits of one extraction; the defaults suit a 2-CPU server.

    ``memory_bytes`` is RLIMIT_AS (address space, not RSS): the interpreter and
    libmagic alone map ~60 MiB, so values below ~128 MiB fail every file.
    """

    memory_bytes: int = 512 * MIB
    cpu_seconds: int = 20
    wall_seconds: float = 30.0
    max_input_bytes: int = 200 * MIB
    max_output_chars: int = 4_000_000  # ~ 2,000 dense pages; more is truncated, not refused
    max_pages: int = 5_000
    zip_max_entries: int = 10_000
    zip_max_total_bytes: int = 1024 * MIB  # declared uncompressed size of the whole archive
    zip_max_entry_bytes: int = 128 * MIB  # one XML part actually decompressed
    zip_max_ratio: int = 200  # per entry, checked for entries above 1 MiB uncompressed

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ExtractionLimits:
        return cls(**{k: type(getattr(cls(), k))(v) for k, v in raw.items()})


@dataclass(frozen=True, slots=True)
class ExtractionResult:
    """What one file yielded. ``pages`` is empty unless ``status`` is OK.

    ``pages[i]`` is page/slide/sheet ``i + 1`` (PDF, PPTX) or the whole text (one
    element) for formats without pages. ``reason`` is a fixed phrase plus at most an
    exception *class* name: never a parser message, which can quote file content.
    """

    status: ExtractionStatus
    reason: str = ""
    mime: str = ""
    kind: str = ""
    pages: tuple[str, ...] = ()
    title: str = ""
    truncated: bool = False
    seconds: float = field(default=0.0, compare=False)

    @property
    def ok(self) -> bool:
        return self.status is ExtractionStatus.OK

    @property
    def text(self) -> str:
        return "\n\n".join(self.pages)
