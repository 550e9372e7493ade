"""The webhook outbox in the store (`store/webhooks.py`): deliveries claimed once, leases, outcomes.

The same contract on SQLite and PostgreSQL; on PostgreSQL, two database objects stand for two
replicas whose delivery duties read the same due row and both try to claim it.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from store.pg_cluster import PgCluster
from strongroom.errors import Conflict
from strongroom.store import Database, Repository
from strongroom.store import postgres as pg
from strongroom.store.records import Organization, WebhookEvent
from strongroom.store.webhooks import DELIVERED, PENDING

NOW = 1_700_000_000_000
LEASE = 5_000


def event(org: str) -> WebhookEvent:
    return WebhookEvent(str(uuid.uuid4()), org, "ACTIVITY_CONSENSUS_NEEDED", str(uuid.uuid4()), b"{}", b"", NOW)


async def new_org(repo: Repository) -> str:
    org = Organization(str(uuid.uuid4()), "org", None, 1, (), NOW, NOW)
    await repo.write(repo.organizations.insert_organization(org))
    return org.id


def states(repo: Repository, org: str) -> list[tuple[str, int]]:
    return [(d["state"], d["attempts"]) for d in repo.webhooks.deliveries(org)]


async def test_a_delivery_is_claimed_once_leased_then_settled(db: Database) -> None:
    repo, endpoint = Repository(db), str(uuid.uuid4())
    org = await new_org(repo)
    e = event(org)
    await repo.write(repo.webhooks.insert_event(e, [endpoint]))
    assert repo.webhooks.due(NOW, 10) == [(e.id, endpoint, 0)]
    assert repo.webhooks.due(NOW - 1, 10) == []  # not due before its time
    await repo.write(repo.webhooks.claim(e.id, endpoint, 0, NOW, NOW + LEASE))
    # A second claim from the same read (another replica, or a late run of this one) changes nothing.
    with pytest.raises(Conflict):
        await repo.write(repo.webhooks.claim(e.id, endpoint, 0, NOW, NOW + LEASE))
    assert repo.webhooks.due(NOW + LEASE - 1, 10) == []  # leased
    # The holder died: once its lease has run out, the delivery is due again, and claimed once.
    assert repo.webhooks.due(NOW + LEASE, 10) == [(e.id, endpoint, 1)]
    await repo.write(repo.webhooks.claim(e.id, endpoint, 1, NOW + LEASE, NOW + 2 * LEASE))
    # The first holder's late outcome (attempt 1) is not recorded over the second attempt's lease.
    await repo.write(repo.webhooks.settle(e.id, endpoint, 1, DELIVERED, 200, NOW, NOW))
    assert states(repo, org) == [(PENDING, 2)]
    # A failed attempt: pending again, due after its backoff.
    await repo.write(repo.webhooks.settle(e.id, endpoint, 2, PENDING, 503, NOW + LEASE + 400, NOW + LEASE))
    assert repo.webhooks.due(NOW + LEASE + 399, 10) == []
    assert repo.webhooks.due(NOW + LEASE + 400, 10) == [(e.id, endpoint, 2)]
    await repo.write(repo.webhooks.claim(e.id, endpoint, 2, NOW + LEASE + 400, NOW + 3 * LEASE))
    await repo.write(repo.webhooks.settle(e.id, endpoint, 3, DELIVERED, 204, NOW + 3 * LEASE, NOW + LEASE + 500))
    assert states(repo, org) == [(DELIVERED, 3)]
    assert repo.webhooks.due(NOW + 10 * LEASE, 10) == []
    assert repo.webhooks.event(e.id) == e


async def test_two_replicas_claiming_the_same_deliveries_claim_each_once(cluster: PgCluster) -> None:
    url = cluster.create_database()
    a, b = pg.PostgresDatabase(url), pg.PostgresDatabase(url)
    try:
        ra, rb = Repository(a), Repository(b)
        org = await new_org(ra)
        endpoints = [str(uuid.uuid4()) for _ in range(3)]
        for _ in range(10):
            await ra.write(ra.webhooks.insert_event(event(org), endpoints))
        due_a, due_b = ra.webhooks.due(NOW, 100), rb.webhooks.due(NOW, 100)
        assert sorted(due_a) == sorted(due_b) and len(due_a) == 30

        async def claim(repo: Repository, due: list[tuple[str, str, int]]) -> int:
            won = 0
            for event_id, endpoint_id, attempts in due:
                try:
                    await repo.write(repo.webhooks.claim(event_id, endpoint_id, attempts, NOW, NOW + LEASE))
                    won += 1
                except Conflict:
                    pass
            return won

        won = await asyncio.gather(claim(ra, due_a), claim(rb, list(reversed(due_b))))
        assert sum(won) == 30  # every delivery claimed, none twice
        assert set(states(ra, org)) == {(PENDING, 1)}
    finally:
        a.close()
        b.close()


async def test_the_event_stream_reads_an_organizations_events_by_cursor(db: Database) -> None:
    """`stream_after` answers the organization's events after a cursor, in the order they were
    written, and never another organization's; `stream_cursor` finds only the organization's own."""
    repo = Repository(db)
    org, other = await new_org(repo), await new_org(repo)
    assert repo.webhooks.stream_head(org) == 0
    mine: list[WebhookEvent] = []
    for i in range(5):
        e = event(org)
        mine.append(e)
        await repo.write(repo.webhooks.insert_event(e, []))
        await repo.write(repo.webhooks.insert_event(event(other), []))  # interleaved with the other's
        assert repo.webhooks.stream_head(org) == repo.webhooks.stream_cursor(org, e.id), i
    everything = repo.webhooks.stream_after(org, 0, 100)
    assert [e for _, e in everything] == mine
    cursors = [c for c, _ in everything]
    assert cursors == sorted(cursors) and len(set(cursors)) == 5
    # Resuming after the second event: exactly the three after it; in pages of two, the same.
    after_second = repo.webhooks.stream_cursor(org, mine[1].id)
    assert after_second is not None
    assert [e for _, e in repo.webhooks.stream_after(org, after_second, 100)] == mine[2:]
    page = repo.webhooks.stream_after(org, after_second, 2)
    rest = repo.webhooks.stream_after(org, page[-1][0], 2)
    assert [e for _, e in page + rest] == mine[2:]
    assert repo.webhooks.stream_after(org, everything[-1][0], 100) == []
    # Another organization's event is no cursor here.
    theirs = repo.webhooks.stream_after(other, 0, 100)
    assert len(theirs) == 5 and repo.webhooks.stream_cursor(org, theirs[0][1].id) is None
