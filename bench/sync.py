"""Live co-editing under load, side by side: Plein's sync server (durable: every update is in
the encrypted log before it is broadcast) and the reference Node server, ``y-websocket@1.5.4``'s
``bin/server.js`` (in memory), driven by the same load generator of stock Yjs + y-websocket
clients (``bench/js/loadgen.mjs``).

Per scenario (documents x clients per document): fan-out latency p50/p99 (send -> seen by
another client), updates delivered per second, server RSS peak, convergence (every replica of
a document equal at the end), and the CPU each side used (server and load generator share the
machine: their ratio is what survives the noise).  Goal (issue 11): every scenario converges,
p99 <= the reference's, p50 <= 1.2x, deliveries/s >= the reference's, RSS <= 1.5x.

    python -m bench sync [--scenarios 1x10,1x50,1x200,1x300,20x5,100x2] [--duration 10]
                         [--rate 10]
                         [--targets plein,ref] [--workers 2] [--no-deflate] [--work-dir DIR]

Clients offer permessage-deflate, as browsers do.  The reference server declines it; uvicorn
accepts it unless started with ``ws_per_message_deflate=False``, and then compresses every
small frame (server CPU) and makes every client inflate it.  ``--no-deflate`` shows the
servers with plain frames.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.live import LiveServer, free_port

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
RESULTS_DIR = ROOT / "results"
REF_DIR = ROOT / ".ref"
REF_VERSION = "1.5.4"
REF_SERVER = REF_DIR / "node_modules" / "y-websocket" / "bin" / "server.js"
LOADGEN = ROOT / "js" / "loadgen.mjs"
MIB = 1024 * 1024
GOAL_P50_RATIO = 1.2
GOAL_P99_RATIO = 1.0
GOAL_THROUGHPUT_RATIO = 1.0
GOAL_RSS_RATIO = 1.5
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the servers -------------------------------------------------------------------------------


def ensure_reference() -> None:
    """Install y-websocket@1.5.4 (its bin/server.js) into bench/.ref/ once (git-ignored)."""
    if REF_SERVER.is_file():
        return
    REF_DIR.mkdir(parents=True, exist_ok=True)
    package = REF_DIR / "package.json"
    if not package.exists():
        package.write_text('{"name": "plein-bench-reference", "private": true}\n')
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", f"y-websocket@{REF_VERSION}"],
                   cwd=REF_DIR, check=True)


class RssSampler:
    """Peak resident memory of a process and its descendants, sampled from /proc."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _tree(self) -> list[int]:
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as f:
                        todo += [int(c) for c in f.read().split()]
            except OSError:
                pass
        return pids

    def cpu_seconds(self) -> float:
        """User + system CPU of the process tree so far (children that exited are not counted:
        the servers run in one process)."""
        ticks = 0
        for pid in self._tree():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                pass
        return ticks / CLOCK_TICKS

    def sample(self) -> int:
        total = 0
        for pid in self._tree():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(self.interval)


class Target:
    name = ""
    pid = 0
    url = ""  # the y-websocket provider's serverUrl
    params: dict[str, str]

    def rooms(self, count: int) -> list[str]:
        raise NotImplementedError


class Plein(Target):
    name = "plein"

    def __init__(self, work: Path) -> None:
        self.server = LiveServer(work / "data")
        self.server.start()
        assert self.server.proc is not None
        self.pid = self.server.proc.pid
        self.url = self.server.url.replace("http://", "ws://") + "/sync"
        self.owner = self.server.client()
        self.owner.sign_up("Bench")
        group = self._ok(self.owner.post("/api/v1/groups",
                                         json={"name": f"bench-{uuid.uuid4().hex[:6]}",
                                               "access": "closed"}), 201)
        self.folder = group["root_folder_id"]
        token = self._ok(self.owner.post("/api/v1/tokens", json={"name": "bench"}), 201)
        self.params = {"token": token["token"]}

    @staticmethod
    def _ok(response: httpx.Response, status: int) -> Any:
        if response.status_code != status:
            raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
        return response.json()

    def rooms(self, count: int) -> list[str]:
        return [self._ok(self.owner.post(f"/api/v1/folders/{self.folder}/notes",
                                         json={"title": f"bench {i}"}), 201)["id"]
                for i in range(count)]

    def close(self) -> None:
        self.owner.close()
        self.server.stop()


