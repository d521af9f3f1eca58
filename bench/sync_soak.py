"""Soak: one note, 300 stock Yjs editors for minutes, the server killed with SIGKILL every
minute.  Reports acknowledged edits lost (must be 0), how long the editors took to re-sync
after each restart (p50/p99), and the server's RSS over time.

    python -m bench sync-soak [--minutes 10] [--kill-every 60] [--clients 300] [--rate 10]

"Acknowledged" is what Plein promises: the server broadcasts an update only once it is in
the document's log (fsynced), so an update some *other* editor has received must survive a
crash.  Each editor (``bench/js/soak.mjs``) tracks, per author, the highest Yjs clock it has
received from the server.  Right after each kill -- before the server is back, so no editor
can re-send what it holds -- this script opens the note's store offline, the way the next
server will, and checks that its state vector covers every acknowledged clock.  Then the
server restarts on the same port and the editors' providers reconnect by themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pycrdt import Doc

from bench.sync import Plein, RssSampler
from sync import FileDocumentStore

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
RESULTS_DIR = ROOT / "results"
SOAK = ROOT / "js" / "soak.mjs"
MIB = 1 << 20


def _var_uint(data: bytes, pos: int) -> tuple[int, int]:
    num, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        num |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return num, pos


def decode_state_vector(data: bytes) -> dict[int, int]:
    """Yjs' encoded state vector: count, then (client, clock) pairs, all varUint."""
    count, pos = _var_uint(data, 0)
    out = {}
    for _ in range(count):
        client, pos = _var_uint(data, pos)
        clock, pos = _var_uint(data, pos)
        out[client] = clock
    return out


def durable_state_vector(data_dir: Path, document_id: str) -> dict[int, int]:
    """What a restarted server would load for ``document_id``: its state vector."""
    from app.bootstrap import load_keys
    from app.services.documents import notes_root
    from app.settings import Settings

    settings = Settings(data_dir=data_dir)
    store = FileDocumentStore(notes_root(settings), load_keys(settings, create=False))
    handle = store.open(document_id)
    try:
        doc: Doc[Any] = Doc()
        for update in handle.load():
            doc.apply_update(update)
        return decode_state_vector(doc.get_state())
    finally:
        handle.close()


class RssTimeline(threading.Thread):
    """The server's RSS every ``interval`` seconds, following it across restarts."""

    def __init__(self, target: Plein, interval: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.t0 = time.monotonic()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            proc = self.target.server.proc
            if proc is None or proc.poll() is not None:
                continue
            self.samples.append((time.monotonic() - self.t0, RssSampler(proc.pid).sample()))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def _ask(proc: subprocess.Popen[str], op: str) -> dict[str, Any]:
    stdin: IO[str] | None = proc.stdin
    stdout: IO[str] | None = proc.stdout
    assert stdin is not None and stdout is not None
    stdin.write(json.dumps({"op": op}) + "\n")
    stdin.flush()
    line = stdout.readline()
    if not line:
        raise RuntimeError("the soak load generator ended early")
    answer: dict[str, Any] = json.loads(line)
    return answer


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p * len(ordered))) - 1))]


