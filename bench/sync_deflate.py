"""What a browser pays for per-message deflate being off: the bytes it receives for the frames
of a typing session, plain and as permessage-deflate would send them, and the CPU the server
would spend compressing them for every connection.

    python -m bench sync-deflate [--editors 10] [--seconds 10] [--rate 10]

The frames are the ones our room sends: each round's merged update (the load generator's
edits: a token inserted at a random place) and the round's coalesced presence (a caret
stamped with the person's id and name).  permessage-deflate as browsers negotiate it by
default: raw deflate, the window kept across messages (context takeover), a sync flush per
message with its 4 trailing bytes dropped (RFC 7692).
"""

from __future__ import annotations

import argparse
import json
import random
import time
import zlib
from collections.abc import Sequence
from typing import Any

from pycrdt import Doc, Text

from sync.protocol import AwarenessEntry, AwarenessUpdate, SyncUpdate, encode


def session_frames(editors: int, seconds: float, rate: float, round_ms: float = 5.0,
                   seed: int = 11) -> list[bytes]:
    """The frames one connection receives: a round every ``round_ms``, each with the edits
    made meanwhile merged into one update and the carets moved meanwhile in one message."""
    rnd = random.Random(seed)
    docs: list[Doc[Any]] = [Doc() for _ in range(editors)]
    server: Doc[Any] = Doc()
    texts = [d.get("t", type=Text) for d in docs]
    frames: list[bytes] = []
    clocks = [0] * editors
    t = 0.0
    seq = [0] * editors
    per_round = editors * rate * round_ms / 1000
    carry = 0.0
    while t < seconds * 1000:
        carry += per_round
        n, carry = int(carry), carry - int(carry)
        before = server.get_state()
        carets = {}
        for _ in range(n):
            i = rnd.randrange(editors)
            seq[i] += 1
            text = texts[i]
            pos = rnd.randrange(len(text) + 1)
            text.insert(pos, f"{1765152000000 + t:.3f}@{i}#{seq[i]};")
            update = docs[i].get_update(server.get_state())
            server.apply_update(update)
            for j, d in enumerate(docs):
                if j != i:
                    d.apply_update(update)
            if seq[i] % 2 == 0:
                clocks[i] += 1
                state = {"cursor": {"anchor": pos, "head": pos + 1},
                         "user": {"name": f"Editor {i}", "id": f"u{i:04d}", "colorIndex": i % 8}}
                carets[docs[i].client_id] = AwarenessEntry(docs[i].client_id, clocks[i],
                                                           json.dumps(state))
        if n:
            frames.append(encode(SyncUpdate(server.get_update(before))))
        if carets:
            frames.append(encode(AwarenessUpdate(tuple(carets.values()))))
        t += round_ms
    return frames


def deflated_sizes(frames: list[bytes]) -> tuple[int, float]:
    """Total bytes as permessage-deflate frames, and the seconds compressing them took."""
    comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    total = 0
    t0 = time.perf_counter()
    for f in frames:
        out = comp.compress(f) + comp.flush(zlib.Z_SYNC_FLUSH)
        total += len(out) - 4
    return total, time.perf_counter() - t0


def _ws_header(n: int) -> int:
    return 2 if n < 126 else 4 if n < 65536 else 10


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sync-deflate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--editors", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=10.0)
    args = parser.parse_args(list(argv))
    frames = session_frames(args.editors, args.seconds, args.rate)
    plain = sum(len(f) + _ws_header(len(f)) for f in frames)
    deflated, seconds = deflated_sizes(frames)
    deflated += 2 * len(frames)
    print(f"{len(frames)} frames to one browser over {args.seconds:g} s with {args.editors} "
          f"editors at {args.rate:g} edits/s: plain {plain / 1024:.1f} KiB "
          f"({plain / args.seconds / 1024:.2f} KiB/s), deflated {deflated / 1024:.1f} KiB "
          f"({deflated / args.seconds / 1024:.2f} KiB/s): {plain / deflated:.2f}x more bytes "
          f"without deflate; compressing costs the server {seconds / len(frames) * 1e6:.1f} us "
          "per frame per connection")
    return 0
