"""SQLite with several writer processes: the flock handoff against SQLite's busy handler alone.

    .venv/bin/python bench/bench_writers.py [--processes 2] [--tasks 16] [--seconds 5] [--rounds 2]

Each process opens the same file as the daemon's workers do (`SqliteDatabase(shared=True)`: its
own group-commit writer, `BEGIN IMMEDIATE`, `synchronous=FULL`, WAL) and runs `--tasks` tasks
that each write one small row in a loop. `busy` closes the writer's flock first, so a waiting
writer is left to SQLite's busy handler. Prints jobs/s over all processes and each process's
p50/p99 write latency, alternating the two modes (`flock`, `busy`) for `--rounds`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from strongroom.store.sqlite import SqliteDatabase


def child(path: Path, k: int, handoff: bool, tasks: int, seconds: float, out: Path) -> None:
    db = SqliteDatabase(path, shared=True)
    writer = db._writer
    if not handoff and writer._lock_fd is not None:
        os.close(writer._lock_fd)
        writer._lock_fd = None
    latencies: list[float] = []

    async def task(n: int) -> None:
        i, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.perf_counter()
            await db.write([("INSERT INTO bench (k, n, i, pad) VALUES (?, ?, ?, ?)", (k, n, i, "x" * 300))])
            latencies.append(time.perf_counter() - t)
            i += 1

    async def main() -> None:
        await asyncio.gather(*(task(n) for n in range(tasks)))

    asyncio.run(main())
    batches = db.stats()["batches"]
    db.close()
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2] * 1000, latencies[int(len(latencies) * 0.99)] * 1000
    out.write_text(f"process {k}: {len(latencies)} writes in {batches} batches, p50 {p50:.2f} ms, p99 {p99:.2f} ms")


def run(mode: str, args: argparse.Namespace, tmp: Path) -> None:
    path = tmp / f"{mode}-{time.monotonic_ns()}.sqlite3"
    SqliteDatabase(path).close()  # the schema
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE bench (k, n, i, pad)")
    pids, outs = [], []
    for k in range(args.processes):
        out = tmp / f"out-{k}"
        outs.append(out)
        pid = os.fork()
        if pid == 0:  # nothing of the parent's store is open: each process opens its own
            code = 0
            try:
                child(path, k, mode == "flock", args.tasks, args.seconds, out)
            except BaseException:  # reported by the missing output
                code = 1
            os._exit(code)
        pids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT count(*) FROM bench").fetchone()[0]
    load = os.getloadavg()[0]
    print(f"{mode}: {rows / args.seconds:,.0f} writes/s over {args.processes} processes (load {load:.1f})")
    for out, code in zip(outs, codes, strict=True):
        print(f"  {out.read_text() if out.exists() else f'failed ({code})'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--tasks", type=int, default=16, help="concurrent writing tasks per process")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="strongroom-writers-") as tmp:
        for _ in range(args.rounds):
            for mode in ("flock", "busy"):
                run(mode, args, Path(tmp))


if __name__ == "__main__":
    main()
