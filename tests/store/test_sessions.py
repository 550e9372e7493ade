"""Dashboard sessions and login challenges in the store (migration 7), on SQLite and PostgreSQL.

Only digests of the bearer secrets are stored, a challenge is consumed once even when two
replicas race for it, the pending limits hold in the insert itself, and expired rows go.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from store.pg_cluster import PgCluster
from strongroom.store import Database, SqliteDatabase
from strongroom.store import postgres as pg
from strongroom.store.sessions import Challenge, ChallengeLimits, Session, SessionRepository, digest

NOW = 1_700_000_000_000
LIMITS = ChallengeLimits(per_email=3, per_client=4, total=7)


def challenge(secret: str, email: str = "a@example.com", client: str = "192.0.2.1", *, at: int = NOW) -> Challenge:
    return Challenge(digest(secret), "user-1", email, client, at * 1000, at + 120_000)


def test_both_tables_exist_with_the_same_columns_on_both_backends(tmp_path: Path, cluster: PgCluster) -> None:
    lite = SqliteDatabase(tmp_path / "s.sqlite3")
    post = pg.PostgresDatabase(cluster.create_database())
    try:
        for table in ("dashboard_sessions", "login_challenges"):
            lite_cols = [r["name"] for r in lite.all(f"PRAGMA table_info({table})")]
            pg_cols = [
                r[0]
                for r in post.all(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                    (table,),
                )
            ]
            assert lite_cols and lite_cols == pg_cols, table
    finally:
        lite.close()
        post.close()


async def test_a_challenge_is_taken_once_and_only_its_digest_is_stored(db: Database) -> None:
    repo = SessionRepository(db)
    assert await repo.add_challenge(challenge("secret-1"), LIMITS, NOW, replace="")
    stored = [tuple(r) for r in db.all("SELECT * FROM login_challenges")]
    assert "secret-1" not in repr(stored) and digest("secret-1") in repr(stored)
    assert repo.pending_challenges(NOW) == 1
    # Two requests race for it (the writer serialises them): exactly one gets it.
    results = await asyncio.gather(*(repo.take_challenge(digest("secret-1")) for _ in range(3)))
    assert sorted(r is None for r in results) == [False, True, True]
    taken = next(r for r in results if r is not None)
    assert (taken.user_id, taken.email, taken.expires_at) == ("user-1", "a@example.com", NOW + 120_000)
    assert await repo.take_challenge(digest("secret-1")) is None
    assert repo.pending_challenges(NOW) == 0


async def test_the_limits_hold_in_the_insert_and_expired_challenges_go(db: Database) -> None:
    repo = SessionRepository(db)
    for n in range(3):
        assert await repo.add_challenge(challenge(f"e{n}", client=f"c{n}"), LIMITS, NOW, replace="")
    # A fourth for the email is refused by the store itself, unless it replaces one.
    assert not await repo.add_challenge(challenge("e3", client="c9"), LIMITS, NOW, replace="")
    assert await repo.add_challenge(challenge("e3", client="c0"), LIMITS, NOW, replace=digest("e0"))
    assert [c for _, c in repo.challenges_of_email("a@example.com", NOW)] == ["c1", "c2", "c0"]  # oldest first
    for n in range(3):
        assert await repo.add_challenge(challenge(f"k{n}", f"k{n}@example.com", "c1"), LIMITS, NOW, replace="")
    assert repo.challenges_of_client("c1", NOW) == 4
    assert not await repo.add_challenge(challenge("k9", "k9@example.com", "c1"), LIMITS, NOW, replace="")
    assert await repo.add_challenge(challenge("t0", "t@example.com", "c7"), LIMITS, NOW, replace="")
    assert repo.pending_challenges(NOW) == 7
    assert not await repo.add_challenge(challenge("t1", "u@example.com", "c8"), LIMITS, NOW, replace="")
    # Two minutes later they have expired: the next insert purges them.
    later = NOW + 120_000
    assert repo.pending_challenges(later) == 0
    assert await repo.add_challenge(challenge("t1", "u@example.com", "c8", at=later), LIMITS, later, replace="")
    assert db.one("SELECT count(*) FROM login_challenges")[0] == 1


async def test_sessions_open_expire_and_close(db: Database) -> None:
    repo = SessionRepository(db)
    old = Session("u", "o", "a", NOW - 3_600_000, NOW - 1)
    await repo.open_session(digest("old"), old)
    live = Session("u", "o", "a", NOW, NOW + 1_800_000)
    await repo.open_session(digest("sid"), live)
    assert "sid" not in repr([tuple(r) for r in db.all("SELECT * FROM dashboard_sessions")])
    assert db.one("SELECT count(*) FROM dashboard_sessions")[0] == 1  # the expired one was purged
    assert repo.session(digest("sid"), NOW) == live
    assert repo.session(digest("sid"), NOW + 1_800_000) is None  # expired
    assert repo.session(digest("nope"), NOW) is None
    assert await repo.close_session(digest("sid"))
    assert repo.session(digest("sid"), NOW) is None
    assert not await repo.close_session(digest("sid"))


async def test_two_replicas_race_for_one_challenge(cluster: PgCluster) -> None:
    url = cluster.create_database()
    a, b = pg.PostgresDatabase(url), pg.PostgresDatabase(url)
    try:
        on_a, on_b = SessionRepository(a), SessionRepository(b)
        for n in range(20):
            assert await on_a.add_challenge(challenge(f"r{n}", f"r{n}@example.com"), LIMITS, NOW, replace="")
            got = await asyncio.gather(on_a.take_challenge(digest(f"r{n}")), on_b.take_challenge(digest(f"r{n}")))
            assert sum(g is not None for g in got) == 1, got
    finally:
        a.close()
        b.close()
