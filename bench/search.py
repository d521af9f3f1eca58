"""Full-text search: indexing rate and query latency, with and without encryption at rest,
next to SQLite FTS5 on the same corpus.

The corpus is synthetic Dutch and English: a Zipf-like vocabulary (real function words at
the top, generated Dutch/English-looking content words below), documents of 200-2,000
words spread over 2,000 folders. Queries: one word, two words, a phrase (taken from a
document so it exists) and a prefix (``wat*``), by a person who may read 5 folders and one
who may read 1,000 (half the corpus).

Goal (issue "Full-text search"): p95 <= 50 ms on 100,000 documents with the access
filter and encryption on.

    python -m bench search [--docs 100000] [--queries 100] [--seed 7] [--work-dir DIR]
                           [--keep] [--no-plain] [--no-fts]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from indexer import IndexDocument, SearchIndex
from storage import KeyRing

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CACHE_DIR = Path(__file__).resolve().parent / ".cache"  # git-ignored
FOLDERS = 2000
GOAL_P95_MS = 50.0
PAGE_SIZE = 10

_NL_FUNCTION = ("de het een en van in is dat op te zijn met voor niet aan er om ook als "
                "bij door maar over naar dan wordt worden nog uit kan tot deze").split()
_EN_FUNCTION = ("the of and to a in is that for it on with as was be by this are or from "
                "at not have an which but they".split())
_SYLLABLES = ("ver be ge ont wo ning dijk wa ter ge meen te raad huis straat plan beleid "
              "pro vin cie zee land ha ven stad bo uw kos ten re gel wet gen lijk heid "
              "pol icy hous ing coun cil wa ter re port man age ment de vel op er ship "
              "ac tion fund plan ning flood de fence pub lic ser vice").split()


def vocabulary(rng: random.Random, size: int) -> list[str]:
    words = _NL_FUNCTION + _EN_FUNCTION
    seen = set(words)
    while len(words) < size:
        w = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3, 3, 4))))
        if rng.random() < 0.3:
            w += rng.choice(("en", "s", "ingen", "heden", "e", "ed", "ing", "ies"))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


class Corpus:
    def __init__(self, count: int, seed: int) -> None:
        self.count = count
        self.seed = seed
        rng = random.Random(seed)
        self.vocab = vocabulary(rng, 60_000)
        weights = [1.0 / (rank + 1) ** 1.07 for rank in range(len(self.vocab))]
        total = 0.0
        self.cum: list[float] = []
        for w in weights:
            total += w
            self.cum.append(total)

    def docs(self) -> Iterator[tuple[int, str, str, str, datetime]]:
        rng = random.Random(self.seed + 1)
        base = datetime(2024, 1, 1)
        for i in range(self.count):
            n = rng.randint(200, 2000)
            words = rng.choices(self.vocab, cum_weights=self.cum, k=n)
            title = " ".join(words[:6]).capitalize()
            folder = f"f{rng.randrange(FOLDERS):04d}"
            yield i, folder, title, " ".join(words), base + timedelta(minutes=i)

    def index_documents(self) -> Iterator[IndexDocument]:
        for i, folder, title, body, modified in self.docs():
            yield IndexDocument(document_id=f"d{i}", folder_id=folder, group_id=f"g{folder[1:3]}",
                                title=title, kind="note", modified=modified, pages=(body,))


def make_queries(corpus: Corpus, count: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed + 2)
    content = corpus.vocab[len(_NL_FUNCTION) + len(_EN_FUNCTION):]
    mid = content[50:5000]  # neither stop-word-like nor hapax
    sample_docs: list[str] = []
    for _i, _folder, _title, body, _m in corpus.docs():
        sample_docs.append(body)
        if len(sample_docs) >= 500:
            break
    stop = set(_NL_FUNCTION + _EN_FUNCTION)
    phrases = []
    while len(phrases) < count:
        # Two adjacent words of a real document, starting at a content word (what
        # people quote); a pair of function words ("de om") is not a real query.
        words = rng.choice(sample_docs).split()
        start = rng.randrange(len(words) - 2)
        if words[start] not in stop:
            phrases.append('"' + " ".join(words[start : start + 2]) + '"')
    return {
        "one word": [rng.choice(mid) for _ in range(count)],
        "two words": [f"{rng.choice(mid[:1000])} {rng.choice(mid[:1000])}" for _ in range(count)],
        "phrase": phrases,
        # What people type while they are not sure of the ending: the first 3-5 letters.
        "prefix": [rng.choice(mid)[: rng.randint(3, 5)] + "*" for _ in range(count)],
    }


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def build_whoosh(corpus: Corpus, root: Path, ring: KeyRing | None) -> tuple[SearchIndex, float]:
    index = SearchIndex(root, ring)
    started = time.perf_counter()
    index.rebuild(corpus.index_documents(), commit_every=max(corpus.count, 1))
    return index, time.perf_counter() - started


def cached_whoosh(corpus: Corpus, name: str, encrypted: bool,
                  rebuild: bool) -> tuple[SearchIndex, float | None]:
    """The index of this corpus from bench/.cache/, built (and kept) on first use.

    Returns (index, indexing seconds or None when reused). The cache key is the
    corpus (documents, seed) and the engine; a half-built entry has no ``done``
    marker and is rebuilt.
    """
    entry = CACHE_DIR / (f"search-{corpus.count}-{corpus.seed}-{FOLDERS}f-"
                         f"{name.replace(' ', '-')}")
    if rebuild or not (entry / "done").exists():
        shutil.rmtree(entry, ignore_errors=True)
        entry.mkdir(parents=True)
        ring = KeyRing.create(entry / "keys.json") if encrypted else None
        index, seconds = build_whoosh(corpus, entry / "index", ring)
        (entry / "done").write_text(json.dumps({"index_seconds": seconds}))
        return index, seconds
    ring = KeyRing.load(entry / "keys.json") if encrypted else None
    return SearchIndex(entry / "index", ring, create=False), None


def time_whoosh(index: SearchIndex, queries: dict[str, list[str]],
                folders: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # The first query of a new folder set builds its filter (cached per searcher after).
    started = time.perf_counter()
    index.search(queries["one word"][0], readable_folder_ids=folders, page_size=PAGE_SIZE)
    out["first query (filter build), ms"] = (time.perf_counter() - started) * 1000
    for kind, qs in queries.items():
        lat = []
        hits = 0
        for q in qs:
            t = time.perf_counter()
            r = index.search(q, readable_folder_ids=folders, page_size=PAGE_SIZE)
            lat.append((time.perf_counter() - t) * 1000)
            hits += r.total
        out[kind] = {"p50": statistics.median(lat), "p95": percentile(lat, 95),
                     "mean_total": hits / len(qs)}
    return out


def build_fts(corpus: Corpus, path: Path) -> tuple[sqlite3.Connection, float]:
    db = sqlite3.connect(path)
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, body, folder_id UNINDEXED, "
               "tokenize='unicode61 remove_diacritics 2')")
    started = time.perf_counter()
    with db:
        db.executemany("INSERT INTO docs(rowid, title, body, folder_id) VALUES (?, ?, ?, ?)",
                       ((i, title, body, folder) for i, folder, title, body, _m in corpus.docs()))
    db.execute("INSERT INTO docs(docs) VALUES ('optimize')")
    return db, time.perf_counter() - started


def time_fts(db: sqlite3.Connection, queries: dict[str, list[str]],
             folders: set[str]) -> dict[str, Any]:
    marks = ",".join("?" * len(folders))
    args = sorted(folders)
    out: dict[str, Any] = {}
    for kind, qs in queries.items():
        lat = []
        hits = 0
        for q in qs:
            if q.startswith('"') or q.endswith("*"):  # a phrase, or a bareword prefix
                match = q
            else:
                match = " AND ".join(f'"{w}"' for w in q.split())
            t = time.perf_counter()
            total = db.execute(f"SELECT count(*) FROM docs WHERE docs MATCH ? "  # noqa: S608
                               f"AND folder_id IN ({marks})", (match, *args)).fetchone()[0]
            db.execute(f"SELECT rowid, title, snippet(docs, 1, '<mark>', '</mark>', '…', 24) "  # noqa: S608
                       f"FROM docs WHERE docs MATCH ? AND folder_id IN ({marks}) "
                       f"ORDER BY rank LIMIT {PAGE_SIZE}", (match, *args)).fetchall()
            lat.append((time.perf_counter() - t) * 1000)
            hits += total
        out[kind] = {"p50": statistics.median(lat), "p95": percentile(lat, 95),
                     "mean_total": hits / len(qs)}
    return out


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100, help="per query type")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--no-plain", action="store_true", help="skip the unencrypted whoosh run")
    parser.add_argument("--no-fts", action="store_true", help="skip the SQLite FTS5 baseline")
    parser.add_argument("--no-cache", action="store_true",
                        help="index into the work dir instead of reusing bench/.cache/")
    parser.add_argument("--rebuild-cache", action="store_true",
                        help="rebuild the cached indexes in bench/.cache/")
    args = parser.parse_args(list(argv))

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="plein-bench-search-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(args.docs, args.seed)
    t = time.perf_counter()
    words = sum(len(body.split()) for _i, _f, _t, body, _m in corpus.docs())
    gen_s = time.perf_counter() - t
    print(f"corpus: {args.docs:,} documents, {words:,} words "
          f"(generation alone {gen_s:.1f} s, included in the indexing times below)", flush=True)
    queries = make_queries(corpus, args.queries, args.seed)
    rng = random.Random(args.seed + 3)
    all_folders = [f"f{i:04d}" for i in range(FOLDERS)]
    people = {"5 folders": set(rng.sample(all_folders, 5)),
              "1,000 folders": set(rng.sample(all_folders, 1000))}
    results: dict[str, Any] = {"docs": args.docs, "words": words, "queries_per_type": args.queries,
                               "page_size": PAGE_SIZE, "engines": {}}
    engines: list[tuple[str, bool]] = [("whoosh encrypted", True)]
    if not args.no_plain:
        engines.append(("whoosh plain", False))
    try:
        for name, encrypted in engines:
            if args.no_cache:
                ring = KeyRing.create(work / "keys.json") if encrypted else None
                index, seconds = build_whoosh(corpus, work / name.replace(" ", "-"), ring)
            else:
                index, built = cached_whoosh(corpus, name, encrypted, args.rebuild_cache)
                if built is None:  # reused: report the indexing time of the build
                    done = json.loads((index.root.parent / "done").read_text())
                    seconds = float(done["index_seconds"])
                    print(f"{name}: reusing {index.root.parent} (delete it or pass "
                          "--rebuild-cache to re-index)", flush=True)
                else:
                    seconds = built
            entry: dict[str, Any] = {"index_docs_per_s": args.docs / seconds,
                                     "index_seconds": seconds,
                                     "size_mib": dir_size(index.root) / 2**20}
            print(f"{name}: indexed in {seconds:.0f} s ({entry['index_docs_per_s']:.0f} docs/s), "
                  f"{entry['size_mib']:.0f} MiB", flush=True)
            for person, folders in people.items():
                entry[person] = time_whoosh(index, queries, folders)
            index.close()
            results["engines"][name] = entry
        if not args.no_fts:
            db, seconds = build_fts(corpus, work / "fts.sqlite")
            entry = {"index_docs_per_s": args.docs / seconds, "index_seconds": seconds,
                     "size_mib": (work / "fts.sqlite").stat().st_size / 2**20}
            print(f"sqlite fts5: indexed in {seconds:.0f} s "
                  f"({entry['index_docs_per_s']:.0f} docs/s)", flush=True)
            for person, folders in people.items():
                entry[person] = time_fts(db, queries, folders)
            db.close()
            results["engines"]["sqlite fts5"] = entry
    finally:
        if not args.keep and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'engine':<18}{'docs/s':>8}{'MiB':>7}  {'person':<12}"
          + "".join(f"{k + ' p50/p95 ms':>24}" for k in queries))
    for name, entry in results["engines"].items():
        for person in people:
            cells = "".join(f"{entry[person][k]['p50']:>12.1f}/{entry[person][k]['p95']:<11.1f}"
                            for k in queries)
            print(f"{name:<18}{entry['index_docs_per_s']:>8.0f}{entry['size_mib']:>7.0f}  "
                  f"{person:<12}{cells}")
    enc = results["engines"].get("whoosh encrypted", {})
    worst = max(enc[p][k]["p95"] for p in people for k in queries) if enc else float("nan")
    verdict = "met" if worst <= GOAL_P95_MS else f"MISSED by {worst - GOAL_P95_MS:.1f} ms"
    print(f"\ngoal p95 <= {GOAL_P95_MS:.0f} ms (encrypted, access filter, {args.docs:,} docs): "
          f"worst p95 {worst:.1f} ms -> {verdict}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS_DIR / f"search-{stamp}.json").write_text(json.dumps(results, indent=2))
    return 0
