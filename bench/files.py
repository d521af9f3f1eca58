"""Upload/download throughput of encrypted files through the HTTP API, next to what the
machine can do without Plein: a raw copy of the same bytes on the same disk (write + fsync,
like ``dd conv=fsync``) and raw AES-256-GCM over 64 KiB chunks. Also the server's memory
while it takes the largest upload (it must stream, not buffer).

Goals (SECURITY.md, "Figures to report"): upload and download ≥ 50 % of the raw copy;
server RSS growth during an upload < 64 MiB.

    python -m bench files [--sizes 1M,100M,1G] [--work-dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.live import Client, LiveServer

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MIB = 1024 * 1024
IO_CHUNK = MIB
UNITS = {"K": 1024, "M": MIB, "G": 1024 * MIB}
GOAL_RATIO = 0.5
GOAL_RSS_GROWTH = 64 * MIB


def parse_size(text: str) -> int:
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in UNITS:
        return int(float(text[:-1]) * UNITS[text[-1]])
    return int(text)


def human(size: int) -> str:
    for unit, factor in (("GiB", 1024 * MIB), ("MiB", MIB), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def mb_per_s(size: int, seconds: float) -> float:
    return size / MIB / seconds if seconds > 0 else float("inf")


# -- the machine's own figures ------------------------------------------------------------

def make_source(path: Path, size: int) -> str:
    sha = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(IO_CHUNK, left))
            sha.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return sha.hexdigest()


def raw_copy(src: Path, dst: Path) -> float:
    """Seconds to copy ``src`` to ``dst`` and fsync it (what ``dd bs=1M conv=fsync`` does)."""
    started = time.perf_counter()
    with src.open("rb", buffering=0) as fin:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while chunk := fin.read(IO_CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    elapsed = time.perf_counter() - started
    dst.unlink()
    return elapsed


def aes_gcm_throughput(total: int = 256 * MIB, chunk: int = 64 * 1024) -> float:
    """MB/s of AES-256-GCM sealing 64 KiB chunks on one core (the blob format's unit)."""
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    data = os.urandom(chunk)
    header = os.urandom(23)
    started = time.perf_counter()
    for index in range(total // chunk):
        aead.encrypt(index.to_bytes(12, "big"), data, header)
    return mb_per_s(total, time.perf_counter() - started)


# -- the server ---------------------------------------------------------------------------

class RssMonitor(threading.Thread):
    """Samples a process's resident memory from /proc every few milliseconds."""

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._done = threading.Event()

    def rss(self) -> int:
        return _status_kib(self.pid, "VmRSS") * 1024

    def run(self) -> None:
        while not self._done.is_set():
            try:
                self.peak = max(self.peak, self.rss())
            except (OSError, ValueError):
                return  # the process is gone
            self._done.wait(self.interval)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise ValueError(f"{key} not in /proc/{pid}/status")


def multipart_stream(src: Path, boundary: str) -> tuple[Iterator[bytes], int]:
    """The body of a one-file multipart upload, read from disk as it is sent (the client never
    holds the file), and its length."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"{src.name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        with src.open("rb", buffering=0) as f:
            while chunk := f.read(IO_CHUNK):
                yield chunk
        yield tail

    return body(), len(head) + src.stat().st_size + len(tail)


def upload(http: httpx.Client, csrf: str, folder: str, src: Path) -> tuple[float, dict[str, Any]]:
    boundary = "bench" + uuid.uuid4().hex
    body, length = multipart_stream(src, boundary)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}",
               "Content-Length": str(length), "X-CSRF-Token": csrf}
    started = time.perf_counter()
    response = http.post(f"/api/v1/folders/{folder}/files", content=body, headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"upload failed: {response.status_code} {response.text[:300]}")
    document: dict[str, Any] = response.json()
    return elapsed, document


def download(http: httpx.Client, doc_id: str) -> tuple[float, str, int]:
    sha = hashlib.sha256()
    size = 0
    started = time.perf_counter()
    with http.stream("GET", f"/api/v1/documents/{doc_id}/content") as response:
        if response.status_code != 200:
            raise RuntimeError(f"download failed: {response.status_code}")
        for chunk in response.iter_raw(IO_CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return time.perf_counter() - started, sha.hexdigest(), size


# -- the run ------------------------------------------------------------------------------

@dataclass
class SizeResult:
    size: int
    runs: int
    raw_copy_mb_s: float
    upload_mb_s: float
    download_mb_s: float
    upload_ratio: float
    download_ratio: float
    rss_idle: int | None = None
    rss_peak: int | None = None
    rss_growth: int | None = None
    vm_hwm: int | None = None


@dataclass
class Report:
    started_at: str
    machine: dict[str, Any]
    aes_gcm_mb_s: float
    sizes: list[SizeResult] = field(default_factory=list)


def runs_for(size: int) -> int:
    # Small files are noisy: repeat until about 64 MiB went through, at most 20 times.
    return max(1, min(20, (64 * MIB) // max(size, 1)))


def run(sizes: Sequence[int], work_dir: Path) -> Report:
    report = Report(started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    machine={"cpus": os.cpu_count(), "work_dir": str(work_dir)},
                    aes_gcm_mb_s=aes_gcm_throughput())
    largest = max(sizes)
    server = LiveServer(work_dir / "data", env={
        "PLEIN_MAX_UPLOAD_BYTES": str(largest + MIB),
        "PLEIN_GROUP_QUOTA_BYTES": "0",
    })
    server.start()
    client: Client | None = None
    try:
        assert server.proc is not None
        client = server.client()
        client.sign_up("Bench")
        group = client.post("/api/v1/groups", json={"name": "Bench", "access": "closed"})
        folder = group.json()["root_folder_id"]
        http = httpx.Client(base_url=server.url, timeout=600, cookies=client.http.cookies)
        csrf = client.csrf or ""
        # Warm up (imports, first blob directory, connection) before measuring anything.
        warm = work_dir / "warm.bin"
        make_source(warm, MIB)
        upload(http, csrf, folder, warm)
        for size in sorted(sizes):
            src = work_dir / f"src-{size}.bin"
            expected = make_source(src, size)
            runs = runs_for(size)
            # The disk is the noisiest part: at least three copies for the median.
            copies = [raw_copy(src, work_dir / "copy.bin") for _ in range(max(3, runs))]
            ups: list[float] = []
            downs: list[float] = []
            monitor: RssMonitor | None = None
            idle: int | None = None
            peak = 0
            for attempt in range(runs):
                if size == largest and attempt == 0:
                    idle = RssMonitor(server.proc.pid).rss()
                    monitor = RssMonitor(server.proc.pid)
                    monitor.start()
                seconds, document = upload(http, csrf, folder, src)
                if monitor is not None and attempt == 0:
                    peak = monitor.stop()
                ups.append(seconds)
                if document["sha256"] != expected or document["size"] != size:
                    raise RuntimeError("the server stored other bytes than were sent")
                seconds, got, got_size = download(http, document["id"])
                if got != expected or got_size != size:
                    raise RuntimeError("the download differs from the upload")
                downs.append(seconds)
            copy_rate = mb_per_s(size, statistics.median(copies))
            up_rate = mb_per_s(size, statistics.median(ups))
            down_rate = mb_per_s(size, statistics.median(downs))
            result = SizeResult(size=size, runs=runs, raw_copy_mb_s=copy_rate,
                                upload_mb_s=up_rate, download_mb_s=down_rate,
                                upload_ratio=up_rate / copy_rate,
                                download_ratio=down_rate / copy_rate)
            if monitor is not None and idle is not None:
                result.rss_idle, result.rss_peak = idle, peak
                result.rss_growth = peak - idle
                result.vm_hwm = _status_kib(server.proc.pid, "VmHWM") * 1024
            report.sizes.append(result)
            src.unlink()
            print(f"  {human(size)} done", flush=True)
        http.close()
    finally:
        if client is not None:
            client.close()
        server.stop()
    return report


def print_report(report: Report) -> None:
    print(f"\nAES-256-GCM, 64 KiB chunks, one core: {report.aes_gcm_mb_s:8.0f} MB/s")
    print(f"{'size':>8} {'runs':>4} {'raw copy':>10} {'upload':>10} {'ratio':>6} "
          f"{'download':>10} {'ratio':>6}   (MB/s = MiB/s, median of runs)")
    for r in report.sizes:
        print(f"{human(r.size):>8} {r.runs:>4} {r.raw_copy_mb_s:>10.0f} {r.upload_mb_s:>10.0f} "
              f"{r.upload_ratio:>5.0%} {r.download_mb_s:>10.0f} {r.download_ratio:>5.0%}")
    for r in report.sizes:
        if r.rss_growth is not None and r.rss_idle is not None and r.rss_peak is not None:
            print(f"server RSS during the {human(r.size)} upload: idle {r.rss_idle / MIB:.0f} MiB, "
                  f"peak {r.rss_peak / MIB:.0f} MiB, growth {r.rss_growth / MIB:.1f} MiB "
                  f"(goal < {GOAL_RSS_GROWTH // MIB} MiB); VmHWM {(r.vm_hwm or 0) / MIB:.0f} MiB")
    big = max(report.sizes, key=lambda r: r.size)
    verdicts = [
        ("upload ≥ 50 % of raw copy", big.upload_ratio >= GOAL_RATIO),
        ("download ≥ 50 % of raw copy", big.download_ratio >= GOAL_RATIO),
        ("RSS growth < 64 MiB", big.rss_growth is not None and big.rss_growth < GOAL_RSS_GROWTH),
    ]
    print("goals at " + human(big.size) + ": " + "; ".join(
        f"{name}: {'met' if ok else 'NOT met'}" for name, ok in verdicts))


def save(report: Report) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"files-{stamp}.json"
    path.write_text(json.dumps(asdict(report), indent=2) + "\n")
    return path


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench files", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,100M,1G",
                        help="comma-separated sizes (K, M, G suffixes); default 1M,100M,1G")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the server's data and the source files go (the disk "
                             "under test); default a temporary directory")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(list(argv))
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    if args.work_dir is not None:
        args.work_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="plein-bench-", dir=args.work_dir))
    try:
        report = run(sizes, work_dir)
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    print_report(report)
    print(f"results: {save(report)}")
    return 0
