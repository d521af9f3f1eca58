"""The indexing worker's batch path: many tasks per round, one index commit per batch.

Files are uploaded to a real server that does not index (``PLEIN_INDEXER=external``); the
tasks then wait in the outbox and the worker is run here, on the same data directory, or as
``plein indexer`` processes that are killed with SIGKILL.

- A poison document in a batch (its blob is gone, so building it raises) does not block the
  others: they are indexed in the same round, it alone waits with a backoff. A zip bomb in
  the same batch kills only its extraction worker and is found by its name.
- A batch interrupted by kill -9 is redone, and each document ends up in the index exactly
  once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.models import Blob, DocumentVersion, IndexTask, utcnow
from app.services import search
from app.settings import Settings
from tests.app.test_search_api import word
from tests.indexer.samples import make_zip_bomb
from tests.live import LiveServer

API = "/api/v1"
REPO = Path(__file__).resolve().parents[2]


def _upload(server: LiveServer, count: int, common: str,
            extra: dict[str, bytes] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """``count`` text files (id -> own word) and the ``extra`` files (name -> id)."""
    client = server.client()
    client.sign_up("Batch")
    group = client.post(f"{API}/groups", json={"name": "Batch", "access": "closed"}).json()
    folder = group["root_folder_id"]
    words: dict[str, str] = {}
    for n in range(count):
        own = word("batch")
        text = f"Bestand {n}: {own} {common} en verder gewone tekst over dijken.\n" * 3
        response = client.post(f"{API}/folders/{folder}/files",
                               files={"file": (f"b{n}.txt", text.encode(), "text/plain")})
        assert response.status_code == 201, response.text
        words[response.json()["id"]] = own
    named: dict[str, str] = {}
    for name, data in (extra or {}).items():
        response = client.post(f"{API}/folders/{folder}/files",
                               files={"file": (name, data, "application/octet-stream")})
        assert response.status_code == 201, response.text
        named[name] = response.json()["id"]
    client.close()
    return words, named


@pytest.fixture
def quiet_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = LiveServer(tmp_path / "data", {"PLEIN_INDEXER": "external"})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _deps(data_dir: Path, **settings: object) -> search.WorkerDeps:
    from app.cli import _worker_deps

    deps: search.WorkerDeps = _worker_deps(Settings(data_dir=data_dir, **settings))
    return deps


def _hits(deps: search.WorkerDeps, q: str) -> list[str]:
    """Every hit of ``q`` (duplicates kept, to be counted) in every folder the index holds:
    what is in the index, not who may see it."""
    with deps.index._lock:
        folders = {f.decode() if isinstance(f, bytes) else str(f)
                   for f in deps.index._current_searcher().lexicon("folder_id")}
    out: list[str] = []
    page = 1
    while True:
        found = deps.index.search(q, readable_folder_ids=folders, page=page, page_size=100)
        out += [hit.document_id for hit in found.hits]
        if page * 100 >= found.total:
            return out
        page += 1


def test_a_poison_document_does_not_block_its_batch(quiet_server: LiveServer) -> None:
    common = word("gedeeld")
    words, named = _upload(quiet_server, 12, common,
                           {"bom.docx": make_zip_bomb(300 << 20), "kapot.txt": b"kapot " * 100})
    quiet_server.stop()
    deps = _deps(quiet_server.data_dir)
    poison = named["kapot.txt"]
    with deps.db.read() as session:
        version = session.scalars(select(DocumentVersion)
                                  .where(DocumentVersion.document_id == poison)).one()
        blob_id = session.get_one(Blob, version.blob_id).id
    deps.store.path_of(blob_id).unlink()  # its bytes are gone: building it raises
    before = utcnow()

    handled = search.run_once(deps)

    assert handled == len(words) + 2  # one round took every task
    assert sorted(_hits(deps, common)) == sorted(words)
    for doc_id, own in words.items():
        assert _hits(deps, own) == [doc_id]
    assert _hits(deps, "bom") == [named["bom.docx"]]  # the bomb: metadata only
    with deps.db.read() as session:
        left = [(t.document_id, t.attempts, t.last_error, t.not_before)
                for t in session.scalars(select(IndexTask))]
    assert [(doc_id, attempts) for doc_id, attempts, _e, _n in left] == [(poison, 1)]
    assert left[0][2] == "BlobNotFound"
    assert left[0][3] > before  # backoff: not retried at once
    assert search.run_once(deps) == 0  # and not due in the next round either


def _indexer(data_dir: Path, batch: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEIN_")}
    env.update({"PLEIN_INDEX_BATCH_SIZE": str(batch), "PLEIN_LOG_LEVEL": "warning"})
    return subprocess.Popen([sys.executable, "-m", "app.cli", "indexer", "--data-dir",
                             str(data_dir)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _pending(data_dir: Path) -> int:
    deps = _deps(data_dir)
    count = search.pending(deps.db)
    deps.db.dispose()
    return count


@pytest.mark.slow
def test_a_batch_killed_mid_way_is_redone_exactly_once(quiet_server: LiveServer) -> None:
    common = word("gedeeld")
    words, _named = _upload(quiet_server, 120, common)
    quiet_server.stop()
    data_dir = quiet_server.data_dir
    rng = random.Random(12)
    rounds = 0
    # Batches of 10: a kill lands before, inside or just after a batch's commit.
    while _pending(data_dir) and rounds < 8:
        proc = _indexer(data_dir, 10)
        time.sleep(rng.uniform(0.8, 2.0))  # a random moment of the work (not a wait)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        rounds += 1
    assert rounds >= 2, "the first indexer finished everything before its kill"
    proc = _indexer(data_dir, 10)
    try:
        deadline = time.monotonic() + 120
        while _pending(data_dir):
            assert time.monotonic() < deadline, "the indexer did not catch up"
            time.sleep(0.2)  # polling a condition with a deadline
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    deps = _deps(data_dir)
    found = _hits(deps, common)
    assert sorted(found) == sorted(words)  # each once: no duplicates, none missing
    for doc_id, own in words.items():
        assert _hits(deps, own) == [doc_id]
