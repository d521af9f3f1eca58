"""``python -m bench`` runs every benchmark; ``python -m bench files --sizes 1M,100M`` one."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

# name → module with ``main(argv) -> int``; one entry per benchmark in this package.
BENCHMARKS = {"files": "bench.files", "sync": "bench.sync", "search": "bench.search",
              "export": "bench.export",
              "sync-open": "bench.sync_open", "sync-soak": "bench.sync_soak",
              "sync-deflate": "bench.sync_deflate"}
#: Not run by a bare ``python -m bench``: they hold the machine for minutes (soak) or write a
#: large log first (open); run them by name.
ON_REQUEST = {"sync-open", "sync-soak", "sync-deflate"}


def _load(name: str) -> Callable[[Sequence[str]], int]:
    module = importlib.import_module(BENCHMARKS[name])
    runner: Callable[[Sequence[str]], int] = module.main
    return runner


def main(argv: Sequence[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: python -m bench [{'|'.join(BENCHMARKS)}] [options]\n"
              "  no name: run every benchmark with its defaults")
        return 0
    if argv and not argv[0].startswith("-"):
        name, rest = argv[0], argv[1:]
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}",
                  file=sys.stderr)
            return 2
        return _load(name)(rest)
    status = 0
    for name in BENCHMARKS:
        if name in ON_REQUEST:
            continue
        print(f"== {name} ==", flush=True)
        status = max(status, _load(name)(argv))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
