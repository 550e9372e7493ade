"""The end of a vote window, against running daemons whose clock the test moves (issue 19).

A 2-of-3 policy parks a member's signing request; the daemon's clock moves past the 24-hour
vote window; its background duty rejects the activity as expired, with the reason, once: on
SQLite, and on two PostgreSQL replicas that both run the duty. A late approval is refused and
signs nothing. The clock is `tests/e2e/moved_clock.py`'s: no sleeping, the system's clock is
never touched.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_replicas import WARM_UP, _second_data_dir, token_signatures

from conftest import REPO, Daemon, start_daemon
from store.pg_cluster import PgCluster
from strongroom.client import ApiKeyStamper, Client
from strongroom.crypto import p256
from strongroom.store.postgres import PostgresDatabase, copy_from_sqlite

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]

DAY_MS = 24 * 3600 * 1000
SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
EXPIRED = "expired: the vote window ended (24 hours after the activity was created) before consensus was reached"


class MovedClock:
    """The offset file the daemons' clocks read (see moved_clock.py)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("0")

    @property
    def offset_ms(self) -> int:
        return int(self.path.read_text())

    def advance(self, ms: int) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(self.offset_ms + ms))
        tmp.replace(self.path)  # atomic: a daemon never reads a half-written offset

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


@dataclass
class Setup:
    """A key, three members (alice, bob, carol) and a policy: any two of them sign with the key."""

    key_id: str
    members: dict[str, ApiKeyStamper]


def submit(d: Daemon, clock: MovedClock, name: str, activity_type: str, params: dict[str, Any], *,
           who: ApiKeyStamper | None = None) -> tuple[int, Any]:  # fmt: skip
    """An activity stamped at the daemon's time (its timestamp window follows its clock)."""
    body = {
        "type": activity_type,
        "timestampMs": str(clock.now_ms()),
        "organizationId": d.organization_id,
        "parameters": params,
    }
    client = Client(d.url, who or ApiKeyStamper.from_files(d.key_prefix), d.organization_id)
    status, data = client.post_raw(f"/public/v1/submit/{name}", json.dumps(body).encode())
    return status, data


def ok(result: tuple[int, Any]) -> dict[str, Any]:
    status, data = result
    assert status == 200, data
    activity: dict[str, Any] = data["activity"]
    return activity


