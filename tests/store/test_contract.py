"""One contract for both stores: every test runs unchanged on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from store.pg_cluster import PgCluster
from strongroom.errors import Conflict
from strongroom.hsm.keystore import Notary
from strongroom.store import Database, Repository, SqliteDatabase, audit, open_database, schema
from strongroom.store import postgres as pg
from strongroom.store import sqlite as sq
from strongroom.store.records import (
    Activity,
    ApiKey,
    Authenticator,
    Organization,
    PolicyRecord,
    PrivateKey,
    Tag,
    User,
    WebhookEvent,
)

NOW = 1_700_000_000_000  # milliseconds: does not fit in 32 bits


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None, Path]]:
    """(name, database_url, sqlite path): a fresh empty database of each kind."""
    if request.param == "sqlite":
        yield "sqlite", None, tmp_path / "s.sqlite3"
    else:
        cluster = request.getfixturevalue("cluster")
        yield "postgres", cluster.create_database(), tmp_path / "unused.sqlite3"


@pytest.fixture
def db(backend: tuple[str, str | None, Path]) -> Iterator[Database]:
    _, url, path = backend
    d = open_database(url, path)
    yield d
    d.close()


@pytest.fixture
def repo(db: Database, token: Any) -> Repository:
    """The repository as the daemon runs it: every read verified, every write notarised by the token."""
    r = Repository(db)
    r.set_notary(Notary(token))
    return r


def ids(n: int = 1) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


def seed(repo: Repository) -> tuple[Organization, User]:
    org_id, user_id, key_id = ids(3)
    org = Organization(org_id, "org", None, 1, (user_id,), NOW, NOW)
    user = User(user_id, org_id, "root", "Root@Example.com", "ACCESS_TYPE_API", ("t1",), NOW, NOW, "+15550100")
    key = ApiKey(key_id, user_id, org_id, "k", "02AB" * 16 + "cd", "API_KEY_CURVE_P256", None, NOW, NOW)
    repo.write_sync(
        [
            *repo.organizations.insert_organization(org),
            *repo.users.insert_user(user),
            *repo.organizations.insert_root_users(org_id, [user_id]),
            *repo.users.insert_api_key(key),
        ]
    )
    return org, user


def activity(org: Organization, user: User, *, status: str = "ACTIVITY_STATUS_COMPLETED", fp: str = "") -> Activity:
    (aid,) = ids()
    return Activity(
        id=aid,
        organization_id=org.id,
        type="ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
        status=status,
        fingerprint=fp or uuid.uuid4().hex,
        user_id=user.id,
        intent={"signRawPayloadIntentV2": {"payload": "50%?"}},
        result={"signRawPayloadResult": {"r": "01"}},
        failure=None,
        votes=[{"userId": user.id}],
        created_at=NOW,
        updated_at=NOW,
        policy_evaluations=[{"policyId": "p"}],
    )


def chain_problems(db: Database) -> list[str]:
    """The audit chain read through the store interface (works on both backends)."""
    prev, expected, problems = audit.GENESIS, 1, []
    for row in db.all("SELECT seq, body, prev_hash, hash FROM audit_log ORDER BY seq"):
        seq, body, prev_hash, h = row[0], row["body"], row["prev_hash"], row["hash"]
        if seq != expected or prev_hash != prev or audit.entry_hash(prev_hash, seq, body.encode()) != h:
            problems.append(f"broken at {seq}")
        prev, expected = h, expected + 1
    return problems


# -- migrations -------------------------------------------------------------------------------------
def test_both_backends_have_the_same_migration_versions() -> None:
    assert len(sq.MIGRATIONS) == len(pg.MIGRATIONS)


def test_migrations_are_versioned_and_idempotent(backend: tuple[str, str | None, Path]) -> None:
    _, url, path = backend
    first = open_database(url, path)
    try:
        row = first.one("SELECT max(version) FROM schema_version")
        assert row is not None and row[0] == len(sq.MIGRATIONS)
        seed(Repository(first))
    finally:
        first.close()
    again = open_database(url, path)  # start-up again: nothing re-applied, data kept
    try:
        rows = again.all("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in rows] == list(range(1, len(sq.MIGRATIONS) + 1))
        assert len(Repository(again).organizations.organizations()) == 1
    finally:
        again.close()


@pytest.mark.parametrize("version", [1, 3, 5])
def test_a_database_at_an_older_version_opens_and_migrates(backend: tuple[str, str | None, Path], version: int) -> None:
    """A database written by an older release (its schema as the steps up to `version` built it,
    with rows in it) opens, migrates to the latest version and keeps its rows."""
    name, url, path = backend
    scripts = (sq.MIGRATIONS if name == "sqlite" else pg.MIGRATIONS)[:version]
    statements = [schema.VERSION_TABLE, *(s for script in scripts for s in script)]
    statements += [f"INSERT INTO schema_version (version) VALUES ({v})" for v in range(1, version + 1)]
    statements.append(
        "INSERT INTO organizations (id, name, parent_id, root_quorum_threshold, created_at, updated_at)"
        f" VALUES ('o1', 'old', NULL, 1, {NOW}, {NOW})"
    )
    if url is None:
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            for statement in statements:
                conn.execute(statement)
    else:
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)
    db = open_database(url, path)
    try:
        assert [r[0] for r in db.all("SELECT version FROM schema_version ORDER BY version")] == list(
            range(1, len(schema.STEPS) + 1)
        )
        assert [r["name"] for r in db.all("SELECT name FROM organizations")] == ["old"]
        assert {t: columns(db, name, t) for t in schema.table_names()} == {
            t.name: [c.name for c in t.columns] + added(t.name) for t in tables()
        }
    finally:
        db.close()


def columns(db: Database, dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return [r["name"] for r in db.all(f"PRAGMA table_info({table})")]
    return [
        r[0]
        for r in db.all(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            (table,),
        )
    ]


def tables() -> list[schema.Table]:
    return [c for step in schema.STEPS for c in step.changes if isinstance(c, schema.Table)]


def added(table: str) -> list[str]:
    return [
        c.column.name
        for step in schema.STEPS
        for c in step.changes
        if isinstance(c, schema.AddColumn) and c.table == table
    ]


def test_the_schemas_have_the_same_tables_and_columns(tmp_path: Path, cluster: PgCluster) -> None:
    lite = SqliteDatabase(tmp_path / "s.sqlite3")
    post = pg.PostgresDatabase(cluster.create_database())
    try:
        tables = [r[0] for r in lite.all("SELECT name FROM sqlite_master WHERE type = 'table'")]
        tables = [t for t in tables if not t.startswith("sqlite_")]
        for table in tables:
            lite_cols = [r["name"] for r in lite.all(f"PRAGMA table_info({table})")]
            pg_cols = [
                r[0]
                for r in post.all(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                    (table,),
                )
            ]
            assert lite_cols == pg_cols, table
    finally:
        lite.close()
        post.close()


# -- rows and reads -------------------------------------------------------------------------------
def test_rows_are_read_by_name_and_by_position(repo: Repository) -> None:
    org, _ = seed(repo)
    row = repo.db.one("SELECT id, name, created_at FROM organizations WHERE id = ?", (org.id,))
    assert row is not None
    assert row["id"] == row[0] == org.id
    assert row["name"] == row[1] == "org"
    assert row["created_at"] == row[2] == NOW
    assert repo.db.one("SELECT id FROM organizations WHERE id = ?", ("nope",)) is None
    assert repo.db.all("SELECT id FROM organizations WHERE id = ?", ("nope",)) == []


def test_organizations_users_and_credentials(repo: Repository) -> None:
    org, user = seed(repo)
    assert repo.organizations.organization(org.id) == org
    assert repo.organizations.organizations() == [org]
    assert repo.users.user(user.id) == user
    assert repo.users.users(org.id) == [user]
    assert repo.users.user_count(org.id) == 1
    assert repo.users.user_by_email("root@EXAMPLE.com") == user
    key = repo.users.api_key_in_org(org.id, "02ab" * 16 + "CD")
    assert key is not None and key.user_id == user.id
    assert repo.users.api_keys_of_user(user.id) == [key]
    assert repo.users.api_key(org.id, key.id) == key

    updated = replace(user, name="renamed", email=None, tags=("a", "b"), updated_at=NOW + 1)
    repo.write_sync(repo.users.update_user(updated))
    assert repo.users.user(user.id) == updated
    repo.write_sync(repo.tags.set_user_tags(org.id, user.id, ["x"], NOW + 2))
    got = repo.users.user(user.id)
    assert got is not None and got.tags == ("x",)

    (sub_id,) = ids()
    repo.write_sync(
        repo.organizations.insert_organization(Organization(sub_id, "sub", org.id, 1, (), NOW + 5, NOW + 5))
    )
    assert repo.organizations.sub_organization_ids(org.id) == [sub_id]
    assert [o.id for o in repo.organizations.organizations()] == [org.id]

    repo.write_sync(repo.organizations.set_root_quorum(org.id, 1, [], NOW + 3))
    o = repo.organizations.organization(org.id)
    assert o is not None and o.root_user_ids == ()
    repo.write_sync(repo.users.delete_api_key(org.id, key.id))
    assert repo.users.api_key(org.id, key.id) is None
    repo.write_sync(repo.users.delete_user(org.id, user.id))
    assert repo.users.user(user.id) is None


def test_email_is_unique(repo: Repository) -> None:
    org, user = seed(repo)
    (other,) = ids()
    with pytest.raises(Conflict):
        repo.write_sync(repo.users.insert_user(replace(user, id=other)))


def test_passkeys(repo: Repository) -> None:
    org, user = seed(repo)
    (aid,) = ids()
    a = Authenticator(
        aid, user.id, org.id, "pk", "cred", b"\x00\xffcose", "02aa", "aaguid", "none", ("USB",), 0, NOW, NOW
    )
    repo.write_sync(repo.users.insert_authenticator(a))
    assert repo.users.authenticator(org.id, aid) == a
    assert repo.users.authenticator_by_credential_id(org.id, "cred") == a
    assert repo.users.authenticator_by_public_key(org.id, "02aa") == a
    assert repo.users.authenticators_of_user(user.id) == [a]
    repo.write_sync(repo.users.advance_sign_count(aid, 5))
    repo.write_sync(repo.users.advance_sign_count(aid, 3))  # never backwards
    got = repo.users.authenticator(org.id, aid)
    assert got is not None and got.sign_count == 5
    repo.write_sync(repo.users.delete_authenticator(org.id, aid))
    assert repo.users.authenticator(org.id, aid) is None


def test_private_keys_and_addresses(repo: Repository) -> None:
    org, _ = seed(repo)
    (kid,) = ids()
    key = PrivateKey(
        kid,
        org.id,
        "wallet",
        "CURVE_SECP256K1",
        b"\x04" + bytes(range(64)),
        "token",
        None,
        (("ADDRESS_FORMAT_ETHEREUM", "0xAbC0000000000000000000000000000000000001"),),
        ("t",),
        NOW,
        NOW,
    )
    repo.write_sync(repo.private_keys.insert_private_key(key))
    assert repo.private_keys.private_key(org.id, kid) == key
    assert repo.private_keys.private_key_by_address(org.id, "0xabc0000000000000000000000000000000000001") == key
    assert repo.private_keys.private_keys(org.id) == [key]
    assert repo.private_keys.private_key_name_taken(org.id, "wallet")
    assert not repo.private_keys.private_key_name_taken(org.id, "other")
    with pytest.raises(Conflict):
        repo.write_sync(repo.private_keys.insert_private_key(replace(key, id=str(uuid.uuid4()))))  # same name
    repo.write_sync(repo.tags.set_private_key_tags(org.id, kid, ["u"], NOW + 1))
    got = repo.private_keys.private_key(org.id, kid)
    assert got is not None and got.tags == ("u",)
    wrapped = replace(key, id=str(uuid.uuid4()), name="w2", wrapped=b"\x00sealed", addresses=())
    repo.write_sync(repo.private_keys.insert_private_key(wrapped))
    assert repo.private_keys.private_key(org.id, wrapped.id) == wrapped


def test_policies_and_tags(repo: Repository) -> None:
    org, _ = seed(repo)
    (pid, tid) = ids(2)
    p = PolicyRecord(pid, org.id, "allow", "EFFECT_ALLOW", "activity.type == 'x'", "", "", "50% ?", NOW, NOW)
    repo.write_sync(repo.policies.insert_policy(p))
    assert repo.policies.policies(org.id) == [p]
    assert repo.policies.policy(org.id, pid) == p
    p2 = replace(p, notes="n", updated_at=NOW + 1)
    repo.write_sync(repo.policies.update_policy(p2))
    assert repo.policies.policy(org.id, pid) == p2
    repo.write_sync(repo.policies.delete_policy(org.id, pid))
    assert repo.policies.policies(org.id) == []

    t = Tag(tid, org.id, "ops", "TAG_TYPE_USER", NOW, NOW)
    repo.write_sync(repo.tags.insert_tag(t))
    assert repo.tags.tags(org.id, "TAG_TYPE_USER") == [t]
    repo.write_sync(repo.tags.rename_tag(org.id, tid, "ops2", NOW + 1))
    assert repo.tags.tags(org.id, "TAG_TYPE_USER")[0].name == "ops2"
    repo.write_sync(repo.tags.delete_tag(org.id, tid))
    assert repo.tags.tags(org.id, "TAG_TYPE_USER") == []


def test_usage_and_quota(repo: Repository) -> None:
    org, _ = seed(repo)
    assert repo.usage.signatures_used(org.id, "2026-11") == 0
    repo.write_sync(repo.usage.add_usage(org.id, "2026-11", 2))
    repo.write_sync(repo.usage.add_usage(org.id, "2026-11", 3))
    assert repo.usage.signatures_used(org.id, "2026-11") == 5
    assert repo.usage.signature_quota(org.id) is None
    repo.write_sync(repo.usage.set_signature_quota(org.id, 10))
    assert repo.usage.signature_quota(org.id) == 10


# -- activities, idempotency, conditional updates, the audit chain ----------------------------------
def test_activities_round_trip_and_list(repo: Repository) -> None:
    org, user = seed(repo)
    recorded = []
    for i in range(5):
        a = replace(activity(org, user), created_at=NOW + i, updated_at=NOW + i)
        repo.write_sync(repo.activities.insert_activity(a, b"request %d" % i, "stamp", "02ab"))
        recorded.append(a)
    assert repo.activities.activity(org.id, recorded[0].id) == recorded[0]
    assert repo.activities.activity_by_fingerprint(recorded[1].fingerprint) == recorded[1]
    newest_first = [a.id for a in reversed(recorded)]
    assert [a.id for a in repo.activities.activities(org.id, limit=10)] == newest_first
    assert [a.id for a in repo.activities.activities(org.id, limit=2, before=newest_first[1])] == newest_first[2:4]
    assert [a.id for a in repo.activities.activities(org.id, limit=2, after=newest_first[3])] == newest_first[1:3]
    assert repo.activities.activities(org.id, statuses=["ACTIVITY_STATUS_FAILED"]) == []
    assert len(repo.activities.activities(org.id, types=["ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"], limit=100)) == 5
    newest_fingerprints = [a.fingerprint for a in reversed(recorded)]
    assert [fp for fp, _ in repo.activities.recent_fingerprints(NOW + 3, limit=10)] == newest_fingerprints[:2]
    assert [fp for fp, _ in repo.activities.recent_fingerprints(NOW, limit=3)] == newest_fingerprints[:3]
    assert chain_problems(repo.db) == []
    assert repo.db.audit_head()[0] == 1 + 5  # the seed's `state` entry, then the activities


async def test_identical_fingerprint_is_a_conflict_and_leaves_others_alone(repo: Repository) -> None:
    org, user = seed(repo)
    first = activity(org, user, fp="f" * 64)
    twin = replace(activity(org, user, fp="f" * 64), result={"other": "signature"})
    bystander = activity(org, user)
    results = await asyncio.gather(
        repo.write(repo.activities.insert_activity(first, b"r", "s", "k")),
        repo.write(repo.activities.insert_activity(twin, b"r", "s", "k")),
        repo.write(repo.activities.insert_activity(bystander, b"r2", "s", "k")),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], Conflict)
    assert repo.activities.activity_by_fingerprint("f" * 64) == first  # the loser's result was never recorded
    assert repo.activities.activity(org.id, bystander.id) == bystander
    assert chain_problems(repo.db) == []
    assert repo.db.audit_head()[0] == 1 + 2  # the seed's state entry; no entry for the loser


async def test_conditional_update_only_from_the_expected_status(repo: Repository) -> None:
    org, user = seed(repo)
    waiting = activity(org, user, status="ACTIVITY_STATUS_CONSENSUS_NEEDED")
    await repo.write(repo.activities.insert_activity(waiting, b"r", "s", "k"))
    done = replace(waiting, status="ACTIVITY_STATUS_COMPLETED", updated_at=NOW + 1)
    twice = asyncio.gather(
        repo.write(repo.activities.update_activity(done, expected_status="ACTIVITY_STATUS_CONSENSUS_NEEDED")),
        repo.write(repo.activities.update_activity(done, expected_status="ACTIVITY_STATUS_CONSENSUS_NEEDED")),
        return_exceptions=True,
    )
    results = await twice
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "NoneType"]
    assert repo.activities.activity(org.id, waiting.id) == done
    assert repo.db.audit_head()[0] == 1 + 2  # the seed's state entry, the insert and one completion
    assert chain_problems(repo.db) == []


def test_audit_chain_with_refusals_and_a_failed_job(repo: Repository) -> None:
    org, user = seed(repo)
    repo.write_sync(repo.activities.audit_refusal(NOW, org.id, user.id, "k", "T", "denied", "PERMISSION_DENIED"))
    a = activity(org, user)
    repo.write_sync(repo.activities.insert_activity(a, b"r", "s", "k"))
    with pytest.raises(Conflict):
        repo.write_sync(repo.activities.insert_activity(a, b"r", "s", "k"))
    repo.write_sync(repo.activities.audit_refusal(NOW, org.id, user.id, "k", "T", "denied", "PERMISSION_DENIED"))
    seq, head = repo.db.audit_head()
    assert seq == 1 + 3 and len(head) == 64  # the seed's state entry first
    assert chain_problems(repo.db) == []
    # The dashboard's per-activity audit trail, in portable SQL (it used SQLite's json_extract).
    entries = repo.activities.audit_entries_of_activity(org.id, a.id)
    assert [e["activity_id"] for _, _, e in entries] == [a.id]
    assert repo.activities.audit_entries_of_activity("another-org", a.id) == []
    assert repo.activities.audit_entries_of_activity(org.id, "not-a-uuid%") == []


async def test_failure_and_probe(db: Database) -> None:
    assert db.failure is None
    assert await db.probe()
    assert db.stats()["jobs"] >= 1


async def test_exclusive_is_reentrant_free_and_released(db: Database) -> None:
    async with db.exclusive("activity:x"):
        pass
    async with db.exclusive("activity:x"):  # released: can be taken again
        pass


def test_sqlite_rows_are_sqlite_rows(tmp_path: Path) -> None:
    d = SqliteDatabase(tmp_path / "x.sqlite3")
    try:
        assert isinstance(d.one("SELECT 1 AS one"), sqlite3.Row)
        assert not d.shared
    finally:
        d.close()


# -- PostgreSQL only: several replicas on one database ------------------------------------------------
async def test_two_replicas_keep_one_linear_audit_chain(cluster: PgCluster) -> None:
    url = cluster.create_database()
    a, b = pg.PostgresDatabase(url), pg.PostgresDatabase(url)
    try:
        ra, rb = Repository(a), Repository(b)
        assert a.shared and b.shared
        org, user = seed(ra)
        writes: list[Any] = []
        for i in range(100):
            r = ra if i % 2 else rb
            writes.append(r.write(r.activities.audit_refusal(NOW + i, org.id, user.id, "k", "T", f"e{i}", "X")))
            writes.append(r.write(r.activities.insert_activity(activity(org, user), b"r", "s", "k")))
        await asyncio.gather(*writes)
        assert a.audit_head() == b.audit_head()
        assert a.audit_head()[0] == 200
        assert chain_problems(a) == []
        # A write on one replica is seen by the other at once (no stale cache).
        (uid,) = ids()
        ra.write_sync(ra.users.insert_user(User(uid, org.id, "n", None, "ACCESS_TYPE_API", (), NOW, NOW)))
        assert rb.users.user(uid) is not None
        ra.write_sync(ra.users.delete_user(org.id, uid))
        assert rb.users.user(uid) is None
    finally:
        a.close()
        b.close()


async def test_exclusive_excludes_across_replicas(cluster: PgCluster) -> None:
    url = cluster.create_database()
    a, b = pg.PostgresDatabase(url), pg.PostgresDatabase(url)
    inside: list[str] = []
    overlaps = 0

    async def hold(d: pg.PostgresDatabase, who: str) -> None:
        nonlocal overlaps
        for _ in range(5):
            async with d.exclusive("activity:same"):
                inside.append(who)
                if len(inside) > 1:
                    overlaps += 1
                await asyncio.sleep(0.01)
                inside.remove(who)

    try:
        await asyncio.gather(hold(a, "a"), hold(b, "b"))
        assert overlaps == 0
    finally:
        a.close()
        b.close()


def test_copy_from_sqlite(tmp_path: Path, cluster: PgCluster) -> None:
    lite = SqliteDatabase(tmp_path / "s.sqlite3")
    repo = Repository(lite)
    org, user = seed(repo)
    acts = [activity(org, user) for _ in range(3)]
    for a in acts:
        repo.write_sync(repo.activities.insert_activity(a, b"r", "s", "k"))
    events = [WebhookEvent(str(uuid.uuid4()), org.id, "ACTIVITY_COMPLETED", a.id, b"{}", b"", 1) for a in acts]
    for e in events:
        repo.write_sync(repo.webhooks.insert_event(e, []))
    lite.close()
    url = cluster.create_database()
    counts = pg.copy_from_sqlite(tmp_path / "s.sqlite3", url)
    assert counts["activities"] == 3 and counts["audit_log"] == 3 and counts["event_stream"] == 3
    post = pg.PostgresDatabase(url)
    try:
        prepo = Repository(post)
        assert prepo.organizations.organization(org.id) == org
        assert [a.id for a in prepo.activities.activities(org.id)] == [a.id for a in reversed(acts)]
        later = activity(org, user)
        prepo.write_sync(prepo.activities.insert_activity(later, b"r", "s", "k"))  # identity continues after the copy
        assert prepo.activities.activities(org.id, limit=1)[0].id == later.id
        # The event stream's cursors are kept, and continue after the copy too.
        assert [e for _, e in prepo.webhooks.stream_after(org.id, 0, 10)] == events
        more = WebhookEvent(str(uuid.uuid4()), org.id, "ACTIVITY_COMPLETED", later.id, b"{}", b"", 2)
        prepo.write_sync(prepo.webhooks.insert_event(more, []))
        assert [e for _, e in prepo.webhooks.stream_after(org.id, 0, 10)] == [*events, more]
        assert chain_problems(post) == []
    finally:
        post.close()