def check_durability(target: Plein, proc: subprocess.Popen[str], document_id: str,
                     acked_now: dict[str, int] | None = None) -> dict[str, Any]:
    """Kill -9 the server; compare what editors were sent with what is on disk.  The
    editors are asked after the kill (nothing more can reach them), unless ``acked_now``
    (what they had received when they stopped) is given."""
    t_kill = time.time()
    target.server.kill9()
    if acked_now is None:
        acked_now = _ask(proc, "acked")["acked"]
    acked = {int(c): clock for c, clock in acked_now.items()}
    durable = durable_state_vector(target.server.data_dir, document_id)
    short = {c: clock - durable.get(c, 0) for c, clock in acked.items()
             if clock > durable.get(c, 0)}
    return {"kill_at": t_kill, "authors_acked": len(acked),
            "acked_clock_total": sum(acked.values()),
            "durable_clock_total": sum(durable.values()),
            "lost_authors": len(short), "lost_clock_units": sum(short.values())}


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sync-soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--kill-every", type=float, default=60.0, help="seconds")
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--rate", type=float, default=10.0, help="edits per second per client")
    parser.add_argument("--awareness-every", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(list(argv))
    if shutil.which("node") is None:
        print("node is required")
        return 2
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="plein-bench-sync-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    kills: list[dict[str, Any]] = []
    try:
        target = Plein(work)
        try:
            document_id = target.rooms(1)[0]
            config = {"url": target.url, "room": document_id, "clients": args.clients,
                      "params": target.params, "rate": args.rate,
                      "awarenessEvery": args.awareness_every, "workers": args.workers}
            proc = subprocess.Popen(["node", str(SOAK), json.dumps(config)], cwd=REPO,
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                assert proc.stdout is not None
                synced = json.loads(proc.stdout.readline())["synced"]
                print(f"{synced}/{args.clients} editors synced; soaking {args.minutes:g} min, "
                      f"kill -9 every {args.kill_every:g} s", flush=True)
                rss = RssTimeline(target)
                rss.start()
                start = time.monotonic()
                end = start + args.minutes * 60
                next_kill = start + args.kill_every
                while next_kill < end:
                    time.sleep(max(0.0, next_kill - time.monotonic()))
                    kill = check_durability(target, proc, document_id)
                    target.server.start()
                    kill["ready_at"] = time.time()
                    kill["down_seconds"] = kill["ready_at"] - kill["kill_at"]
                    kills.append(kill)
                    print(f"kill {len(kills)}: lost {kill['lost_clock_units']} acknowledged "
                          f"clock units ({kill['lost_authors']} authors), server back in "
                          f"{kill['down_seconds']:.2f} s", flush=True)
                    next_kill += args.kill_every
                time.sleep(max(0.0, end - time.monotonic()))
                rss.stop()
                # The last check: every edit the editors had received when they stopped is
                # on disk (durable only grows, so a moment later is as good).
                stats = _ask(proc, "stop")
                time.sleep(1.0)
                final = check_durability(target, proc, document_id, stats["acked"])
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        finally:
            target.close()
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    # Re-syncs after each restart, measured from the moment the server was ready again.
    readies = [k["ready_at"] * 1000 for k in kills]
    reconnect_ms: list[float] = []
    per_kill: list[int] = [0] * len(kills)
    for ts in stats["resyncs"]:
        before = [i for i, r in enumerate(readies) if r <= ts]
        if before:
            i = before[-1]
            reconnect_ms.append(ts - readies[i])
            per_kill[i] += 1
    lost = sum(k["lost_clock_units"] for k in kills) + final["lost_clock_units"]
    result = {
        "minutes": args.minutes, "kill_every": args.kill_every, "clients": args.clients,
        "edits": stats["edits"], "closes": stats["closes"], "kills": kills, "final": final,
        "lost_acknowledged_clock_units": lost,
        "resynced_per_kill": per_kill,
        "reconnect_ms": {"p50": _percentile(reconnect_ms, 0.5),
                         "p99": _percentile(reconnect_ms, 0.99),
                         "max": max(reconnect_ms, default=None)},
        "rss_mib": [(round(t, 1), round(r / MIB, 1)) for t, r in rss.samples],
        "loadgen_cpu_seconds": stats["cpuSeconds"],
    }
    print(f"edits sent: {stats['edits']}; kills: {len(kills)} + a final one; lost acknowledged: "
          f"{lost} clock units (must be 0); acknowledged at the end: "
          f"{final['acked_clock_total']} clock units of {final['authors_acked']} authors")
    print(f"editors re-synced per restart: {per_kill} of {args.clients}; reconnect after the "
          f"server was ready: p50 {result['reconnect_ms']['p50']} ms, p99 "
          f"{result['reconnect_ms']['p99']} ms")
    by_minute: dict[int, float] = {}
    for t, r in rss.samples:
        by_minute[int(t // 60)] = max(by_minute.get(int(t // 60), 0.0), r / MIB)
    print("server RSS peak per minute (MiB): "
          + ", ".join(f"{m}: {v:.0f}" for m, v in sorted(by_minute.items())))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"sync-soak-{stamp}.json"
    out.write_text(json.dumps({"benchmark": "sync-soak", "when": stamp, "cpus": os.cpu_count(),
                               "result": result}, indent=1) + "\n")
    print(f"saved {out.relative_to(REPO)}")
    return 0 if lost == 0 else 1
