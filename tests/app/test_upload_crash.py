"""kill -9 during uploads, in a loop (SECURITY.md, "Crash safety").

Each round starts the server on the same data directory, runs concurrent uploads (new files
and new versions, random sizes up to 3 MiB) from a few threads, and kills the server with
SIGKILL at a random moment inside the upload window. After every restart each upload that was
acknowledged (201) must read back byte-identical; at the end ``plein fsck`` must find no
damaged blob and SQLite's ``PRAGMA integrity_check`` must say "ok".

The random choices come from one seed, printed at the start (``-s`` shows it; failures repeat
it): set ``PLEIN_CRASH_SEED`` to replay a run, ``PLEIN_CRASH_ROUNDS`` for a longer soak."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.app.test_cli import plein
from tests.live import LiveServer

API = "/api/v1"
ROUNDS = int(os.environ.get("PLEIN_CRASH_ROUNDS", "50"))
SEED = int(os.environ.get("PLEIN_CRASH_SEED", "20261122"))
THREADS = 3
MAX_SIZE = 3 * 1024 * 1024
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Ack:
    """One acknowledged upload: version ``number`` of ``doc_id`` must hash to ``sha256``."""

    doc_id: str
    number: int
    sha256: str
    size: int
    round: int


class Uploader(threading.Thread):
    """Uploads until the server dies or ``stop`` is set; records what the server acknowledged."""

    def __init__(self, url: str, token: str, folder: str, seed: int, round_no: int,
                 stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"})
        self.folder = folder
        self.rng = random.Random(seed)
        self.round = round_no
        self.stop = stop
        self.acks: list[Ack] = []
        self.mine: list[str] = []  # documents this thread made, for new versions
        self.unexpected: list[str] = []
        self.interrupted = False

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                data = self.rng.randbytes(self.rng.randrange(0, MAX_SIZE + 1))
                new_file = not self.mine or self.rng.random() < 0.6
                url = (f"{API}/folders/{self.folder}/files" if new_file
                       else f"{API}/documents/{self.rng.choice(self.mine)}/versions")
                try:
                    response = self.http.post(url, files={
                        "file": ("f.bin", data, "application/octet-stream")})
                except httpx.TransportError:
                    self.interrupted = True  # killed mid-request: not acknowledged
                    return
                if response.status_code == 201:
                    body = response.json()
                    doc_id = body["id"] if new_file else url.split("/")[-2]
                    number = body["version"] if new_file else body["number"]
                    assert body["sha256"] == hashlib.sha256(data).hexdigest()
                    self.acks.append(Ack(doc_id, number, body["sha256"], len(data), self.round))
                    if new_file:
                        self.mine.append(doc_id)
                elif response.status_code != 503:  # 503: database busy, fine under load
                    self.unexpected.append(f"{response.status_code} {response.text[:200]}")
        finally:
            self.http.close()


def _read_back(http: httpx.Client, ack: Ack) -> str:
    sha = hashlib.sha256()
    size = 0
    with http.stream("GET", f"{API}/documents/{ack.doc_id}/versions/{ack.number}/content") as r:
        assert r.status_code == 200, f"{ack}: {r.status_code} {r.read()[:200]!r}"
        for chunk in r.iter_bytes():
            sha.update(chunk)
            size += len(chunk)
    assert size == ack.size, ack
    return sha.hexdigest()


def _start(data_dir: Path) -> LiveServer:
    server = LiveServer(data_dir)
    server.start()
    return server


@pytest.mark.slow
def test_acknowledged_uploads_survive_kill_9(tmp_path: Path) -> None:
    print(f"\nkill -9 loop: seed {SEED}, {ROUNDS} rounds (PLEIN_CRASH_SEED to replay)")
    rng = random.Random(SEED)
    data_dir = tmp_path / "data"
    started = time.monotonic()

    server = _start(data_dir)
    setup = server.client()
    setup.sign_up("Crash", email="crash@example.nl", password=PASSWORD)
    folder = setup.post(f"{API}/groups", json={"name": "Crash", "access": "closed"}).json()[
        "root_folder_id"]
    token = setup.post(f"{API}/tokens", json={"name": "crash"}).json()["token"]
    setup.close()

    acked: list[Ack] = []
    pending: list[Ack] = []  # acknowledged in the round before the last restart
    kills_mid_upload = 0
    try:
        for round_no in range(ROUNDS):
            if round_no:
                server = _start(data_dir)
            with httpx.Client(base_url=server.url, timeout=30,
                              headers={"Authorization": f"Bearer {token}"}) as http:
                for ack in pending:  # survived the kill -9 that ended the previous round
                    assert _read_back(http, ack) == ack.sha256, f"seed {SEED}: lost {ack}"
            stop = threading.Event()
            threads = [Uploader(server.url, token, folder, rng.getrandbits(64), round_no, stop)
                       for _ in range(THREADS)]
            for thread in threads:
                thread.start()
            # Kill at a random moment of the upload window (uploads of up to 3 MiB take tens
            # of milliseconds each, so this lands mid-request in most rounds).
            deadline = time.monotonic() + rng.uniform(0.05, 0.8)
            while time.monotonic() < deadline:
                assert server.proc is not None and server.proc.poll() is None, server.log()
                time.sleep(0.01)  # polling the deadline, not waiting for an effect
            server.kill9()
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
                assert not thread.is_alive()
                assert not thread.unexpected, f"seed {SEED}: {thread.unexpected}"
            pending = [ack for thread in threads for ack in thread.acks]
            acked.extend(pending)
            kills_mid_upload += any(thread.interrupted for thread in threads)
    finally:
        server.kill9()

    # Everything ever acknowledged, after one more restart, then stopped cleanly.
    server = _start(data_dir)
    try:
        with httpx.Client(base_url=server.url, timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            for ack in acked:
                assert _read_back(http, ack) == ack.sha256, f"seed {SEED}: lost {ack}"
    finally:
        server.stop()
    assert len(acked) >= ROUNDS, f"seed {SEED}: only {len(acked)} uploads acknowledged"
    # The loop is only worth its time if the kills land while uploads are in flight.
    assert kills_mid_upload >= ROUNDS // 2, f"seed {SEED}: {kills_mid_upload} mid-upload kills"

    checked = plein("fsck", "--data-dir", str(data_dir))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert " 0 damaged" in checked.stdout, checked.stdout
    with sqlite3.connect(data_dir / "plein.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # Every version points at a blob row (no partial version is visible).
        dangling = db.execute("SELECT COUNT(*) FROM document_versions v LEFT JOIN blobs b "
                              "ON b.id = v.blob_id WHERE b.id IS NULL").fetchone()[0]
        assert dangling == 0
    print(f"kill -9 loop: {ROUNDS} rounds ({kills_mid_upload} killed mid-upload), "
          f"{len(acked)} acknowledged uploads, {time.monotonic() - started:.1f} s")