def two_of_three(d: Daemon, clock: MovedClock) -> Setup:
    created = ok(
        submit(
            d,
            clock,
            "create_private_keys",
            "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
            {
                "privateKeys": [
                    {
                        "privateKeyName": f"k-{uuid.uuid4()}",
                        "curve": "CURVE_SECP256K1",
                        "privateKeyTags": [],
                        "addressFormats": ["ADDRESS_FORMAT_ETHEREUM"],
                    }
                ]
            },
        )
    )
    key_id = created["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
    members: dict[str, ApiKeyStamper] = {}
    users = []
    for name in ("alice", "bob", "carol"):
        priv, pub = p256.generate_private_key()
        members[name] = ApiKeyStamper(pub, priv)
        users.append(
            {
                "userName": f"{name}-{uuid.uuid4().hex[:6]}",
                "apiKeys": [{"apiKeyName": f"{name} key", "publicKey": pub, "curveType": "API_KEY_CURVE_P256"}],
                "authenticators": [],
                "oauthProviders": [],
                "userTags": [],
            }
        )
    done = ok(submit(d, clock, "create_users", "ACTIVITY_TYPE_CREATE_USERS_V4", {"users": users}))
    ids = ", ".join(f"'{u}'" for u in done["result"]["createUsersResult"]["userIds"])
    ok(
        submit(
            d,
            clock,
            "create_policy",
            "ACTIVITY_TYPE_CREATE_POLICY_V3",
            {
                "policyName": f"two of three {key_id}",
                "effect": "EFFECT_ALLOW",
                "condition": f"activity.action == 'SIGN' && private_key.id == '{key_id}'",
                "consensus": f"approvers.filter(u, u.id in [{ids}]).count() >= 2",
                "notes": "",
            },
        )
    )
    return Setup(key_id, members)


def park(d: Daemon, clock: MovedClock, s: Setup) -> dict[str, Any]:
    """Alice asks for a signature: it waits for a second approver."""
    params = {
        "signWith": s.key_id,
        "payload": f"expiring {uuid.uuid4()}",
        "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
        "hashFunction": "HASH_FUNCTION_KECCAK256",
    }
    activity = ok(submit(d, clock, "sign_raw_payload", SIGN, params, who=s.members["alice"]))
    assert activity["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    return activity


def vote(d: Daemon, clock: MovedClock, s: Setup, who: str, target: dict[str, Any]) -> tuple[int, Any]:
    params = {"fingerprint": target["fingerprint"]}
    return submit(d, clock, "approve_activity", "ACTIVITY_TYPE_APPROVE_ACTIVITY", params, who=s.members[who])


def settled(client: Client, activity_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The activity once it no longer waits for votes (the duty runs about every second)."""
    deadline = time.monotonic() + timeout
    while True:
        activity: dict[str, Any] = client.get_activity(activity_id)["activity"]
        if activity["status"] != "ACTIVITY_STATUS_CONSENSUS_NEEDED" or time.monotonic() > deadline:
            return activity
        time.sleep(0.1)


def check_expired(activity: dict[str, Any]) -> None:
    assert activity["status"] == "ACTIVITY_STATUS_REJECTED"
    assert activity["failure"] == {"code": 4, "message": EXPIRED, "details": []}
    assert activity["result"] == {}
    assert (activity["canApprove"], activity["canReject"]) == (False, False)
    assert len(activity["votes"]) == 1  # the submitter's own; nobody else's


def audit_of(rows: list[Any], activity_id: str) -> list[dict[str, Any]]:
    """The audit entries (bodies, in chain order) about one activity."""
    entries = [json.loads(bytes(r[0]) if isinstance(r[0], bytes | memoryview) else r[0]) for r in rows]
    return [e for e in entries if e.get("activity_id") == activity_id]


def check_one_expiry(entries: list[dict[str, Any]]) -> None:
    assert [(e["status"], e.get("reason")) for e in entries] == [
        ("ACTIVITY_STATUS_CONSENSUS_NEEDED", None),
        ("ACTIVITY_STATUS_REJECTED", "vote window ended"),
    ]


# -- SQLite: one daemon ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, MovedClock]]:
    tmp = tmp_path_factory.mktemp("expiry")
    clock = MovedClock(tmp / "clock-offset")
    d = start_daemon(tmp / "data", clock_offset_file=clock.path)
    yield d, clock
    d.stop()


def sqlite_audit(d: Daemon, activity_id: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{d.data_dir / 'strongroom.sqlite3'}?mode=ro", uri=True)
    try:
        return audit_of(conn.execute("SELECT body FROM audit_log ORDER BY seq").fetchall(), activity_id)
    finally:
        conn.close()


def test_an_activity_left_waiting_expires_once_and_a_late_approval_signs_nothing(
    moved: tuple[Daemon, MovedClock],
) -> None:
    d, clock = moved
    client = d.client()
    s = two_of_three(d, clock)
    waiting = park(d, clock, s)
    clock.advance(DAY_MS - 60_000)  # a minute before the window ends: still waiting
    assert settled(client, waiting["id"], timeout=3)["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    signatures = token_signatures(d)

    clock.advance(120_000)  # a minute after it ended
    expired = settled(client, waiting["id"])
    check_expired(expired)
    listed = client.list_activities(100, filterByStatus=["ACTIVITY_STATUS_REJECTED"])["activities"]
    assert [a["failure"]["message"] for a in listed if a["id"] == waiting["id"]] == [EXPIRED]
    pending = client.list_activities(100, filterByStatus=["ACTIVITY_STATUS_CONSENSUS_NEEDED"])["activities"]
    assert waiting["id"] not in {a["id"] for a in pending}

    # Bob's approval comes too late: refused, clearly, and nothing is signed.
    status, data = vote(d, clock, s, "bob", waiting)
    assert status == 400, data
    assert f"activity `{waiting['id']}` has expired" in data["message"]
    after = client.get_activity(waiting["id"])["activity"]
    check_expired(after)
    assert after["updatedAt"] == expired["updatedAt"]
    assert token_signatures(d) == signatures
    check_one_expiry(sqlite_audit(d, waiting["id"]))
    assert "activity_expired" in d.logs(wait_for="activity_expired")

    # The CLI's decoded view says why.
    out = subprocess.run(
        [sys.executable, "-m", "strongroom", "--data-dir", str(d.data_dir), "--url", d.url,
         "--org", d.organization_id, "--key", str(d.key_prefix), "activities", "get", waiting["id"]],
        capture_output=True, text=True, check=True, cwd=REPO,
        env={k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"},
    ).stdout  # fmt: skip
    assert "REJECTED  SIGN_RAW_PAYLOAD_V2" in out
    assert f"failure: {EXPIRED} (code 4)" in out


# -- PostgreSQL: two replicas, both running the duty ------------------------------------------------------
@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    c = PgCluster()
    yield c
    c.stop()


@pytest.fixture
def replicas(tmp_path: Path, cluster: PgCluster) -> Iterator[tuple[Daemon, Daemon, MovedClock, str]]:
    url = cluster.create_database()
    clock = MovedClock(tmp_path / "clock-offset")
    daemons: list[Daemon] = []
    try:
        a_dir, b_dir = tmp_path / "a", tmp_path / "b"
        env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
        cmd = [sys.executable, "-m", "strongroom", "--data-dir", str(a_dir), "init"]
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=REPO)
        copy_from_sqlite(a_dir / "strongroom.sqlite3", url)
        subprocess.run([sys.executable, "-c", WARM_UP, str(a_dir)], check=True, capture_output=True, env=env, cwd=REPO)
        _second_data_dir(a_dir, b_dir)
        config = f'rate_limit_per_second = 10000\ndatabase_url = "{url}"\n'
        daemons.append(start_daemon(a_dir, config=config, clock_offset_file=clock.path))
        daemons.append(start_daemon(b_dir, config=config, clock_offset_file=clock.path))
        yield daemons[0], daemons[1], clock, url
    finally:
        for d in daemons:
            d.stop()


def test_two_replicas_expire_each_activity_once(replicas: tuple[Daemon, Daemon, MovedClock, str]) -> None:
    a, b, clock, url = replicas
    s = two_of_three(a, clock)
    waiting = [park(a if i % 2 else b, clock, s) for i in range(20)]
    signatures = token_signatures(a) + token_signatures(b)
    clock.advance(DAY_MS + 60_000)
    for activity in waiting:
        check_expired(settled(b.client(), activity["id"]))
    # Both replicas run the duty; each activity was expired once: one audit entry, not two.
    db = PostgresDatabase(url)
    try:
        rows = db.all("SELECT body FROM audit_log ORDER BY seq")
    finally:
        db.close()
    for activity in waiting:
        check_one_expiry(audit_of(rows, activity["id"]))
    # A late approval on either replica is refused and signs nothing.
    for d, who in ((a, "bob"), (b, "carol")):
        status, data = vote(d, clock, s, who, waiting[0])
        assert status == 400, data
        assert "has expired" in data["message"]
    assert token_signatures(a) + token_signatures(b) == signatures
    check_expired(a.client().get_activity(waiting[0]["id"])["activity"])
