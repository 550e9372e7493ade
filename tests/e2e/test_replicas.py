"""Two daemon processes on one PostgreSQL database and one SoftHSM2 token.

Duplicate submissions and concurrent approvals fired at both replicas execute once; SIGKILL of
one replica under load leaves the other serving, and nothing that completed is lost.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, Daemon, sign_body, start_daemon
from store.pg_cluster import PgCluster
from strongroom.client import ApiKeyStamper, Client
from strongroom.crypto import p256
from strongroom.store import Repository
from strongroom.store.postgres import PostgresDatabase, copy_from_sqlite

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]

SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"


WARM_UP = """
import os, sys
from pathlib import Path
from strongroom.config import load_settings
from strongroom.hsm import KeyStore, Token
st = load_settings(Path(sys.argv[1]))
os.environ["SOFTHSM2_CONF"] = str(st.token.softhsm2_conf)
token = Token(st.token.module, st.token.label, st.token.read_pin(os.environ))
KeyStore(token, token.probe()).sign_audit(b"warm-up")
token.close()
"""


@dataclass
class Replicas:
    a: Daemon
    b: Daemon
    url: str
    repo: Repository  # the test's own view of the shared database

    def client(self, d: Daemon, stamper: ApiKeyStamper | None = None) -> Client:
        return Client(d.url, stamper or ApiKeyStamper.from_files(d.key_prefix), d.organization_id)

    def add_user(self, name: str) -> ApiKeyStamper:
        """A user with an API key, created by the root user through replica A (the store refuses
        users written into it directly: they carry no notarisation)."""
        priv, pub = p256.generate_private_key()
        self.client(self.a).submit(
            "create_users",
            "ACTIVITY_TYPE_CREATE_USERS_V4",
            {
                "users": [
                    {
                        "userName": name,
                        "userEmail": f"{name}-{uuid.uuid4().hex[:6]}@example.com",
                        "apiKeys": [{"apiKeyName": f"{name} key", "publicKey": pub, "curveType": "API_KEY_CURVE_P256"}],
                        "authenticators": [],
                        "oauthProviders": [],
                        "userTags": [],
                    }
                ]
            },
        )
        return ApiKeyStamper(pub, priv)


def _second_data_dir(first: Path, second: Path) -> None:
    """Replica B: the same token (absolute paths into A's), the same API key, the same organization."""
    second.mkdir(mode=0o700)
    shutil.copytree(first / "keys", second / "keys")
    shutil.copy(first / "strongroom.sqlite3", second / "strongroom.sqlite3")  # only for `init`'s answer
    text = (first / "strongroom.toml").read_text()
    text = text.replace('pin_file = "softhsm/', f'pin_file = "{first}/softhsm/')
    text = text.replace('softhsm2_conf = "softhsm/', f'softhsm2_conf = "{first}/softhsm/')
    (second / "strongroom.toml").write_text(text)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    c = PgCluster()
    yield c
    c.stop()


@pytest.fixture
def replicas(tmp_path: Path, cluster: PgCluster) -> Iterator[Replicas]:
    url = cluster.create_database()
    daemons: list[Daemon] = []
    db: PostgresDatabase | None = None
    try:
        a_dir, b_dir = tmp_path / "a", tmp_path / "b"
        env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
        cmd = [sys.executable, "-m", "strongroom", "--data-dir", str(a_dir), "init"]
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=REPO)
        copy_from_sqlite(a_dir / "strongroom.sqlite3", url)  # the organization moves to PostgreSQL
        # The token's audit key is made on first use; make it now, before two replicas could race.
        subprocess.run([sys.executable, "-c", WARM_UP, str(a_dir)], check=True, capture_output=True, env=env, cwd=REPO)
        _second_data_dir(a_dir, b_dir)
        config = f'rate_limit_per_second = 10000\ndatabase_url = "{url}"\n'
        daemons.append(start_daemon(a_dir, config=config))
        daemons.append(start_daemon(b_dir, config=config))
        a, b = daemons
        assert a.organization_id == b.organization_id
        db = PostgresDatabase(url)
        yield Replicas(a, b, url, Repository(db))
    finally:
        for d in daemons:
            d.stop()
        if db is not None:
            db.close()


def key_id_of(created: dict[str, Any]) -> str:
    return str(created["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"])


def token_signatures(d: Daemon) -> float:
    """How many times this replica has signed with the token (its /metrics)."""
    with urllib.request.urlopen(d.url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("strongroom_signing_seconds_count")
    )


