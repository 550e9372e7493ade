"""How the store's activity reads behave as the history grows (issue 21, "Scale"), run by hand.

Loads activities directly through the store (SQLite, the embedded default): the same
`Activities.insert_activity` operations the pipeline commits (the activity row and its audit
chain entry), 10,000 activities per write, so one transaction and one fsync per batch. The
database grows in place from 1k to 10k to 100k activities (and 1M with `--full`); at each size
it times, in one organization holding every activity:

- `get_activity`: `repo.activities.activity(org, id)` for random ids;
- `list_first`: `repo.activities.activities(org, limit=10)`, the first page of list_activities;
- `list_deep`: the page 90 % of the way down, by cursor (`before=<activity id>`), as
  service/queries.py passes `paginationOptions.before`;
- `by_fingerprint`: `repo.activities.activity_by_fingerprint(fp)`, the idempotency lookup;
- `startup`: opening the database (connections, migration check, writer thread) plus what the
  daemon reloads at start, the idempotency window (`recent_fingerprints` over the window
  pipeline.py uses with the default settings, 1 h + 5 min + 60 s, into a `RecentFingerprints`).

Activities are 4 s apart, so the window holds the same ~990 fingerprints at every size (the
start-up cost of a large history, not of a busier one). Reads run on a warm page cache, as in a
running daemon. Prints one table (median and p99, µs; start-up in ms) under a `scale` header,
then `EXPLAIN QUERY PLAN` of each query, captured from the store's own SQL.

    .venv/bin/python bench/bench_scale.py           # 1k, 10k, 100k: about 15 s
    .venv/bin/python bench/bench_scale.py --full    # and 1M: about 1.5 min, 2.2 GB in a temporary directory
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from strongroom.service.pipeline import RECENT_CAPACITY, RecentFingerprints
from strongroom.store import Activity, Repository, SqliteDatabase
from strongroom.store.group_commit import Op

T0_MS = 1_800_000_000_000
SPACING_MS = 4_000  # between two activities
WINDOW_MS = 60 * 60 * 1000 + 5 * 60 * 1000 + 60_000  # pipeline.py with the default settings
BATCH = 10_000
REPS = 2_000
STARTUPS = 25
ORG = str(uuid.UUID(int=1))
USER = str(uuid.UUID(int=2))


def activity_id(i: int) -> str:
    return str(uuid.UUID(int=(1 << 64) + i))


def fingerprint(i: int) -> str:
    return hashlib.sha256(b"request %d" % i).hexdigest()


def make(i: int) -> Activity:
    at = T0_MS + i * SPACING_MS
    return Activity(
        id=activity_id(i),
        organization_id=ORG,
        type="ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
        status="ACTIVITY_STATUS_COMPLETED",
        fingerprint=fingerprint(i),
        user_id=USER,
        intent={
            "signRawPayloadIntentV2": {
                "signWith": "0x" + f"{i:040x}",
                "payload": f"{i:064x}",
                "encoding": "PAYLOAD_ENCODING_HEXADECIMAL",
                "hashFunction": "HASH_FUNCTION_NO_OP",
            }
        },
        result={"signRawPayloadResult": {"r": f"{i:064x}", "s": f"{i + 1:064x}", "v": "00"}},
        failure=None,
        votes=[{"userId": USER, "selection": "VOTE_SELECTION_APPROVED", "createdAt": at}],
        created_at=at,
        updated_at=at,
        policy_evaluations=[],
    )


def load(repo: Repository, start: int, stop: int) -> float:
    """Activities [start, stop) in batches of BATCH, one transaction each; returns seconds."""
    began = time.perf_counter()
    for first in range(start, stop, BATCH):
        ops: list[Op] = []
        for i in range(first, min(first + BATCH, stop)):
            ops += repo.activities.insert_activity(make(i), b"request %d" % i, "stamp", "02ab")
        repo.write_sync(ops)
    return time.perf_counter() - began


def timed(fn: Callable[[int], object], reps: int) -> list[float]:
    out = []
    for r in range(reps):
        t = time.perf_counter()
        fn(r)
        out.append(time.perf_counter() - t)
    return out


def p99(samples: Sequence[float]) -> float:
    return sorted(samples)[min(len(samples) - 1, int(len(samples) * 0.99))]


def startup(path: Path, now_ms: int) -> tuple[float, int]:
    t = time.perf_counter()
    db = SqliteDatabase(path)
    repo = Repository(db)
    recent = RecentFingerprints(WINDOW_MS)
    recent.reload(repo.activities.recent_fingerprints(now_ms - WINDOW_MS, limit=recent.capacity + 1), now_ms)
    took = time.perf_counter() - t
    db.close()
    return took, len(recent)


def queries(repo: Repository, n: int) -> dict[str, Callable[[int], object]]:
    rng = random.Random(n)
    picks = [rng.randrange(n) for _ in range(REPS)]
    deep = activity_id(n - 1 - (n * 9) // 10)  # 90 % of the way down the newest-first list
    acts = repo.activities

    def get(r: int) -> object:
        found = acts.activity(ORG, activity_id(picks[r]))
        assert found is not None
        return found

    def first(_r: int) -> object:
        page = acts.activities(ORG, limit=10)
        assert len(page) == 10
        assert page[0].id == activity_id(n - 1)
        return page

    def deep_page(_r: int) -> object:
        page = acts.activities(ORG, limit=10, before=deep)
        assert len(page) == 10
        return page

    def by_fp(r: int) -> object:
        found = acts.activity_by_fingerprint(fingerprint(picks[r]))
        assert found is not None
        return found

    return {"get_activity": get, "list_first": first, "list_deep": deep_page, "by_fingerprint": by_fp}


def plans(repo: Repository, n: int) -> list[tuple[str, str, list[str]]]:
    """(query, SQL, plan lines) for the SQL each measured call runs, captured from the store."""
    db: Any = repo.db
    seen: list[tuple[str, Sequence[Any]]] = []
    real_one, real_all = db.one, db.all

    def one(sql: str, params: Sequence[Any] = ()) -> Any:
        seen.append((sql, params))
        return real_one(sql, params)

    def all_(sql: str, params: Sequence[Any] = ()) -> Any:
        seen.append((sql, params))
        return real_all(sql, params)

    out = []
    calls = dict(queries(repo, n))
    calls["recent_fingerprints"] = lambda _r: repo.activities.recent_fingerprints(
        T0_MS + n * SPACING_MS - WINDOW_MS, limit=RECENT_CAPACITY + 1
    )
    db.one, db.all = one, all_
    try:
        for name, fn in calls.items():
            seen.clear()
            fn(0)
            for sql, params in seen:
                rows = real_all("EXPLAIN QUERY PLAN " + sql, params)
                out.append((name, sql, [str(row["detail"]) for row in rows]))
    finally:
        del db.one, db.all
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="also 1,000,000 activities")
    args = parser.parse_args()
    sizes = [1_000, 10_000, 100_000] + ([1_000_000] if args.full else [])
    names = ["get_activity", "list_first", "list_deep", "by_fingerprint"]
    results: dict[int, dict[str, tuple[float, float]]] = {}
    window: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        path = Path(tmp) / "scale.sqlite3"
        db = SqliteDatabase(path)
        repo = Repository(db)
        loaded = 0
        for n in sizes:
            took = load(repo, loaded, n)
            print(f"loaded {loaded:,}..{n:,} activities in {took:.1f} s ({(n - loaded) / took:,.0f}/s)", flush=True)
            loaded = n
            row: dict[str, tuple[float, float]] = {}
            for name, fn in queries(repo, n).items():
                timed(fn, REPS // 4)  # warm up: statement cache, pages, the CPU's caches
                samples = timed(fn, REPS)
                row[name] = (statistics.median(samples) * 1e6, p99(samples) * 1e6)
            now_ms = T0_MS + (n - 1) * SPACING_MS + 1_000
            runs = [startup(path, now_ms) for _ in range(STARTUPS)]
            window[n] = runs[0][1]
            ms = [t * 1e3 for t, _ in runs]
            row["startup_ms"] = (statistics.median(ms), p99(ms))
            results[n] = row
        explained = plans(repo, loaded)
        size_mb = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1e6
        db.close()

    print()
    print(f"scale (SQLite, one organization; µs per call, median/p99 of {REPS}; startup in ms, of {STARTUPS})")
    header = f"{'activities':>11} " + " ".join(f"{c:>19}" for c in [*names, "startup_ms"]) + "  window"
    print(header)
    for n, row in results.items():
        cells = " ".join(f"{f'{row[c][0]:.1f}/{row[c][1]:.1f}':>19}" for c in [*names, "startup_ms"])
        print(f"{n:>11,} {cells}  {window[n]:>6}")
    first, last = sizes[0], sizes[-1]
    ratios = ", ".join(f"{c}={results[last][c][0] / results[first][c][0]:.2f}" for c in [*names, "startup_ms"])
    print(f"median ratio {last:,}/{first:,}: {ratios}  (database and WAL {size_mb:.0f} MB at {last:,})")
    print()
    print("EXPLAIN QUERY PLAN")
    for name, sql, lines in explained:
        print(f"{name}: {' '.join(sql.split())}")
        for line in lines:
            print(f"    {line}")


if __name__ == "__main__":
    main()
