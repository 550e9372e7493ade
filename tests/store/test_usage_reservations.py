"""Signature reservations in the store (`store/usage.py`): one quota for every process on a database.

The same contract on SQLite and PostgreSQL; on PostgreSQL, two database objects stand for two
replicas reserving at once, and a process that dies holding a reservation is really killed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from store.pg_cluster import PgCluster
from strongroom.store import Database, Repository
from strongroom.store import postgres as pg
from strongroom.store.usage import RESERVATION_TTL_MS, Reservations, Usage

REPO = Path(__file__).resolve().parents[2]

NOW = 1_700_000_000_000
MONTH = "2023-11"


def used(db: Database, org: str) -> int:
    return Repository(db).usage.signatures_used(org, MONTH)


async def test_reserve_within_the_quota_then_settle_or_release(db: Database) -> None:
    res, org = Reservations(db), str(uuid.uuid4())
    a = await res.reserve(org, MONTH, 3, 5, NOW)
    b = await res.reserve(org, MONTH, 2, 5, NOW)
    assert a is not None and b is not None
    assert res.reserved(org, MONTH, NOW) == 5
    assert await res.reserve(org, MONTH, 1, 5, NOW) is None  # 0 used + 5 reserved + 1 > 5
    assert res.reserved(org, MONTH, NOW) == 5  # a refusal writes nothing
    # a commits: its signatures become usage and its reservation goes, in one transaction
    await db.write(Usage.add_usage(org, MONTH, a.signatures) + res.release_ops(a))
    assert (used(db, org), res.reserved(org, MONTH, NOW)) == (3, 2)
    assert await res.reserve(org, MONTH, 1, 5, NOW) is None  # 3 used + 2 reserved + 1 > 5
    await res.release(b)  # b failed
    assert (used(db, org), res.reserved(org, MONTH, NOW)) == (3, 0)
    assert await res.reserve(org, MONTH, 2, 5, NOW) is not None
    assert await res.reserve(org, MONTH, 1, 5, NOW) is None
    # other organizations and other months have their own counts
    assert await res.reserve(str(uuid.uuid4()), MONTH, 5, 5, NOW) is not None
    assert await res.reserve(org, "2023-12", 5, 5, NOW) is not None


async def test_a_reservation_expires_on_its_own(db: Database) -> None:
    res, org = Reservations(db), str(uuid.uuid4())
    assert await res.reserve(org, MONTH, 4, 4, NOW) is not None
    later = NOW + RESERVATION_TTL_MS
    assert res.reserved(org, MONTH, later - 1) == 4
    assert res.reserved(org, MONTH, later) == 0
    assert await res.reserve(org, MONTH, 4, 4, later - 1) is None
    assert await res.reserve(org, MONTH, 4, 4, later) is not None
    assert db.one("SELECT count(*) FROM usage_reservations")[0] == 1  # the expired row was deleted


async def test_two_replicas_reserving_at_once_never_exceed_the_quota(cluster: PgCluster) -> None:
    url = cluster.create_database()
    a, b = pg.PostgresDatabase(url), pg.PostgresDatabase(url)
    org, quota = str(uuid.uuid4()), 25
    try:
        ra, rb = Reservations(a), Reservations(b)

        async def one(i: int) -> bool:
            res = ra if i % 2 else rb
            r = await res.reserve(org, MONTH, 1, quota, NOW)
            if r is None:
                return False
            if i % 3 == 0:  # some commit (usage row and reservation, as the pipeline does) ...
                db = a if i % 2 else b
                await db.write(Usage.add_usage(org, MONTH, 1) + res.release_ops(r))
            return True

        results = await asyncio.gather(*(one(i) for i in range(80)))
        assert sum(results) == quota
        assert used(a, org) + ra.reserved(org, MONTH, NOW) == quota
        assert used(a, org) == sum(1 for i, ok in enumerate(results) if ok and i % 3 == 0)
    finally:
        a.close()
        b.close()


_DIE_HOLDING = """
import asyncio, os, signal, sys
from strongroom.store.postgres import PostgresDatabase
from strongroom.store.usage import Reservations
db = PostgresDatabase(sys.argv[1])
r = asyncio.run(Reservations(db).reserve(sys.argv[2], "2023-11", 5, 5, int(sys.argv[3])))
assert r is not None
print("reserved", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


async def test_the_reservation_of_a_killed_process_expires(cluster: PgCluster) -> None:
    url, org = cluster.create_database(), str(uuid.uuid4())
    pg.PostgresDatabase(url).close()  # the schema
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    run = subprocess.run(
        [sys.executable, "-c", _DIE_HOLDING, url, org, str(NOW)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert run.stdout.strip() == "reserved"
    db = pg.PostgresDatabase(url)
    try:
        res = Reservations(db)
        assert await res.reserve(org, MONTH, 1, 5, NOW + 1000) is None  # still held by the dead process
        assert await res.reserve(org, MONTH, 5, 5, NOW + RESERVATION_TTL_MS) is not None  # expired: freed
    finally:
        db.close()
