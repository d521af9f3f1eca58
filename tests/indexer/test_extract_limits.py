"""Hostile and broken inputs: each ends within its limits, without text, parent alive.

The parent process (this test process) surviving every case is the point: each
test goes on to make another extraction after the hostile one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest

from indexer import ExtractionLimits, ExtractionStatus, extract_text
from indexer.extract import _runner
from indexer.extract._worker import extract_in_process
from tests.indexer import samples

BAD = (ExtractionStatus.LIMIT, ExtractionStatus.FAILED)


def _still_works() -> None:
    assert extract_text(b"nog steeds in leven", filename="a.txt").status is ExtractionStatus.OK


@pytest.fixture(scope="module")
def zip_bomb() -> bytes:
    return samples.make_zip_bomb(300 << 20)  # 300 MiB of "a" in ~300 KiB


def test_zip_bomb_refused_before_reading(zip_bomb: bytes) -> None:
    result = extract_text(zip_bomb, filename="bom.docx")
    assert result.status is ExtractionStatus.LIMIT
    assert "ratio" in result.reason and result.pages == ()
    _still_works()


def test_zip_bomb_with_lying_headers_stopped_while_inflating(zip_bomb: bytes) -> None:
    liar = samples.lie_about_sizes(zip_bomb, "word/document.xml", 1000)
    result = extract_text(liar, filename="bom.docx")
    assert result.status in BAD and result.pages == ()
    _still_works()


def test_zip_total_and_entry_caps() -> None:
    docx = samples.make_docx(["tekst " * 50_000])
    limits = ExtractionLimits(zip_max_total_bytes=10_000)
    assert extract_text(docx, limits=limits).status is ExtractionStatus.LIMIT
    limits = ExtractionLimits(zip_max_entry_bytes=10_000)
    assert extract_text(docx, limits=limits).status is ExtractionStatus.LIMIT
    limits = ExtractionLimits(zip_max_entries=1)
    assert extract_text(docx, limits=limits).status is ExtractionStatus.LIMIT


def test_xml_entity_expansion_refused() -> None:
    laughs = (b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">'
              b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
              b'<w:document xmlns:w="w"><w:body><w:p><w:t>&b;</w:t></w:p></w:body></w:document>')
    result = extract_text(samples.make_docx_raw(laughs))
    assert result.status is ExtractionStatus.FAILED and "DTD" in result.reason


def test_pdf_stream_inflating_past_the_limit() -> None:
    started = time.monotonic()
    result = extract_text(samples.make_pdf_inflating(100 << 20), filename="groot.pdf")
    assert result.status is ExtractionStatus.LIMIT and result.pages == ()
    assert time.monotonic() - started < 10
    _still_works()


def test_pdf_reference_loop() -> None:
    result = extract_text(samples.make_pdf_loop(), filename="lus.pdf")
    assert result.status in BAD and result.pages == ()


def test_truncated_pdf() -> None:
    pdf = samples.make_pdf(["eerste", "tweede", "derde"])
    result = extract_text(pdf[: len(pdf) // 3], filename="kapot.pdf")
    assert result.status in BAD and result.pages == ()


def test_huge_page_count_pdf() -> None:
    result = extract_text(samples.make_pdf_many_pages(3000),
                          limits=ExtractionLimits(max_pages=1000))
    assert result.status is ExtractionStatus.LIMIT and "page count" in result.reason


def test_empty_file() -> None:
    result = extract_text(b"", filename="leeg.txt")
    assert result.status is ExtractionStatus.FAILED and result.pages == ()


def test_binary_named_txt() -> None:
    result = extract_text(os.urandom(4096) + bytes(range(32)) * 64, filename="notitie.txt")
    assert result.status is ExtractionStatus.FAILED and "binary" in result.reason


def test_input_size_cap_is_checked_before_spawning() -> None:
    result = extract_text(b"x" * 2000, limits=ExtractionLimits(max_input_bytes=1000))
    assert result.status is ExtractionStatus.LIMIT


def test_wall_clock_kill() -> None:
    started = time.monotonic()
    result = extract_text(samples.make_pdf(["a"]), limits=ExtractionLimits(wall_seconds=0.01))
    assert result.status is ExtractionStatus.LIMIT and result.reason == "wall-clock limit"
    assert time.monotonic() - started < 5
    _still_works()


def _boot(body: str) -> str:
    # A worker whose "extractor" is ``body``, under the real apply_limits().
    return (
        "import sys, json; sys.path.insert(0, sys.argv.pop(1))\n"
        "from indexer.extract._worker import apply_limits\n"
        "from indexer.extract._result import ExtractionLimits\n"
        "apply_limits(ExtractionLimits.from_json(json.loads(sys.argv[1])['limits']))\n"
        + body
    )


def test_cpu_limit_kills_a_spinning_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_runner, "_BOOT", _boot("while True: pass\n"))
    started = time.monotonic()
    result = extract_text(b"x", limits=ExtractionLimits(cpu_seconds=1, wall_seconds=20))
    assert result.status is ExtractionStatus.LIMIT and "cpu" in result.reason
    assert time.monotonic() - started < 10


def test_memory_limit_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    body = (
        "try:\n    b = bytearray(1 << 30)\n    print(json.dumps({'got': len(b)}))\n"
        "except MemoryError:\n    sys.exit(3)\n"
    )
    monkeypatch.setattr(_runner, "_BOOT", _boot(body))
    result = extract_text(b"x", limits=ExtractionLimits(memory_bytes=256 << 20))
    assert result.status is ExtractionStatus.FAILED and "exited" in result.reason


def test_worker_cannot_write_files(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    target = f"{tmp_path}/leak.txt"
    body = (
        f"try:\n    open({target!r}, 'w').write('geheim' * 1000)\n    sys.exit(0)\n"
        "except OSError:\n    sys.exit(4)\n"
    )
    monkeypatch.setattr(_runner, "_BOOT", _boot(body))
    result = extract_text(b"x")
    assert result.status is ExtractionStatus.FAILED
    assert not os.path.exists(target) or os.path.getsize(target) == 0


def test_oversized_answer_is_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_runner, "_BOOT", _boot("sys.stdout.write('x' * (4 << 20))\n"))
    result = extract_text(b"x", limits=ExtractionLimits(max_output_chars=1000))
    assert result.status is ExtractionStatus.LIMIT and "output" in result.reason


def test_garbled_answer_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_runner, "_BOOT", _boot("print(json.dumps({'status': 'ok'}))\n"))
    assert extract_text(b"x").status is ExtractionStatus.FAILED


def test_reasons_never_quote_file_content() -> None:
    # pypdf's messages quote raw bytes; our reasons carry class names only.
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages zwaluwgeheim >> endobj\ntrailer"
    result = extract_in_process(pdf, "pdf", ExtractionLimits())
    assert result.status in BAD
    assert "zwaluw" not in json.dumps(result.reason)


# -- the pool of long-lived workers (issue 12) ----------------------------------------------

def _idle_extractors() -> list[int]:
    from indexer.extract import DEFAULT_LIMITS, _pool

    return [w.proc.pid for key, idle in _pool._POOL._idle.items()
            if json.loads(key[-1])["limits"] == DEFAULT_LIMITS.to_json() for w in idle]


@pytest.fixture
def small_pool() -> Iterator[None]:
    from indexer.extract import _pool

    _pool.shutdown()
    _pool.configure(workers=1, max_jobs=3)
    yield
    _pool.shutdown()
    _pool.configure(workers=2, max_jobs=200)


def test_a_worker_serves_several_files_then_is_replaced(small_pool: None) -> None:
    seen = []
    for _ in range(6):
        _still_works()
        seen.append(tuple(_idle_extractors()))
    first, second = seen[0], seen[3]
    assert len(first) == 1 and len(second) == 1 and first != second
    # Reused for its 2nd file, retired after its 3rd (max_jobs), a fresh one from the 4th.
    assert seen == [first, first, (), second, second, ()]


def test_a_worker_that_hits_a_limit_is_replaced(small_pool: None, zip_bomb: bytes) -> None:
    _still_works()
    before = _idle_extractors()
    assert len(before) == 1
    assert extract_text(zip_bomb, filename="bom.docx").status is ExtractionStatus.LIMIT
    assert _idle_extractors() == []  # killed, not put back
    _still_works()
    after = _idle_extractors()
    assert len(after) == 1 and after != before
