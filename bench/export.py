"""Group export in constant memory: a group of SIZE bytes of files (plus a few notes) exported
through ``GET /api/v1/groups/{gid}/export`` while the server's resident memory is sampled,
for each size given. The growth must not follow the size (issue 14: "a 2 GiB group exports
in constant memory"); the throughput is set beside a plain download of the same bytes.

    python -m bench export [--sizes 256M,2G] [--file-size 256M] [--work-dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.files import MIB, RESULTS_DIR, RssMonitor, human, mb_per_s, parse_size
from tests.live import LiveServer

GOAL_RSS_GROWTH = 64 * MIB
NOTES = 20


def random_body(size: int, boundary: str, name: str) -> tuple[Iterator[bytes], int]:
    """A one-file multipart body of ``size`` random bytes, made as it is sent (no source file
    on disk), and its length."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        for index in range(0, size, MIB):
            yield os.urandom(min(MIB, size - index))
        yield tail

    return body(), len(head) + size + len(tail)


@dataclass
class ExportResult:
    size: int
    files: int
    notes: int
    archive_bytes: int
    seconds: float
    export_mb_s: float
    download_mb_s: float
    rss_idle: int
    rss_peak: int
    rss_growth: int


def fill_group(http: httpx.Client, csrf: str, folder: str, size: int, file_size: int) -> int:
    files = 0
    left = size
    while left > 0:
        this = min(file_size, left)
        boundary = "bench" + uuid.uuid4().hex
        body, length = random_body(this, boundary, f"file-{files}.bin")
        response = http.post(f"/api/v1/folders/{folder}/files", content=body, headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(length), "X-CSRF-Token": csrf})
        if response.status_code != 201:
            raise RuntimeError(f"upload failed: {response.status_code} {response.text[:200]}")
        files += 1
        left -= this
    for n in range(NOTES):
        text = "\n\n".join(f"## Section {i}\n\nSome text of note {n}, paragraph {i}."
                           for i in range(50))
        response = http.post(f"/api/v1/folders/{folder}/notes", json={
            "title": f"Note {n}", "text": text, "format": "markdown"},
            headers={"X-CSRF-Token": csrf})
        if response.status_code != 201:
            raise RuntimeError(f"note failed: {response.status_code} {response.text[:200]}")
    return files


def export(http: httpx.Client, gid: str, keep: Path | None) -> tuple[float, int]:
    """Seconds and bytes of one export, read as it comes (kept on disk only with --keep)."""
    size = 0
    started = time.perf_counter()
    sink = keep.open("wb") if keep else None
    try:
        with http.stream("GET", f"/api/v1/groups/{gid}/export") as response:
            if response.status_code != 200:
                raise RuntimeError(f"export failed: {response.status_code}")
            for chunk in response.iter_raw(MIB):
                size += len(chunk)
                if sink:
                    sink.write(chunk)
    finally:
        if sink:
            sink.close()
    return time.perf_counter() - started, size


def download_all(http: httpx.Client, folder: str) -> tuple[float, int]:
    listing = http.get(f"/api/v1/folders/{folder}").json()
    size = 0
    started = time.perf_counter()
    for child in listing["documents"]:
        if child.get("kind") != "file":
            continue
        with http.stream("GET", f"/api/v1/documents/{child['id']}/content") as response:
            for chunk in response.iter_raw(MIB):
                size += len(chunk)
    return time.perf_counter() - started, size


def run(sizes: list[int], file_size: int, work_dir: Path, keep: bool) -> list[ExportResult]:
    results = []
    for size in sorted(sizes):
        data_dir = work_dir / f"data-{size}"
        server = LiveServer(data_dir)
        server.start()
        try:
            assert server.proc is not None
            client = server.client()
            client.sign_up("Bench")
            http = httpx.Client(base_url=server.url, timeout=3600, cookies=client.http.cookies)
            csrf = client.csrf or ""
            group = http.post("/api/v1/groups", json={"name": "Bench", "access": "closed"},
                              headers={"X-CSRF-Token": csrf}).json()
            folder = group["root_folder_id"]
            files = fill_group(http, csrf, folder, size, file_size)
            down_seconds, down_bytes = download_all(http, folder)
            idle = RssMonitor(server.proc.pid).rss()
            monitor = RssMonitor(server.proc.pid)
            monitor.start()
            target = work_dir / f"export-{size}.zip" if keep else None
            seconds, archive_bytes = export(http, group["id"], target)
            peak = monitor.stop()
            if target is not None:
                with zipfile.ZipFile(target) as zf:
                    json.loads(zf.read("manifest.json"))
            results.append(ExportResult(
                size=size, files=files, notes=NOTES, archive_bytes=archive_bytes,
                seconds=seconds, export_mb_s=mb_per_s(archive_bytes, seconds),
                download_mb_s=mb_per_s(down_bytes, down_seconds), rss_idle=idle,
                rss_peak=peak, rss_growth=peak - idle))
            http.close()
            client.close()
        finally:
            server.stop()
            if not keep:
                shutil.rmtree(data_dir, ignore_errors=True)
    return results


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench export")
    parser.add_argument("--sizes", default="256M,2G")
    parser.add_argument("--file-size", default="256M")
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    work_dir = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        results = run(sizes, parse_size(args.file_size), work_dir, args.keep)
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    buffer = io.StringIO()
    for r in results:
        print(f"{human(r.size)} in {r.files} files + {r.notes} notes: archive "
              f"{r.archive_bytes / MIB:.0f} MiB in {r.seconds:.1f} s = {r.export_mb_s:.0f} MiB/s "
              f"(plain download of the files: {r.download_mb_s:.0f} MiB/s, ratio "
              f"{r.export_mb_s / r.download_mb_s:.2f}); server RSS idle "
              f"{r.rss_idle / MIB:.0f} MiB, peak {r.rss_peak / MIB:.0f} MiB, growth "
              f"{r.rss_growth / MIB:.1f} MiB (goal < {GOAL_RSS_GROWTH // MIB} MiB)",
              file=buffer)
    print(buffer.getvalue(), end="")
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"export-{stamp}.json").write_text(json.dumps(
        [asdict(r) for r in results], indent=2))
    ok = all(r.rss_growth < GOAL_RSS_GROWTH for r in results)
    print("constant memory: " + ("yes" if ok else "NO"))
    return 0 if ok else 1
