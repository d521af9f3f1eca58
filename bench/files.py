"""Upload/download throughput of encrypted files through the HTTP API, next to what the
machine can do without Plein: a raw copy of the same bytes on the same disk (write + fsync,
like ``dd conv=fsync``) and raw AES-256-GCM over 64 KiB chunks. Also the server's memory
while it takes the largest upload (it must stream, not buffer).

Goals (issue 18): upload ≥ 70 % and download ≥ 90 % of the raw copy; server RSS growth
during an upload < 64 MiB; the server's CPU seconds per GiB each way, reported. Then
``--concurrent N`` uploads of ``--concurrent-size`` at once against N raw copies at once, with
a folder listing and a live-editing round trip (an edit sent on one WebSocket, received on
another) probed meanwhile: both must stay under 100 ms at p99.

    python -m bench files [--sizes 1M,100M,1G] [--concurrent 8] [--concurrent-size 100M]
                          [--work-dir DIR] [--keep]
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
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.client import HTTPConnection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.live import Client, LiveServer

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MIB = 1024 * 1024
IO_CHUNK = MIB
UNITS = {"K": 1024, "M": MIB, "G": 1024 * MIB}
GOAL_UPLOAD_RATIO = 0.7
GOAL_DOWNLOAD_RATIO = 0.9
GOAL_CONCURRENT_RATIO = 0.7
GOAL_RSS_GROWTH = 64 * MIB
GOAL_PROBE_P99 = 0.100
PROBE_INTERVAL = 0.05
GIB = 1024 * MIB


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

def make_source(path: Path, size: int) -> tuple[str, int]:
    """Random content; its SHA-256 (what the server must report) and CRC-32 (what a download
    is checked against: a cheap check keeps the client from being what is measured)."""
    sha = hashlib.sha256()
    crc = 0
    with path.open("wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(IO_CHUNK, left))
            sha.update(chunk)
            crc = zlib.crc32(chunk, crc)
            f.write(chunk)
            left -= len(chunk)
    return sha.hexdigest(), crc


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


def download(http: httpx.Client, doc_id: str) -> tuple[float, int, int]:
    """Seconds, CRC-32 and length of a document's content. Read with http.client into one
    reused buffer, as a browser's native code would: httpx's pure-Python HTTP parsing of
    64 KiB reads costs the client more CPU than the server spends, on a two-core machine."""
    url = urlsplit(str(http.base_url))
    cookie = "; ".join(f"{name}={value}" for name, value in http.cookies.items())
    buffer = bytearray(IO_CHUNK)
    view = memoryview(buffer)
    crc = size = 0
    started = time.perf_counter()
    conn = HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=600)
    try:
        conn.request("GET", f"/api/v1/documents/{doc_id}/content", headers={"Cookie": cookie})
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"download failed: {response.status}")
        while n := response.readinto(buffer):
            crc = zlib.crc32(view[:n], crc)
            size += n
    finally:
        conn.close()
    return time.perf_counter() - started, crc, size


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- probes while uploads run -------------------------------------------------------------

class SyncProbe:
    """A live-editing round trip: an edit sent on one WebSocket of a note, timed until the
    other socket of the same note receives it (the server appends it durably first: this
    crosses the event loop *and* the worker threads the log writer shares)."""

    def __init__(self, server: LiveServer, client: Client, folder: str) -> None:
        from websockets.sync.client import connect

        note = client.post(f"/api/v1/folders/{folder}/notes", json={"title": "probe"})
        token = client.post("/api/v1/tokens", json={"name": "probe"})
        if note.status_code != 201 or token.status_code != 201:
            raise RuntimeError(f"probe setup failed: {note.text} {token.text}")
        url = (server.url.replace("http://", "ws://", 1)
               + f"/sync/{note.json()['id']}?token={token.json()['token']}")
        self.editor = connect(url, open_timeout=10, max_size=None)
        self.watcher = connect(url, open_timeout=10, max_size=None)
        self.count = 0

    def round_trip(self) -> float:
        from pycrdt import Doc, XmlElement, XmlFragment, XmlText

        from sync.protocol import SyncUpdate, decode_frame, encode

        self.count += 1
        doc: Doc[Any] = Doc()
        paragraph = XmlElement("paragraph")
        doc.get("default", type=XmlFragment).children.append(paragraph)
        paragraph.children.append(XmlText(f"probe {self.count}"))
        update = doc.get_update()
        started = time.perf_counter()
        self.editor.send(encode(SyncUpdate(update)))
        while True:
            frame = self.watcher.recv(timeout=30)
            assert isinstance(frame, bytes)
            if any(isinstance(m, SyncUpdate) and m.update == update
                   for m in decode_frame(frame, check_json=False)):
                return time.perf_counter() - started

    def close(self) -> None:
        self.editor.close()
        self.watcher.close()


class Prober(threading.Thread):
    """Every PROBE_INTERVAL: a folder listing and a sync round trip, each timed."""

    def __init__(self, http: httpx.Client, folder: str, sync: SyncProbe) -> None:
        super().__init__(daemon=True)
        self.http = http
        self.folder = folder
        self.sync = sync
        self.listing: list[float] = []
        self.round_trips: list[float] = []
        self.error: BaseException | None = None
        self._done = threading.Event()

    def run(self) -> None:
        try:
            while not self._done.is_set():
                started = time.perf_counter()
                response = self.http.get(f"/api/v1/folders/{self.folder}")
                self.listing.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"folder listing failed: {response.status_code}")
                self.round_trips.append(self.sync.round_trip())
                self._done.wait(PROBE_INTERVAL)
        except BaseException as exc:  # reported by stop(), not lost in a thread
            self.error = exc

    def stop(self) -> None:
        self._done.set()
        self.join()
        if self.error is not None:
            raise RuntimeError(f"probe failed: {self.error!r}") from self.error


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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
    upload_cpu_s_per_gib: float = 0.0
    download_cpu_s_per_gib: float = 0.0
    rss_idle: int | None = None
    rss_peak: int | None = None
    rss_growth: int | None = None
    vm_hwm: int | None = None


@dataclass
class ConcurrentResult:
    count: int
    size: int
    raw_copy_mb_s: float  # aggregate of ``count`` copies at once
    upload_mb_s: float  # aggregate of ``count`` uploads at once
    ratio: float
    upload_cpu_s_per_gib: float
    rss_growth: int
    listing_ms: dict[str, float]  # idle/busy p50, p99, max
    round_trip_ms: dict[str, float]
    probes_busy: int


@dataclass
class Report:
    started_at: str
    machine: dict[str, Any]
    aes_gcm_mb_s: float
    sizes: list[SizeResult] = field(default_factory=list)
    concurrent: ConcurrentResult | None = None


def runs_for(size: int) -> int:
    # Small files are noisy: repeat until about 64 MiB went through, at most 20 times.
    return max(1, min(20, (64 * MIB) // max(size, 1)))


def concurrent_raw_copies(src: Path, work_dir: Path, count: int) -> float:
    """Seconds for ``count`` raw durable copies of ``src`` made at the same time."""
    threads = [threading.Thread(target=raw_copy, args=(src, work_dir / f"copy-{i}.bin"))
               for i in range(count)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def run_concurrent(server: LiveServer, client: Client, http: httpx.Client, csrf: str,
                   folder: str, work_dir: Path, count: int, size: int) -> ConcurrentResult:
    assert server.proc is not None
    pid = server.proc.pid
    src = work_dir / "src-concurrent.bin"
    expected, _ = make_source(src, size)
    copies = [concurrent_raw_copies(src, work_dir, count) for _ in range(2)]
    sync = SyncProbe(server, client, folder)
    probe_http = httpx.Client(base_url=server.url, timeout=60, cookies=client.http.cookies)
    try:
        idle = Prober(probe_http, folder, sync)
        idle.start()
        time.sleep(2.0)
        idle.stop()
        clients = [httpx.Client(base_url=server.url, timeout=600, cookies=client.http.cookies)
                   for _ in range(count)]
        failures: list[BaseException] = []

        def one(c: httpx.Client) -> None:
            try:
                _, document = upload(c, csrf, folder, src)
                if document["sha256"] != expected:
                    raise RuntimeError("the server stored other bytes than were sent")
            except BaseException as exc:
                failures.append(exc)

        busy = Prober(probe_http, folder, sync)
        rss = RssMonitor(pid)
        rss_idle = rss.rss()
        threads = [threading.Thread(target=one, args=(c,)) for c in clients]
        cpu_before = cpu_seconds(pid)
        rss.start()
        busy.start()
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        busy.stop()
        peak = rss.stop()
        cpu = cpu_seconds(pid) - cpu_before
        for c in clients:
            c.close()
        if failures:
            raise RuntimeError(f"concurrent upload failed: {failures[0]!r}") from failures[0]
    finally:
        probe_http.close()
        sync.close()
        src.unlink()
    copy_rate = mb_per_s(count * size, statistics.median(copies))
    up_rate = mb_per_s(count * size, elapsed)

    def figures(idle_values: list[float], busy_values: list[float]) -> dict[str, float]:
        return {"idle_p50": percentile(idle_values, 0.5) * 1000,
                "idle_p99": percentile(idle_values, 0.99) * 1000,
                "busy_p50": percentile(busy_values, 0.5) * 1000,
                "busy_p99": percentile(busy_values, 0.99) * 1000,
                "busy_max": max(busy_values, default=float("nan")) * 1000}

    return ConcurrentResult(count=count, size=size, raw_copy_mb_s=copy_rate,
                            upload_mb_s=up_rate, ratio=up_rate / copy_rate,
                            upload_cpu_s_per_gib=cpu / (count * size / GIB),
                            rss_growth=peak - rss_idle,
                            listing_ms=figures(idle.listing, busy.listing),
                            round_trip_ms=figures(idle.round_trips, busy.round_trips),
                            probes_busy=len(busy.listing))


def run(sizes: Sequence[int], work_dir: Path, concurrent: int, concurrent_size: int) -> Report:
    report = Report(started_at=datetime.now(UTC).isoformat(timespec="seconds"),
                    machine={"cpus": os.cpu_count(), "work_dir": str(work_dir),
                             "load_avg_at_start": os.getloadavg()},
                    aes_gcm_mb_s=aes_gcm_throughput())
    largest = max([*sizes, concurrent_size if concurrent else 0])
    server = LiveServer(work_dir / "data", env={
        "PLEIN_MAX_UPLOAD_BYTES": str(largest + MIB),
        "PLEIN_GROUP_QUOTA_BYTES": "0",
    })
    server.start()
    client: Client | None = None
    try:
        assert server.proc is not None
        pid = server.proc.pid
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
            expected, expected_crc = make_source(src, size)
            runs = runs_for(size)
            # The disk is the noisiest part: at least three copies for the median.
            copies = [raw_copy(src, work_dir / "copy.bin") for _ in range(max(3, runs))]
            ups: list[float] = []
            downs: list[float] = []
            up_cpu = down_cpu = 0.0
            monitor: RssMonitor | None = None
            idle: int | None = None
            peak = 0
            for attempt in range(runs):
                if size == max(sizes) and attempt == 0:
                    idle = RssMonitor(pid).rss()
                    monitor = RssMonitor(pid)
                    monitor.start()
                cpu_before = cpu_seconds(pid)
                seconds, document = upload(http, csrf, folder, src)
                up_cpu += cpu_seconds(pid) - cpu_before
                if monitor is not None and attempt == 0:
                    peak = monitor.stop()
                ups.append(seconds)
                if document["sha256"] != expected or document["size"] != size:
                    raise RuntimeError("the server stored other bytes than were sent")
                cpu_before = cpu_seconds(pid)
                seconds, got, got_size = download(http, document["id"])
                down_cpu += cpu_seconds(pid) - cpu_before
                if got != expected_crc or got_size != size:
                    raise RuntimeError("the download differs from the upload")
                downs.append(seconds)
            copy_rate = mb_per_s(size, statistics.median(copies))
            up_rate = mb_per_s(size, statistics.median(ups))
            down_rate = mb_per_s(size, statistics.median(downs))
            moved = runs * size / GIB
            result = SizeResult(size=size, runs=runs, raw_copy_mb_s=copy_rate,
                                upload_mb_s=up_rate, download_mb_s=down_rate,
                                upload_ratio=up_rate / copy_rate,
                                download_ratio=down_rate / copy_rate,
                                upload_cpu_s_per_gib=up_cpu / moved,
                                download_cpu_s_per_gib=down_cpu / moved)
            if monitor is not None and idle is not None:
                result.rss_idle, result.rss_peak = idle, peak
                result.rss_growth = peak - idle
                result.vm_hwm = _status_kib(pid, "VmHWM") * 1024
            report.sizes.append(result)
            src.unlink()
            print(f"  {human(size)} done", flush=True)
        if concurrent:
            report.concurrent = run_concurrent(server, client, http, csrf, folder, work_dir,
                                               concurrent, concurrent_size)
            print(f"  {concurrent} x {human(concurrent_size)} concurrent done", flush=True)
        http.close()
    finally:
        if client is not None:
            client.close()
        server.stop()
    return report


def print_report(report: Report) -> None:
    print(f"\nAES-256-GCM, 64 KiB chunks, one core: {report.aes_gcm_mb_s:8.0f} MB/s")
    print(f"{'size':>8} {'runs':>4} {'raw copy':>9} {'upload':>8} {'ratio':>6} "
          f"{'download':>9} {'ratio':>6} {'up CPU':>7} {'down CPU':>8}"
          "   (MB/s = MiB/s, median of runs; CPU = server CPU s/GiB)")
    for r in report.sizes:
        print(f"{human(r.size):>8} {r.runs:>4} {r.raw_copy_mb_s:>9.0f} {r.upload_mb_s:>8.0f} "
              f"{r.upload_ratio:>6.0%} {r.download_mb_s:>9.0f} {r.download_ratio:>6.0%} "
              f"{r.upload_cpu_s_per_gib:>7.2f} {r.download_cpu_s_per_gib:>8.2f}")
    for r in report.sizes:
        if r.rss_growth is not None and r.rss_idle is not None and r.rss_peak is not None:
            print(f"server RSS during the {human(r.size)} upload: idle {r.rss_idle / MIB:.0f} MiB, "
                  f"peak {r.rss_peak / MIB:.0f} MiB, growth {r.rss_growth / MIB:.1f} MiB "
                  f"(goal < {GOAL_RSS_GROWTH // MIB} MiB); VmHWM {(r.vm_hwm or 0) / MIB:.0f} MiB")
    big = max(report.sizes, key=lambda r: r.size)
    verdicts = [
        (f"upload ≥ {GOAL_UPLOAD_RATIO:.0%} of raw copy",
         all(r.upload_ratio >= GOAL_UPLOAD_RATIO for r in report.sizes)),
        (f"download ≥ {GOAL_DOWNLOAD_RATIO:.0%} of raw copy",
         all(r.download_ratio >= GOAL_DOWNLOAD_RATIO for r in report.sizes)),
        ("RSS growth < 64 MiB", big.rss_growth is not None and big.rss_growth < GOAL_RSS_GROWTH),
    ]
    c = report.concurrent
    if c is not None:
        print(f"{c.count} x {human(c.size)} at once: raw copies {c.raw_copy_mb_s:.0f} MB/s, "
              f"uploads {c.upload_mb_s:.0f} MB/s ({c.ratio:.0%}), server CPU "
              f"{c.upload_cpu_s_per_gib:.2f} s/GiB, RSS growth {c.rss_growth / MIB:.1f} MiB")
        for name, ms in (("folder listing", c.listing_ms), ("sync round trip", c.round_trip_ms)):
            print(f"  {name:<16} idle p50 {ms['idle_p50']:6.1f} p99 {ms['idle_p99']:6.1f} ms; "
                  f"during uploads p50 {ms['busy_p50']:6.1f} p99 {ms['busy_p99']:6.1f} "
                  f"max {ms['busy_max']:6.1f} ms ({c.probes_busy} probes)")
        verdicts += [
            (f"concurrent ≥ {GOAL_CONCURRENT_RATIO:.0%}", c.ratio >= GOAL_CONCURRENT_RATIO),
            ("probes p99 < 100 ms", max(c.listing_ms["busy_p99"], c.round_trip_ms["busy_p99"])
             < GOAL_PROBE_P99 * 1000),
        ]
    print("goals: " + "; ".join(
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
    parser.add_argument("--concurrent", type=int, default=8,
                        help="uploads at once in the concurrency scenario (0: skip it)")
    parser.add_argument("--concurrent-size", default="100M",
                        help="size of each concurrent upload; default 100M")
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
        report = run(sizes, work_dir, args.concurrent, parse_size(args.concurrent_size))
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
    print_report(report)
    print(f"results: {save(report)}")
    return 0
