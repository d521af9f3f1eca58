"""A burst of concurrent prefix searches, and how long a plain request waits meanwhile.

Starts a real server (``--repo`` chooses whose code, e.g. an older checkout), fills one
folder with notes full of words sharing prefixes (each prefix search expands to hundreds of
terms), then fires ``--searches`` concurrent ``/api/v1/search?q=xx*`` requests and, while they
are in flight, ``GET /api/v1/session``. Prints the plain request's latency, the burst's
duration, and how many searches had finished when the plain request came back.

    python -m bench.search_burst [--searches 80] [--repo DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.live import Client, LiveServer

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def fill(client: Client, notes: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    response = client.post("/api/v1/groups", json={"name": f"burst-{seed}", "access": "closed"})
    response.raise_for_status()
    group = response.json()
    folder = group["root_folder_id"]
    prefixes = [a + b for a in "bdgkmp" for b in "aeiou"]
    marker = ""
    for n in range(notes):
        text = " ".join(p + "".join(rng.choice(LETTERS) for _ in range(6))
                        for p in prefixes for _ in range(12))
        marker = f"merkteken{n}x"
        response = client.post(f"/api/v1/folders/{folder}/notes",
                               json={"title": f"Nota {n}", "text": f"{text} {marker}"})
        response.raise_for_status()
    deadline = time.monotonic() + 120
    while client.get("/api/v1/search", params={"q": marker}).json()["total"] == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("indexing did not finish")
        time.sleep(0.2)
    return prefixes


async def burst(base: str, cookies: httpx.Cookies, prefixes: list[str],
                searches: int) -> dict[str, float]:
    done: list[float] = []
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=300,
                                 limits=httpx.Limits(max_connections=searches + 5)) as http:
        start = time.monotonic()

        async def one(i: int) -> None:
            r = await http.get("/api/v1/search", params={"q": prefixes[i % len(prefixes)] + "*"})
            statuses.append(r.status_code)
            done.append(time.monotonic() - start)

        tasks = [asyncio.create_task(one(i)) for i in range(searches)]
        await asyncio.sleep(0.3)  # the burst is in flight
        sent = time.monotonic()
        (await http.get("/api/v1/session")).raise_for_status()
        plain = time.monotonic() - sent
        finished_before = len(done)
        await asyncio.gather(*tasks)
    return {"plain_ms": plain * 1000, "burst_s": max(done), "finished_before": finished_before,
            "ok": statuses.count(200), "limited": statuses.count(429)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--searches", type=int, default=80)
    parser.add_argument("--notes", type=int, default=40)
    parser.add_argument("--repo", type=Path, default=None)
    parser.add_argument("--per-person", type=int, default=1000)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="burst-"))
    server = LiveServer(work / "data", {"PLEIN_SEARCH_PER_PERSON": str(args.per_person)})
    if args.repo is not None:
        import tests.live as live

        live.REPO = args.repo.resolve()
    server.start()
    try:
        client = server.client()
        client.sign_up("Burst")
        prefixes = fill(client, args.notes)
        for _round in range(3):
            result = asyncio.run(burst(server.url, client.http.cookies, prefixes,
                                       args.searches))
            print(" ".join(f"{k}={v:.0f}" if k != "burst_s" else f"{k}={v:.2f}"
                           for k, v in result.items()), flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
