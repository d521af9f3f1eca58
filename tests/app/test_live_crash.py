"""Crash safety of live co-editing (SYNC.md: "the server broadcast it" implies "it is on disk").

Two stock y-websocket editors append uniquely numbered lines as fast as they can while the
server is killed with SIGKILL, again and again.  A line one editor has *seen from its peer*
went through the server's broadcast, so it must be in the document after every restart, and
no line may ever appear twice.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.app.helpers import API, expect, make_group
from tests.app.test_live_sync import server_text, token_of
from tests.js_client import JsClient, ws_base
from tests.live import running_server, unique

pytestmark = [
    pytest.mark.slow,
    pytest.mark.usefixtures("node_client_ready"),
]

ROUNDS = 20
INSERT_INTERVAL_MS = 8


def test_kill9_during_concurrent_edits_loses_nothing_that_was_seen(tmp_path: Path) -> None:
    rng = random.Random(20240607)
    with running_server(tmp_path / "data") as server:
        owner = server.client()
        owner.sign_up("Owner")
        group = make_group(owner, unique("crash"))
        doc = expect(owner.post(f"{API}/folders/{group['root_folder_id']}/notes",
                                json={"title": "crash", "text": "top", "format": "text"}), 201)
        token = token_of(owner)
        a = JsClient(ws_base(server), doc["id"], token, name="A")
        b = JsClient(ws_base(server), doc["id"], token, name="B")
        try:
            seen_by_a: set[str] = set()
            seen_by_b: set[str] = set()
            marks = (0, 0)
            for round_no in range(ROUNDS):
                a.wait_synced(start=marks[0])
                b.wait_synced(start=marks[1])
                a.call("stream", prefix="A", interval=INSERT_INTERVAL_MS)
                b.call("stream", prefix="B", interval=INSERT_INTERVAL_MS)
                # Kill at a random point well inside the flow: once each editor has seen a
                # random number of its peer's new lines.
                target = rng.randint(3, 40)
                for client, peer, already in ((a, "B", seen_by_a), (b, "A", seen_by_b)):
                    _wait_seen(client, peer, len(already) + target)
                server.kill9()
                for client in (a, b):
                    client.call("stop")
                    client.call("disconnect")  # no reconnect until the server was checked
                seen_by_a |= set(a.call("seen", prefix="B")["lines"])
                seen_by_b |= set(b.call("seen", prefix="A")["lines"])
                server.start()
                lines = server_text(owner, doc["id"]).splitlines()
                twice = [line for line, n in Counter(lines).items() if n > 1]
                assert not twice, f"round {round_no}: duplicated lines {twice[:5]}"
                missing = (seen_by_a | seen_by_b) - set(lines)
                assert not missing, f"round {round_no}: lost {sorted(missing)[:10]}"
                marks = (a.mark(), b.mark())
                a.call("connect")
                b.call("connect")
            # After the last restart both editors converge on one text holding every line
            # either of them ever typed, once.
            a.wait_synced(start=marks[0])
            b.wait_synced(start=marks[1])
            count_a = a.call("stop")["count"]
            count_b = b.call("stop")["count"]
            expected = a.wait_text(contains=f"B-{count_b}", timeout=10)
            b.wait_text(equals=expected, timeout=10)
            final = expected.splitlines()
            assert final[0] == "top"
            assert Counter(final[1:]) == Counter(
                [f"A-{i}" for i in range(1, count_a + 1)]
                + [f"B-{i}" for i in range(1, count_b + 1)])
            assert server_text(owner, doc["id"]) == expected
            assert len(seen_by_a) >= ROUNDS * 3 and len(seen_by_b) >= ROUNDS * 3
        finally:
            a.close()
            b.close()
            owner.close()


def _wait_seen(client: JsClient, peer: str, at_least: int, timeout: float = 10.0) -> None:
    """Wait until ``client`` saw ``at_least`` lines of ``peer`` (re-asked after each update
    it receives; fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        mark = client.mark()
        if len(client.call("seen", prefix=peer)["lines"]) >= at_least:
            return
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{client.name} saw too few lines of {peer}"
        client.wait_for(lambda e: e["event"] == "remote-update", remaining, mark)
