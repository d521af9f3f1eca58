"""The type-sniffing worker: libmagic on an upload's first bytes, in its own process.

Run as a script (``python -I _sniff.py PARAMS``), so the ``indexer`` package is never
imported here: the process starts in ~60 ms, most of it libmagic loading its database,
which is why the parent keeps one started ahead of need (``_runner._Spares``).
Like the extraction worker it sets its limits before it reads a byte, and cannot write
files (RLIMIT_FSIZE = 0) or dump core. Protocol: argv[1] = JSON ``{"memory_bytes",
"cpu_seconds", "max_bytes"}``; up to ``max_bytes`` on stdin; ``{"mime": ...}`` on stdout.
"""

from __future__ import annotations

import json
import os
import resource
import sys


def _cap(which: int, value: int, *, hard_too: bool = True) -> None:
    _soft, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value if hard_too else hard))


def main(argv: list[str]) -> int:
    params = json.loads(argv[1])
    _cap(resource.RLIMIT_AS, int(params["memory_bytes"]))
    _cap(resource.RLIMIT_CPU, int(params["cpu_seconds"]), hard_too=False)
    _cap(resource.RLIMIT_FSIZE, 0)
    _cap(resource.RLIMIT_CORE, 0)
    import magic  # before the bytes arrive: a spare worker waits here ready to answer

    data = sys.stdin.buffer.read(int(params["max_bytes"]))
    try:
        mime = str(magic.from_buffer(data, mime=True)) if data else ""
    except Exception:  # libmagic errors on odd input: unknown, not fatal
        mime = ""
    sys.stdout.write(json.dumps({"mime": mime.split(";")[0].strip().lower()}))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    # The answer is written and flushed: skip the interpreter's teardown (several ms of
    # an upload's wait), there is nothing to clean up in a process that wrote no file.
    os._exit(code)