def completions(repo: Repository, activity_id: str) -> int:
    """Audit entries that record this activity as COMPLETED: one per execution."""
    rows = repo.db.all("SELECT body FROM audit_log ORDER BY seq")
    return sum(
        1
        for r in rows
        if (b := json.loads(r["body"])).get("activity_id") == activity_id and b.get("status").endswith("COMPLETED")
    )


def test_a_key_made_on_one_replica_signs_on_the_other(replicas: Replicas) -> None:
    ca, cb = replicas.client(replicas.a), replicas.client(replicas.b)
    key = key_id_of(ca.create_private_key(f"k-{uuid.uuid4()}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"]))
    signed = cb.sign_raw_payload(key, "hello", "PAYLOAD_ENCODING_TEXT_UTF8", "HASH_FUNCTION_KECCAK256")
    assert signed["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
    assert cb.get_private_key(key)["privateKey"]["privateKeyId"] == key


def test_a_policy_changed_on_one_replica_decides_the_next_request_on_the_other(replicas: Replicas) -> None:
    """Each replica caches its compiled policies; another replica's change must never go unseen."""
    r = replicas
    ca = r.client(r.a)
    key = key_id_of(ca.create_private_key(f"k-{uuid.uuid4()}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"]))
    org = r.a.organization_id
    bot = r.add_user("bot")
    ca.create_policy("bot signs", "EFFECT_ALLOW", "activity.resource == 'PRIVATE_KEY' && activity.action == 'SIGN'")

    def sign_on_b(i: int) -> tuple[int, Any]:
        return r.client(r.b, bot).post_raw("/public/v1/submit/sign_raw_payload", sign_body(org, key, f"bot {i}"))

    assert sign_on_b(0)[0] == 200  # B has compiled and cached the organization's policies
    deny = ca.create_policy("freeze", "EFFECT_DENY", f"activity.resource == 'PRIVATE_KEY' && private_key.id == '{key}'")
    status, data = sign_on_b(1)
    assert (status, data["code"], data["message"]) == (403, 7, "policy engine denied request explicitly")
    ca.delete_policy(deny["activity"]["result"]["createPolicyResult"]["policyId"])
    assert sign_on_b(2)[0] == 200


