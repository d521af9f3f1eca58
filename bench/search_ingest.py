"""End to end: files uploaded through the API until every one is searchable, next to SQLite FTS5.

Starts a real server (encryption at rest on, the in-process indexing worker; ``--repo`` picks
whose code, e.g. a checkout of main for the baseline), signs up, and then:

1. **Burst**: uploads ``--docs`` files (text and PDF, 300-1,500 words each, from the search
   benchmark's Zipf-like vocabulary) with ``--uploaders`` concurrent clients, and polls one
   word every file holds until the search total reaches the count. The rate is documents per
   second from the first upload to the moment all of them are found.
2. **Steady load** (``--steady-rate`` files/s for ``--steady-seconds``): how long after its
   upload was acknowledged each file is first found (a poller asks for the newest hits of the
   common word over and over); p50/p95/max.
3. **FTS5**: the same texts inserted into an SQLite FTS5 table (one transaction), for the
   ratio the issue asks for.

    python -m bench search_ingest [--docs 300] [--uploaders 4] [--pdf-share 0.3]
                                  [--steady-rate 20] [--steady-seconds 20] [--repo DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.search import RESULTS_DIR, Corpus, percentile
from tests.indexer.samples import make_pdf

API = "/api/v1"
GOAL_DOCS_PER_S = 100.0
GOAL_FRESH_P95_S = 2.0


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    text: str
    unique: str


def make_uploads(count: int, pdf_share: float, seed: int, common: str) -> list[Upload]:
    corpus = Corpus(count, seed)
    rng = random.Random(seed + 11)
    out: list[Upload] = []
    for i, words in enumerate(_texts(corpus, rng, count)):
        unique = f"uniek{seed}x{i:06d}"
        words = [*words[:-2], unique, common]
        if rng.random() < pdf_share:
            per_page = 400
            pages = [" ".join(words[j:j + per_page]) for j in range(0, len(words), per_page)]
            pdf = make_pdf(pages, words_per_line=12)
            out.append(Upload(f"stuk-{i}.pdf", pdf, " ".join(words), unique))
        else:
            lines = [" ".join(words[j:j + 14]) for j in range(0, len(words), 14)]
            text = "\n".join(lines)
            out.append(Upload(f"stuk-{i}.txt", text.encode(), text, unique))
    return out


def _texts(corpus: Corpus, rng: random.Random, count: int) -> list[list[str]]:
    return [rng.choices(corpus.vocab, cum_weights=corpus.cum, k=rng.randint(300, 1500))
            for _ in range(count)]


@dataclass
class Session:
    url: str
    token: str
    folder: str

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60,
                            headers={"Authorization": f"Bearer {self.token}"})


def open_session(server: Any) -> Session:
    client = server.client()
    client.sign_up("Ingest")
    group = client.post(f"{API}/groups", json={"name": "Ingest", "access": "closed"}).json()
    token = client.post(f"{API}/tokens", json={"name": "ingest"}).json()["token"]
    client.close()
    return Session(server.url, token, group["root_folder_id"])


def upload(http: httpx.Client, folder: str, item: Upload) -> tuple[str, float]:
    mime = "application/pdf" if item.name.endswith(".pdf") else "text/plain"
    response = http.post(f"{API}/folders/{folder}/files",
                         files={"file": (item.name, item.data, mime)})
    if response.status_code != 201:
        raise RuntimeError(f"upload failed: {response.status_code} {response.text[:200]}")
    return str(response.json()["id"]), time.monotonic()


def total(http: httpx.Client, q: str) -> int:
    response = http.get(f"{API}/search", params={"q": q, "limit": 1})
    response.raise_for_status()
    return int(response.json()["total"])


def burst(session: Session, items: list[Upload], uploaders: int, common: str,
          timeout: float) -> dict[str, float]:
    queue = list(reversed(items))
    lock = threading.Lock()
    acked: list[float] = []
    errors: list[str] = []

    def work() -> None:
        with session.http() as http:
            while True:
                with lock:
                    if not queue:
                        return
                    item = queue.pop()
                try:
                    _id, at = upload(http, session.folder, item)
                except Exception as exc:
                    errors.append(repr(exc))
                    return
                acked.append(at)

    start = time.monotonic()
    threads = [threading.Thread(target=work, daemon=True) for _ in range(uploaders)]
    for t in threads:
        t.start()
    found_at = 0.0
    with session.http() as http:
        deadline = start + timeout
        while True:
            if errors:
                raise RuntimeError(errors[0])
            if total(http, common) >= len(items):
                found_at = time.monotonic()
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all searchable after {timeout:.0f} s")
            time.sleep(0.05)  # polling for the result, with a deadline
    for t in threads:
        t.join()
    last_ack = max(acked)
    return {"docs": len(items), "upload_docs_per_s": len(items) / (last_ack - start),
            "seconds": found_at - start, "docs_per_s": len(items) / (found_at - start),
            "after_last_ack_s": found_at - last_ack}


def steady(session: Session, items: list[Upload], rate: float, common: str,
           ) -> dict[str, float]:
    """Uploads at ``rate``/s (one client per in-flight upload as needed); latency from each
    acknowledgement to the first search that returns the document."""
    acked: dict[str, float] = {}
    seen: dict[str, float] = {}
    lock = threading.Lock()
    stop = threading.Event()
    errors: list[str] = []

    def poll() -> None:
        with session.http() as http:
            while not stop.is_set() or len(seen) < len(items):
                response = http.get(f"{API}/search", params={"q": common, "limit": 100,
                                                             "sort": "newest"})
                now = time.monotonic()
                for hit in response.json()["results"]:
                    seen.setdefault(hit["document_id"], now)
                if stop.is_set() and time.monotonic() > stop_at[0] + 30:
                    return
                time.sleep(0.02)  # polling for new hits

    stop_at = [0.0]
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    slots = threading.Semaphore(8)

    def one(item: Upload) -> None:
        try:
            with session.http() as http:
                doc_id, at = upload(http, session.folder, item)
            with lock:
                acked[doc_id] = at
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            slots.release()

    start = time.monotonic()
    workers = []
    for n, item in enumerate(items):
        time.sleep(max(0.0, start + n / rate - time.monotonic()))  # pacing the load
        slots.acquire()
        t = threading.Thread(target=one, args=(item,), daemon=True)
        t.start()
        workers.append(t)
    for t in workers:
        t.join()
    stop_at[0] = time.monotonic()
    stop.set()
    poller.join()
    if errors:
        raise RuntimeError(errors[0])
    lat = [seen[d] - acked[d] for d in acked if d in seen]
    missing = len(acked) - len(lat)
    return {"docs": len(items), "rate": rate, "p50_s": statistics.median(lat),
            "p95_s": percentile(lat, 95), "max_s": max(lat), "never_seen": missing}


def fts5(items: list[Upload], work: Path) -> dict[str, float]:
    db = sqlite3.connect(work / "fts.sqlite")
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, body, "
               "tokenize='unicode61 remove_diacritics 2')")
    started = time.perf_counter()
    with db:
        db.executemany("INSERT INTO docs(rowid, title, body) VALUES (?, ?, ?)",
                       ((i, item.name, item.text) for i, item in enumerate(items)))
    seconds = time.perf_counter() - started
    db.close()
    return {"docs": len(items), "seconds": seconds, "docs_per_s": len(items) / seconds}


def _start_indexer(repo: Path, data_dir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PLEIN_")}
    full.update({"PLEIN_LOG_LEVEL": "warning", **env})
    return subprocess.Popen([sys.executable, "-m", "app.cli", "indexer", "--data-dir",
                             str(data_dir)], cwd=repo, env=full,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@dataclass
class Report:
    args: dict[str, Any]
    burst: dict[str, float] = field(default_factory=dict)
    steady: dict[str, float] = field(default_factory=dict)
    fts5: dict[str, float] = field(default_factory=dict)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench search_ingest", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--uploaders", type=int, default=4)
    parser.add_argument("--pdf-share", type=float, default=0.3)
    parser.add_argument("--steady-rate", type=float, default=20.0)
    parser.add_argument("--steady-seconds", type=float, default=20.0,
                        help="0 skips the steady-load phase")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--repo", type=Path, default=None, help="run this checkout's server")
    parser.add_argument("--env", action="append", default=[],
                        help="extra server setting NAME=VALUE (repeatable)")
    parser.add_argument("--external-indexer", action="store_true",
                        help="PLEIN_INDEXER=external and a `plein indexer` process beside the "
                        "server (the index writer off the server's interpreter)")
    args = parser.parse_args(list(argv))

    import tests.live as live
    from tests.live import LiveServer

    if args.repo is not None:
        live.REPO = args.repo.resolve()
    common = f"gemeenschappelijk{args.seed}"
    items = make_uploads(args.docs, args.pdf_share, args.seed, common)
    steady_count = int(args.steady_rate * args.steady_seconds)
    steady_items = make_uploads(steady_count, args.pdf_share, args.seed + 1, "steady" + common)
    words = sum(len(i.text.split()) for i in items)
    pdfs = sum(1 for i in items if i.name.endswith(".pdf"))
    print(f"burst: {len(items)} files ({pdfs} PDF), {words / len(items):.0f} words each on "
          f"average, {args.uploaders} uploaders; repo {live.REPO}", flush=True)
    report = Report(args={k: str(v) for k, v in vars(args).items()})
    work = Path(tempfile.mkdtemp(prefix="plein-bench-ingest-"))
    env = dict(e.split("=", 1) for e in args.env)
    if args.external_indexer:
        env["PLEIN_INDEXER"] = "external"
    server = LiveServer(work / "data", env)
    server.start()
    indexer = _start_indexer(live.REPO, work / "data", env) if args.external_indexer else None
    try:
        session = open_session(server)
        report.burst = burst(session, items, args.uploaders, common, args.timeout)
        b = report.burst
        print(f"burst: uploads acknowledged at {b['upload_docs_per_s']:.1f}/s; all searchable "
              f"after {b['seconds']:.1f} s -> {b['docs_per_s']:.1f} docs/s end to end "
              f"({b['after_last_ack_s']:.1f} s after the last acknowledgement)", flush=True)
        if steady_items:
            report.steady = steady(session, steady_items, args.steady_rate, "steady" + common)
            s = report.steady
            print(f"steady {s['rate']:.0f} files/s for {args.steady_seconds:.0f} s: upload "
                  f"acknowledged -> found p50 {s['p50_s']:.2f} s, p95 {s['p95_s']:.2f} s, "
                  f"max {s['max_s']:.2f} s, never found {s['never_seen']:.0f}", flush=True)
    finally:
        if indexer is not None:
            indexer.terminate()
            indexer.wait(timeout=30)
        server.stop()
    report.fts5 = fts5(items, work)
    f = report.fts5
    ratio = report.burst["docs_per_s"] / f["docs_per_s"]
    print(f"sqlite fts5, same texts: {f['docs_per_s']:.0f} docs/s; end to end / fts5 = "
          f"{ratio:.3f} (1/{1 / ratio:.0f})")
    met = report.burst["docs_per_s"] >= GOAL_DOCS_PER_S
    print(f"goal >= {GOAL_DOCS_PER_S:.0f} docs/s end to end: "
          f"{'met' if met else 'MISSED'} ({report.burst['docs_per_s']:.1f})")
    if report.steady:
        fresh = report.steady["p95_s"] <= GOAL_FRESH_P95_S
        print(f"goal searchable within {GOAL_FRESH_P95_S:.0f} s at p95 under steady load: "
              f"{'met' if fresh else 'MISSED'} ({report.steady['p95_s']:.2f} s)")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"search-ingest-{stamp}.json").write_text(json.dumps(vars(report), indent=2))
    return 0