class Reference(Target):
    name = "ref"

    def __init__(self, work: Path) -> None:
        ensure_reference()
        port = free_port()
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
        env.pop("YPERSISTENCE", None)  # in memory, as documented
        self.log = (work / "ref.log").open("wb")
        self.proc = subprocess.Popen(["node", str(REF_SERVER)], cwd=REF_DIR, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self.url = f"ws://127.0.0.1:{port}"
        self.params = {}
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the reference server did not start") from None
                time.sleep(0.05)  # polling for readiness

    def rooms(self, count: int) -> list[str]:
        return [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(count)]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@contextmanager
def target(name: str, work: Path) -> Iterator[Target]:
    t: Plein | Reference = Plein(work) if name == "plein" else Reference(work)
    try:
        yield t
    finally:
        t.close()


# -- one run -------------------------------------------------------------------------------------


def _start_profiler(args: argparse.Namespace, t: Target,
                    run_dir: Path) -> subprocess.Popen[bytes] | None:
    """py-spy on Plein's server for the whole load run (collapsed stacks, --profile DIR)."""
    if args.profile is None or t.name != "plein":
        return None
    args.profile.mkdir(parents=True, exist_ok=True)
    out = args.profile / f"{run_dir.name}.folded"
    return subprocess.Popen([args.py_spy, "record", "--pid", str(t.pid), "--rate", "200",
                             "--format", "raw", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _stop_profiler(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is None:
        return
    profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    try:
        profiler.wait(timeout=30)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()


def run_scenario(name: str, docs: int, per_doc: int, args: argparse.Namespace,
                 work: Path) -> dict[str, Any]:
    run_dir = work / f"{name}-{docs}x{per_doc}-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir(parents=True)
    with target(name, run_dir) as t:
        config = {
            "url": t.url, "docs": t.rooms(docs), "clientsPerDoc": per_doc, "params": t.params,
            "durationMs": int(args.duration * 1000), "editsPerSecond": args.rate,
            "awarenessEvery": args.awareness_every, "workers": args.workers,
            "deflate": not args.no_deflate,
        }
        with RssSampler(t.pid) as rss:
            idle_rss = rss.sample()
            cpu0, wall0 = rss.cpu_seconds(), time.monotonic()
            profiler = _start_profiler(args, t, run_dir)
            try:
                proc = subprocess.run(["node", str(LOADGEN), json.dumps(config)], cwd=REPO,
                                      capture_output=True, text=True, timeout=args.duration + 180)
            finally:
                _stop_profiler(profiler)
            server_cpu, wall = rss.cpu_seconds() - cpu0, time.monotonic() - wall0
        if proc.returncode != 0 or not proc.stdout.strip():
            raise RuntimeError(f"loadgen failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        result.update(server=name, scenario=f"{docs}x{per_doc}", rss_peak=rss.peak,
                      rss_idle=idle_rss, server_cpu_seconds=server_cpu, wall_seconds=wall)
        return result


# -- report ----------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:8.1f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:5.2f}x"


def _cores(r: dict[str, Any], key: str) -> str:
    """CPU seconds over the run's wall time: how many of the machine's cores it kept busy."""
    wall = r.get("wall_seconds") or 0
    return "      -" if not wall or key not in r else f"{r[key] / wall:7.2f}"


def table(results: list[dict[str, Any]]) -> str:
    head = (f"{'scenario':>9} {'server':>6} {'p50 ms':>8} {'p99 ms':>8} {'deliv/s':>9} "
            f"{'ratio':>6} {'RSS MiB':>8} {'conv':>5} {'closes':>6} {'srv cpu':>7} {'gen cpu':>7}")
    lines = [head, "-" * len(head)]
    by_scenario: dict[str, dict[str, dict[str, Any]]] = {}
    for r in results:
        by_scenario.setdefault(r["scenario"], {})[r["server"]] = r
        lat = r["latencyMs"]
        lines.append(f"{r['scenario']:>9} {r['server']:>6} {_ms(lat['p50'])} {_ms(lat['p99'])} "
                     f"{r['deliveredPerSecond']:9.0f} {r['deliveryRatio']:6.3f} "
                     f"{r['rss_peak'] / MIB:8.1f} {'yes' if r['converged'] else 'NO':>5} "
                     f"{r['closes']:6d} {_cores(r, 'server_cpu_seconds')} "
                     f"{_cores(r, 'loadgenCpuSeconds')}")
    lines.append("")
    lines.append("(srv cpu / gen cpu: cores kept busy by the server / the load generator, of "
                 f"{os.cpu_count()})")
    lines.append(f"{'scenario':>9}  Plein/ref: {'p50':>6} {'p99':>6} {'deliv/s':>8} {'RSS':>6}"
                 f" {'srv cpu':>7}   goal: p50 <= {GOAL_P50_RATIO:g}x, p99 <= {GOAL_P99_RATIO:g}x,"
                 f" deliv/s >= {GOAL_THROUGHPUT_RATIO:g}x, RSS <= {GOAL_RSS_RATIO:g}x")
    for scenario, pair in by_scenario.items():
        p, ref = pair.get("plein"), pair.get("ref")
        if p is None or ref is None:
            continue
        lines.append(
            f"{scenario:>9}             {_ratio(p['latencyMs']['p50'], ref['latencyMs']['p50'])} "
            f"{_ratio(p['latencyMs']['p99'], ref['latencyMs']['p99'])} "
            f"{_ratio(p['deliveredPerSecond'], ref['deliveredPerSecond']):>8} "
            f"{_ratio(p['rss_peak'], ref['rss_peak'])} "
            f"{_ratio(p.get('server_cpu_seconds'), ref.get('server_cpu_seconds')):>7}")
    return "\n".join(lines)


def parse_scenarios(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        docs, _, clients = part.strip().partition("x")
        out.append((int(docs), int(clients)))
    return out


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sync", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="1x10,1x50,1x200,1x300,20x5,100x2",
                        help="documents x clients per document, comma separated")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of editing")
    parser.add_argument("--rate", type=float, default=10.0, help="edits per second per client")
    parser.add_argument("--awareness-every", type=int, default=2,
                        help="an awareness (cursor) update every N edits; 0 = none")
    parser.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)),
                        help="load generator processes")
    parser.add_argument("--no-deflate", action="store_true",
                        help="clients do not offer permessage-deflate (browsers do; the "
                        "reference server declines it, uvicorn accepts it by default)")
    parser.add_argument("--targets", default="plein,ref")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--profile", type=Path, default=None,
                        help="record Plein's server with py-spy into this directory")
    parser.add_argument("--py-spy", default="py-spy", help="the py-spy executable")
    args = parser.parse_args(list(argv))
    if shutil.which("node") is None:
        print("node is required")
        return 2
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="plein-bench-sync-"))
    work.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    try:
        for docs, per_doc in parse_scenarios(args.scenarios):
            for name in args.targets.split(","):
                print(f"-- {name}: {docs} doc(s) x {per_doc} clients, {args.duration:g} s",
                      flush=True)
                results.append(run_scenario(name, docs, per_doc, args, work))
    finally:
        if not args.keep and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    report = table(results)
    print(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"sync-{stamp}.json"
    out.write_text(json.dumps({
        "benchmark": "sync", "when": stamp, "cpus": os.cpu_count(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "results": results}, indent=1) + "\n")
    print(f"saved {out.relative_to(REPO)}")
    converged = all(r["converged"] for r in results)
    return 0 if converged else 1
