"""The type-sniffing worker: libmagic on an upload's first bytes, in its own process.

Run as a script (``python -I _sniff.py PARAMS``), so the ``indexer`` package is never
imported here: the process starts in ~60 ms, most of it libmagic loading its database.
Like the extraction worker it sets its limits before it reads a byte, and cannot write
files (RLIMIT_FSIZE = 0) or dump core. Protocol: argv[1] = JSON ``{"memory_bytes",
"cpu_seconds", "max_bytes"}``; up to ``max_bytes`` on stdin; ``{"mime": ...}`` on stdout.
"""

from __future__ import annotations

import json
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
    data = sys.stdin.buffer.read(int(params["max_bytes"]))
    import magic

    try:
        mime = str(magic.from_buffer(data, mime=True)) if data else ""
    except Exception:  # libmagic errors on odd input: unknown, not fatal
        mime = ""
    sys.stdout.write(json.dumps({"mime": mime.split(";")[0].strip().lower()}))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