def test_duplicates_and_concurrent_approvals_execute_once(replicas: Replicas) -> None:
    r = replicas
    ca = r.client(r.a)
    key = key_id_of(ca.create_private_key(f"k-{uuid.uuid4()}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"]))
    org = r.a.organization_id

    # The same body sent to both replicas at the same moment: one activity, one signature.
    bodies = [sign_body(org, key, f"dup {i}") for i in range(20)]
    barrier = threading.Barrier(2)

    def send(d: Daemon, body: bytes) -> dict[str, Any]:
        barrier.wait()
        status, data = r.client(d).post_raw("/public/v1/submit/sign_raw_payload", body)
        assert status == 200, data
        return dict(data["activity"])

    with ThreadPoolExecutor(2) as pool:
        for body in bodies:
            fa, fb = pool.submit(send, r.a, body), pool.submit(send, r.b, body)
            x, y = fa.result(), fb.result()
            assert x["id"] == y["id"]
            assert x["result"] == y["result"]  # the losing replica's signature was never released
            assert completions(r.repo, x["id"]) == 1

    alice, bob, carol = (r.add_user(n) for n in ("alice", "bob", "carol"))
    # Concurrent approvals on two replicas: the activity executes once.
    ca.create_policy("pairs", "EFFECT_ALLOW", "activity.action == 'SIGN'", "approvers.count() >= 2")
    signed_before = token_signatures(r.a) + token_signatures(r.b)
    for i in range(5):
        status, data = r.client(r.a, alice).post_raw(
            "/public/v1/submit/sign_raw_payload", sign_body(org, key, f"needs two {i}")
        )
        assert status == 200, data
        pending = data["activity"]
        assert pending["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
        votes: list[tuple[int, Any]] = []

        def approve(
            d: Daemon, who: ApiKeyStamper, fp: str = pending["fingerprint"], votes: list[tuple[int, Any]] = votes
        ) -> None:
            barrier.wait()
            try:
                r.client(d, who).approve_activity(fp)
                votes.append((200, None))
            except Exception as err:
                votes.append((getattr(err, "status", 0), str(err)))

        threads = [
            threading.Thread(target=approve, args=(r.a, bob)),
            threading.Thread(target=approve, args=(r.b, carol)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(s for s, _ in votes)
        assert statuses[0] == 200 and statuses[1] in (200, 400, 409), votes
        final = ca.get_activity(pending["id"])["activity"]
        assert final["status"] == "ACTIVITY_STATUS_COMPLETED"
        assert len(final["votes"]) == 2  # the submitter and exactly one approver
        assert completions(r.repo, pending["id"]) == 1
    # ... and the token signed once per activity: the decision and execution ran on one replica.
    assert token_signatures(r.a) + token_signatures(r.b) - signed_before == 5
    assert r.repo.db.one("SELECT count(*) FROM activities")[0] == len(
        {row[0] for row in r.repo.db.all("SELECT fingerprint FROM activities")}
    )


def test_sigkill_one_replica_under_load(replicas: Replicas) -> None:
    r = replicas
    key = key_id_of(
        r.client(r.a).create_private_key(f"k-{uuid.uuid4()}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    )
    org = r.a.organization_id
    completed: list[str] = []
    errors: list[str] = []
    stop = threading.Event()

    def load(d: Daemon, n: int) -> None:
        c = r.client(d)
        i = 0
        while not stop.is_set():
            i += 1
            try:
                status, data = c.post_raw("/public/v1/submit/sign_raw_payload", sign_body(org, key, f"{n}-{i}"))
            except Exception as err:
                errors.append(str(err))
                time.sleep(0.05)
                continue
            if status == 200 and data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED":
                completed.append(data["activity"]["id"])
            else:
                errors.append(f"{status} {data}")

    threads = [threading.Thread(target=load, args=(d, n)) for n, d in enumerate((r.a, r.a, r.b, r.b))]
    for t in threads:
        t.start()
    time.sleep(1.5)
    r.a.process.send_signal(signal.SIGKILL)
    r.a.process.wait()
    before_kill = len(completed)
    time.sleep(1.5)
    stop.set()
    for t in threads:
        t.join()
    assert before_kill > 0, errors[:3]
    assert len(completed) > before_kill  # the survivor kept serving
    # Nothing that was answered COMPLETED is lost, and the survivor still serves reads of it.
    recorded = {
        row[0] for row in r.repo.db.all("SELECT id FROM activities WHERE status = ?", ("ACTIVITY_STATUS_COMPLETED",))
    }
    assert set(completed) <= recorded
    cb = r.client(r.b)
    assert cb.get_activity(completed[0])["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
    # The audit chain stayed linear through the kill.
    prev, expected = "0" * 64, 1
    for row in r.repo.db.all("SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq"):
        assert (row[0], row[1]) == (expected, prev)
        prev, expected = row[2], expected + 1


def test_one_quota_holds_across_replicas(replicas: Replicas) -> None:
    """Quota N, concurrent signing through both replicas: exactly N signatures, the rest refused."""
    r, quota, requests = replicas, 6, 20
    org = r.a.organization_id
    key = key_id_of(
        r.client(r.a).create_private_key(f"k-{uuid.uuid4()}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    )
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    set_quota = ["usage", "set-quota", "--organization", org, "--signatures", str(quota)]
    cmd = [sys.executable, "-m", "strongroom", "--data-dir", str(r.a.data_dir), *set_quota]
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=REPO)
    for d in (r.a, r.b):  # each replica re-reads a quota within 5 s
        deadline = time.monotonic() + 15
        while r.client(d).get_usage()["usage"].get("monthlySignatureQuota") != str(quota):
            assert time.monotonic() < deadline
            time.sleep(0.2)
    signed_before = token_signatures(r.a) + token_signatures(r.b)
    barrier = threading.Barrier(requests)

    def send(i: int) -> tuple[int, Any]:
        d = (r.a, r.b)[i % 2]
        body = sign_body(org, key, f"quota {i}")
        barrier.wait()
        return r.client(d).post_raw("/public/v1/submit/sign_raw_payload", body)

    with ThreadPoolExecutor(requests) as pool:
        results = list(pool.map(send, range(requests)))
    completed = [d for s, d in results if s == 200 and d["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"]
    refused = [d for s, d in results if s == 429]
    assert len(completed) == quota, results
    assert len(refused) == requests - quota, results
    for data in refused:
        assert data["code"] == 8
        assert f"monthly signature quota of {quota} is exhausted" in data["message"]
    assert token_signatures(r.a) + token_signatures(r.b) - signed_before == quota
    for d in (r.a, r.b):
        assert r.client(d).get_usage()["usage"]["signatures"] == str(quota)
    rows = r.repo.db.all("SELECT signatures FROM usage WHERE organization_id = ?", (org,))
    assert [row[0] for row in rows] == [quota]
    left = r.repo.db.one("SELECT count(*) FROM usage_reservations WHERE organization_id = ?", (org,))
    assert left[0] == 0  # every reservation became usage or was released
