"""The caches of verified rows (issue 21, the per-request path) never outlive what they were checked against.

On a database other processes write (PostgreSQL replicas, SQLite worker processes) a cached
lookup is kept with the verified snapshot of its organization's notarised state, and reused only
while `org_state` (version and MAC, read once per request in `Core.request_scope`) still names
that snapshot: an authorised change by another replica re-notarises the organization, so it is
seen on the next request. Two `Repository` objects on one database stand for two replicas. On
SQLite (one process) a running repository keeps what it verified until it writes. Either way a
row forged behind the writers' backs is never used: the cache holds the verified record, and the
forgery is refused once the rows are read again.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from strongroom.hsm.keystore import Notary
from strongroom.store import Repository, open_database
from strongroom.store.notary import TamperedState
from strongroom.store.records import Organization, PolicyRecord, User

NOW = 1_700_000_000_000


@pytest.fixture(params=["sqlite", "sqlite-workers", "postgres"])
def two(request: pytest.FixtureRequest, tmp_path: Path, token: Any) -> Iterator[tuple[Repository, Repository, Any]]:
    """Two repositories on one database (two replicas on PostgreSQL, two worker processes' stores
    on one SQLite file), and raw SQL on it."""
    url = request.getfixturevalue("cluster").create_database() if request.param == "postgres" else None
    path = tmp_path / "s.sqlite3"
    shared = request.param == "sqlite-workers"
    dbs = [open_database(url, path, shared=shared), open_database(url, path, shared=shared)]
    repos = []
    for db in dbs:
        repo = Repository(db)
        repo.set_notary(Notary(token))
        repos.append(repo)

    def sql(statement: str, params: tuple[Any, ...] = ()) -> None:
        if url is not None:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(statement.replace("?", "%s"), params)
        else:
            conn = sqlite3.connect(path, isolation_level=None)
            try:
                conn.execute(statement, params)
            finally:
                conn.close()

    yield repos[0], repos[1], sql
    for db in dbs:
        db.close()


def _seed(repo: Repository) -> tuple[str, PolicyRecord]:
    org_id, user_id = str(uuid.uuid4()), str(uuid.uuid4())
    policy = PolicyRecord(
        str(uuid.uuid4()), org_id, "no dead", "EFFECT_DENY", "eth.tx.to == '0xdead'", "", "", "", NOW, NOW
    )
    repo.write_sync(
        [
            *repo.organizations.insert_organization(Organization(org_id, "org", None, 1, (user_id,), NOW, NOW)),
            *repo.users.insert_user(User(user_id, org_id, "root", None, "ACCESS_TYPE_API", (), NOW, NOW)),
            *repo.organizations.insert_root_users(org_id, [user_id]),
            *repo.policies.insert_policy(policy),
        ]
    )
    return org_id, policy


def test_a_policy_changed_by_another_replica_is_seen_and_a_forged_one_refused_on_the_next_read(
    two: tuple[Repository, Repository, Any],
) -> None:
    reader, writer, sql = two
    org_id, policy = _seed(writer)
    shared = reader.db.shared
    for _ in range(3):  # warm every cache: the checked list, the records, the verified snapshot
        with reader.request_scope():
            assert [p.condition for p in reader.policies.policies(org_id)] == ["eth.tx.to == '0xdead'"]
    # An authorised change made by the other replica (notarised by its writer).
    writer.write_sync(writer.policies.update_policy(replace(policy, condition="false", updated_at=NOW + 1)))
    with reader.request_scope():
        seen = [p.condition for p in reader.policies.policies(org_id)]
    # Shared: the very next request sees it (the organization's notarised version moved). SQLite
    # with one process: that process owns the file, so a running repository keeps what it
    # verified until it writes or restarts (then it sees it).
    assert seen == (["false"] if shared else ["eth.tx.to == '0xdead'"])
    reader.invalidate()
    assert [p.condition for p in reader.policies.policies(org_id)] == ["false"]
    # A DENY flipped to ALLOW directly in the database, behind every writer's back: the running
    # repository still decides on the rows it verified, never on the forged one...
    sql("UPDATE policies SET effect = 'EFFECT_ALLOW' WHERE id = ?", (policy.id,))
    with reader.request_scope():
        assert [p.effect for p in reader.policies.policies(org_id)] == ["EFFECT_DENY"]
    # ...and refuses it as soon as it reads the rows again.
    reader.invalidate()
    with reader.request_scope(), pytest.raises(TamperedState, match="`policies` rows"):
        reader.policies.policies(org_id)
    # Put back exactly as notarised: accepted again (the content is what the token vouched for).
    sql("UPDATE policies SET effect = 'EFFECT_DENY' WHERE id = ?", (policy.id,))
    reader.invalidate()
    assert [p.effect for p in reader.policies.policies(org_id)] == ["EFFECT_DENY"]


def test_one_request_decides_on_one_state_and_the_next_sees_the_change(
    two: tuple[Repository, Repository, Any],
) -> None:
    reader, writer, sql = two
    if not reader.db.shared:
        pytest.skip("SQLite has one writing process: its cache holds until it writes")
    org_id, policy = _seed(writer)
    with reader.request_scope():
        assert [p.name for p in reader.policies.policies(org_id)] == ["no dead"]
        # Another replica changes the policy while this request is under way: this request goes
        # on deciding on the state it verified (one request, one state)...
        writer.write_sync(writer.policies.update_policy(replace(policy, name="renamed", updated_at=NOW + 1)))
        assert [p.name for p in reader.policies.policies(org_id)] == ["no dead"]
    with reader.request_scope():  # ...and the next request sees the change
        assert [p.name for p in reader.policies.policies(org_id)] == ["renamed"]
    # A forged row is refused when the rows are read: here the next change by the other replica
    # moves the version, so the reader reads the rows again and finds one the token never saw.
    other = replace(policy, id=str(uuid.uuid4()), name="other", condition="true")
    writer.write_sync(writer.policies.insert_policy(other))
    sql("UPDATE policies SET condition = 'true' WHERE id = ?", (policy.id,))
    with reader.request_scope(), pytest.raises(TamperedState, match="`policies` rows"):
        reader.policies.policies(org_id)
    with reader.request_scope(), pytest.raises(TamperedState):  # nothing else of it is trusted now
        reader.organizations.organization(org_id)


def test_one_request_reads_org_state_once(two: tuple[Repository, Repository, Any]) -> None:
    """On PostgreSQL the notarised version is read once per request, however many rows are checked."""
    reader, writer, _sql = two
    if not reader.db.shared:
        pytest.skip("SQLite verifies once until a write: no `org_state` read per request at all")
    org_id, _policy = _seed(writer)
    reader.policies.policies(org_id)  # verified once (a full check)
    queries: list[str] = []
    real = reader.db.all

    def counting(statement: str, params: Any = ()) -> Any:
        queries.append(statement)
        return real(statement, params)

    reader.db.all = counting  # type: ignore[method-assign]
    try:
        with reader.request_scope():
            org = reader.organizations.organization(org_id)
            assert org is not None
            user = reader.users.user(org.root_user_ids[0])
            assert user is not None
            reader.policies.policies(org_id)
            reader.policies.policies(org_id)
        outside = len(queries)
        reader.policies.policies(org_id)
        reader.policies.policies(org_id)
    finally:
        reader.db.all = real  # type: ignore[method-assign]
    state_reads = [q for q in queries[:outside] if "FROM org_state" in q]
    assert len(state_reads) == 1, queries[:outside]
    assert len([q for q in queries[outside:] if "FROM org_state" in q]) == 2  # without a scope: once per read
