"""One daemon, several worker processes (`workers = 2`) on one SoftHSM2 token and one SQLite file.

Every request here goes to a known worker: a kept-alive connection stays with the worker that
accepted it, and each response names it (`Strongroom-Worker`). Keys made by one worker sign on
the other, identical submissions and concurrent approvals raced at both execute once, a worker
that dies is restarted, and kill -9 under load loses nothing that was acknowledged.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import sqlite3
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from test_daemon import run_cli

from conftest import Daemon, sign_body, start_daemon
from strongroom.client import ApiKeyStamper, Client, calls
from strongroom.crypto import p256

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]

SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
SIGN_PATH = "/public/v1/submit/sign_raw_payload"
CONFIG = "workers = 2\nrate_limit_per_second = 10000\n"


_OPEN: list[http.client.HTTPConnection] = []


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


class WorkerConnection:
    """A kept-alive connection to one worker of the daemon (closed after the test)."""

    def __init__(self, d: Daemon, worker: str, stamper: ApiKeyStamper | None = None) -> None:
        self.stamper = stamper or ApiKeyStamper.from_files(d.key_prefix)
        port = int(d.url.rsplit(":", 1)[1])
        for _ in range(500):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            if resp.getheader("Strongroom-Worker") == worker:
                self.conn = conn
                _OPEN.append(conn)
                return
            conn.close()
        raise AssertionError(f"no connection reached worker {worker}")

    def post(self, path: str, body: bytes) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "X-Stamp": self.stamper.stamp(body)}
        self.conn.request("POST", path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = json.loads(resp.read())
        assert resp.getheader("Strongroom-Worker") is not None
        return resp.status, data

    def submit(self, kind: str, activity_type: str, org: str, parameters: dict[str, Any]) -> dict[str, Any]:
        body = {"type": activity_type, "timestampMs": str(int(time.time() * 1000)), "organizationId": org}
        status, data = self.post(f"/public/v1/submit/{kind}", json.dumps({**body, "parameters": parameters}).encode())
        assert status == 200, data
        return dict(data["activity"])


def create_key(c: WorkerConnection, org: str) -> str:
    activity = c.submit(
        "create_private_keys",
        "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        org,
        {
            "privateKeys": [
                {
                    "privateKeyName": f"k-{uuid.uuid4()}",
                    "curve": "CURVE_SECP256K1",
                    "addressFormats": ["ADDRESS_FORMAT_ETHEREUM"],
                    "privateKeyTags": [],
                }
            ]
        },
    )
    assert activity["status"] == "ACTIVITY_STATUS_COMPLETED", activity
    return str(activity["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"])


def add_user(c: WorkerConnection, org: str, name: str) -> ApiKeyStamper:
    priv, pub = p256.generate_private_key()
    c.submit(
        "create_users",
        "ACTIVITY_TYPE_CREATE_USERS_V4",
        org,
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


def db_rows(d: Daemon, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    conn = sqlite3.connect(f"file:{d.data_dir / 'strongroom.sqlite3'}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def completions(d: Daemon, activity_id: str) -> int:
    """Audit entries that record this activity as COMPLETED: one per execution."""
    return sum(
        1
        for (body,) in db_rows(d, "SELECT body FROM audit_log ORDER BY seq")
        if (b := json.loads(body)).get("activity_id") == activity_id and str(b.get("status")).endswith("COMPLETED")
    )


def worker_pids(d: Daemon) -> dict[str, int]:
    """The current pid of each worker, from the parent's `worker_started` lines."""
    pids: dict[str, int] = {}
    for line in d.logs().splitlines():
        if '"worker_started"' in line:
            entry = json.loads(line)
            pids[str(entry["worker"])] = int(entry["pid"])
    return pids


def start_workers(data: Path) -> Daemon:
    """A daemon with two workers, once both are ready (the daemon answers as soon as one is)."""
    d = start_daemon(data, config=CONFIG)
    assert '"workers_ready"' in d.logs(wait_for='"workers_ready"', timeout=30), d.logs()
    return d


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[Daemon]:
    d = start_workers(tmp_path / "d")
    yield d
    d.stop()


def test_two_workers_serve_and_a_key_made_by_one_signs_on_the_other(two_workers: Daemon) -> None:
    d = two_workers
    w0, w1 = WorkerConnection(d, "0"), WorkerConnection(d, "1")
    pids = worker_pids(d)
    assert set(pids) == {"0", "1"} and pids["0"] != pids["1"] and d.process.pid not in pids.values()
    org = d.organization_id
    for maker, signer in ((w0, w1), (w1, w0)):
        key = create_key(maker, org)  # a new object in the token, made by one worker's session
        status, data = signer.post(SIGN_PATH, sign_body(org, key, "hello"))
        assert status == 200, data
        assert data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
        assert data["activity"]["result"]["signRawPayloadResult"]["r"]
    # ... and a change one worker makes (a policy) decides the next request on the other, which
    # has just compiled and cached the organization's policies.
    key = create_key(w0, org)
    bot = WorkerConnection(d, "1", add_user(w0, org, "bot"))
    allow = calls.policy("bot signs", "EFFECT_ALLOW", "activity.action == 'SIGN'", "", "")
    w0.submit("create_policy", "ACTIVITY_TYPE_CREATE_POLICY_V3", org, allow)
    assert bot.post(SIGN_PATH, sign_body(org, key, "allowed"))[0] == 200
    freeze = calls.policy("freeze", "EFFECT_DENY", f"private_key.id == '{key}'", "", "")
    w0.submit("create_policy", "ACTIVITY_TYPE_CREATE_POLICY_V3", org, freeze)
    status, data = bot.post(SIGN_PATH, sign_body(org, key, "frozen"))
    assert (status, data["message"]) == (403, "policy engine denied request explicitly")


def test_what_one_worker_removes_the_other_refuses_at_once_though_it_has_cached_it(two_workers: Daemon) -> None:
    """Each worker keeps the lookups it verified (credential, user, key, policies) while its
    organization's notarised state is unchanged; a removal by the other worker moves that state,
    so the very next request is decided without the removed row."""
    d = two_workers
    w0 = WorkerConnection(d, "0")
    org = d.organization_id
    key, spare = create_key(w0, org), create_key(w0, org)
    priv, pub = p256.generate_private_key()
    made = w0.submit(
        "create_users",
        "ACTIVITY_TYPE_CREATE_USERS_V4",
        org,
        {
            "users": [
                {
                    "userName": "bot",
                    "userEmail": f"bot-{uuid.uuid4().hex[:6]}@example.com",
                    "apiKeys": [{"apiKeyName": "bot key", "publicKey": pub, "curveType": "API_KEY_CURVE_P256"}],
                    "authenticators": [],
                    "oauthProviders": [],
                    "userTags": [],
                }
            ]
        },
    )
    (bot_id,) = made["result"]["createUsersResult"]["userIds"]
    allow = calls.policy("bot signs", "EFFECT_ALLOW", "activity.action == 'SIGN'", "", "")
    w0.submit("create_policy", "ACTIVITY_TYPE_CREATE_POLICY_V3", org, allow)
    bot, root = WorkerConnection(d, "1", ApiKeyStamper(pub, priv)), WorkerConnection(d, "1")
    for i in range(3):  # worker 1 has now looked up, verified and cached all of it
        assert bot.post(SIGN_PATH, sign_body(org, key, f"warm {i}"))[0] == 200
        assert root.post(SIGN_PATH, sign_body(org, spare, f"warm {i}"))[0] == 200
    w0.submit(
        "delete_private_keys",
        "ACTIVITY_TYPE_DELETE_PRIVATE_KEYS",
        org,
        {"privateKeyIds": [spare], "deleteWithoutExport": True},
    )
    status, data = root.post(SIGN_PATH, sign_body(org, spare, "after delete"))
    assert (status, data["code"]) == (404, 5), data
    w0.submit("delete_users", "ACTIVITY_TYPE_DELETE_USERS", org, {"userIds": [bot_id]})
    status, data = bot.post(SIGN_PATH, sign_body(org, key, "after delete"))
    assert (status, data["code"]) == (401, 16), data
    assert root.post(SIGN_PATH, sign_body(org, key, "root still signs"))[0] == 200


def test_the_local_socket_is_served_by_the_workers_and_removed_at_stop(tmp_path: Path) -> None:
    d = start_workers(tmp_path / "d")
    path = d.data_dir / "run" / "strongroom.sock"
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        c = Client(f"unix://{path}", ApiKeyStamper.from_files(d.key_prefix), d.organization_id)
        key = create_key(WorkerConnection(d, "1"), d.organization_id)  # made by worker 1
        for i in range(10):
            signed = c.sign_raw_payload(key, f"local {i}", "PAYLOAD_ENCODING_TEXT_UTF8", "HASH_FUNCTION_KECCAK256")
            assert signed["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
    finally:
        d.stop()
    assert d.process.returncode == 0
    assert not path.exists()


def test_identical_submissions_and_approvals_raced_at_both_workers_execute_once(two_workers: Daemon) -> None:
    d = two_workers
    org = d.organization_id
    w0, w1 = WorkerConnection(d, "0"), WorkerConnection(d, "1")
    key = create_key(w0, org)
    barrier = threading.Barrier(2)

    def send(c: WorkerConnection, body: bytes) -> dict[str, Any]:
        barrier.wait()
        status, data = c.post(SIGN_PATH, body)
        assert status == 200, data
        return dict(data["activity"])

    with ThreadPoolExecutor(2) as pool:
        for i in range(20):
            body = sign_body(org, key, f"dup {i}")
            fa, fb = pool.submit(send, w0, body), pool.submit(send, w1, body)
            x, y = fa.result(), fb.result()
            assert x["id"] == y["id"]
            assert x["result"] == y["result"]  # the losing worker's signature was never released
            assert completions(d, x["id"]) == 1
    (count,) = db_rows(d, "SELECT count(*) FROM activities WHERE type = ?", (SIGN,))[0]
    assert count == 20

    # Concurrent approvals at both workers: the activity executes once (the vote lock holds
    # across processes).
    alice, bob, carol = (add_user(w0, org, n) for n in ("alice", "bob", "carol"))
    pairs = calls.policy("pairs", "EFFECT_ALLOW", "activity.action == 'SIGN'", "approvers.count() >= 2", "")
    w0.submit("create_policy", "ACTIVITY_TYPE_CREATE_POLICY_V3", org, pairs)
    a0 = WorkerConnection(d, "0", alice)
    b0, c1 = WorkerConnection(d, "0", bob), WorkerConnection(d, "1", carol)
    for i in range(5):
        status, data = a0.post(SIGN_PATH, sign_body(org, key, f"needs two {i}"))
        assert status == 200, data
        pending = data["activity"]
        assert pending["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
        approval = {"fingerprint": pending["fingerprint"]}

        def approve(c: WorkerConnection, approval: dict[str, str] = approval) -> int:
            body = {"type": "ACTIVITY_TYPE_APPROVE_ACTIVITY", "timestampMs": str(int(time.time() * 1000))}
            raw = json.dumps({**body, "organizationId": org, "parameters": approval}).encode()
            barrier.wait()
            return c.post("/public/v1/submit/approve_activity", raw)[0]

        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(approve, (b0, c1)))
        assert statuses[0] == 200 and statuses[1] in (200, 400, 409), statuses
        (status_row,) = db_rows(d, "SELECT status FROM activities WHERE id = ?", (pending["id"],))
        assert status_row[0] == "ACTIVITY_STATUS_COMPLETED"
        assert completions(d, pending["id"]) == 1
    fingerprints = db_rows(d, "SELECT fingerprint FROM activities")
    assert len(fingerprints) == len(set(fingerprints))


def test_a_worker_that_dies_is_restarted(two_workers: Daemon) -> None:
    d = two_workers
    old = worker_pids(d)
    os.kill(old["1"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while worker_pids(d).get("1") == old["1"]:
        assert time.monotonic() < deadline, d.logs()
        time.sleep(0.1)
    assert '"worker_died"' in d.logs() and "killed by SIGKILL" in d.logs()
    w1 = WorkerConnection(d, "1")  # the new worker 1 serves, on the same port
    key = create_key(w1, d.organization_id)
    status, data = w1.post(SIGN_PATH, sign_body(d.organization_id, key, "after restart"))
    assert status == 200, data
    assert worker_pids(d)["0"] == old["0"]  # the other worker was never disturbed
    assert d.process.poll() is None

    # Both at once: they are restarted together, and each opens the token once (SoftHSM2 fails
    # two logins at the same moment; the workers take turns).
    old = worker_pids(d)
    for pid in old.values():
        os.kill(pid, signal.SIGKILL)
    for worker in ("0", "1"):
        WorkerConnection(d, worker)
    logs = d.logs(wait_for='"worker_ready","level"')
    assert logs.count('"worker_died"') == 3, logs
    assert logs.count('"worker_started"') == 2 + 1 + 2, logs
    assert set(worker_pids(d).values()).isdisjoint(old.values())
    status, data = WorkerConnection(d, "0").post(SIGN_PATH, sign_body(d.organization_id, key, "after both"))
    assert status == 200, data


def test_workers_that_cannot_start_fail_the_daemon_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "d"
    d = start_workers(data)
    d.stop()
    (data / "softhsm" / "user.pin").write_text("000000\n")  # the token refuses this PIN
    out = run_cli("serve", "--port", "0", data_dir=data, check=False)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        "error: cannot start 2 workers: worker 0 could not start: the token rejected the configured pin"
    )


def test_kill_9_parent_and_workers_under_load_then_restart(tmp_path: Path) -> None:
    """Kill -9 one worker mid-load (the parent restarts it), then kill -9 the parent and every
    worker at once; after a restart everything acknowledged is there, once, and replays of the
    acknowledged bodies return the original activities."""
    data = tmp_path / "d"
    d = start_workers(data)
    org = d.organization_id
    acknowledged: dict[bytes, dict[str, Any]] = {}
    errors: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()
    try:
        key = create_key(WorkerConnection(d, "0"), org)

        def load(n: int) -> None:
            c = Client(d.url, ApiKeyStamper.from_files(d.key_prefix), org, timeout=10)
            i = 0
            while not stop.is_set():
                i += 1
                body = sign_body(org, key, f"{n}-{i}")
                try:
                    status, out = c.post_raw(SIGN_PATH, body)
                except Exception as err:  # a killed worker's connection: not acknowledged
                    errors.append(str(err))
                    time.sleep(0.02)
                    continue
                if status == 200 and out["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED":
                    with lock:
                        acknowledged[body] = out["activity"]
                else:
                    errors.append(f"{status} {out}")

        threads = [threading.Thread(target=load, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        pids = worker_pids(d)
        os.kill(pids["1"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while worker_pids(d).get("1") == pids["1"]:
            assert time.monotonic() < deadline, d.logs()
            time.sleep(0.05)
        WorkerConnection(d, "1")  # the new worker 1 answers
        before = len(acknowledged)
        time.sleep(1.0)
        assert len(acknowledged) > before  # served on after the worker's restart
        pids = worker_pids(d)
        for pid in pids.values():  # no shutdown anywhere: no final checkpoint, no flush
            os.kill(pid, signal.SIGKILL)
        d.process.send_signal(signal.SIGKILL)  # (before it could restart them)
        d.process.wait()
        stop.set()
        for t in threads:
            t.join()
    finally:
        stop.set()
        d.stop()
    assert len(acknowledged) > 20, errors[:3]

    report = json.loads(run_cli("audit", "verify", "--json", data_dir=data).stdout)
    assert report["ok"], report

    d = start_workers(data)
    try:
        rows = db_rows(d, "SELECT id, fingerprint, status FROM activities WHERE type = ?", (SIGN,))
        by_id = {r[0]: r for r in rows}
        assert len({r[1] for r in rows}) == len(rows)  # no body recorded twice
        for activity in acknowledged.values():
            assert by_id[activity["id"]][2] == "ACTIVITY_STATUS_COMPLETED"
        for body in list(acknowledged)[:: max(1, len(acknowledged) // 25)]:  # replays, through both workers
            status, out = d.client().post_raw(SIGN_PATH, body)
            assert status == 200
            assert out["activity"]["id"] == acknowledged[body]["id"]
            assert out["activity"]["result"] == acknowledged[body]["result"]
        usage = Client(d.url, ApiKeyStamper.from_files(d.key_prefix), org).query("get_usage")["usage"]
        assert usage["signatures"] == str(len(rows))  # one signature counted per recorded activity
    finally:
        d.stop()
    assert json.loads(run_cli("audit", "verify", "--json", data_dir=data).stdout)["ok"]


def test_one_quota_holds_across_workers(two_workers: Daemon) -> None:
    """Quota N, concurrent signing through both workers: exactly N signatures, the rest refused."""
    d, quota, requests = two_workers, 6, 20
    org = d.organization_id
    key = create_key(WorkerConnection(d, "0"), org)
    run_cli("usage", "set-quota", "--organization", org, "--signatures", str(quota), data_dir=d.data_dir)
    for worker in ("0", "1"):  # each worker re-reads a quota within 5 s
        c = WorkerConnection(d, worker)
        deadline = time.monotonic() + 15
        while True:
            body = {"organizationId": org}
            status, data = c.post("/public/v1/query/get_usage", json.dumps(body).encode())
            assert status == 200, data
            if data["usage"].get("monthlySignatureQuota") == str(quota):
                break
            assert time.monotonic() < deadline, data
            time.sleep(0.2)
    connections = [WorkerConnection(d, str(i % 2)) for i in range(requests)]
    barrier = threading.Barrier(requests)

    def send(i: int) -> tuple[int, Any]:
        body = sign_body(org, key, f"quota {i}")
        barrier.wait()
        return connections[i].post(SIGN_PATH, body)

    with ThreadPoolExecutor(requests) as pool:
        results = list(pool.map(send, range(requests)))
    completed = [x for s, x in results if s == 200 and x["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"]
    refused = [x for s, x in results if s == 429]
    assert len(completed) == quota, results
    assert len(refused) == requests - quota, results
    assert db_rows(d, "SELECT signatures FROM usage WHERE organization_id = ?", (org,)) == [(quota,)]
    assert db_rows(d, "SELECT count(*) FROM usage_reservations WHERE organization_id = ?", (org,)) == [(0,)]


def test_workers_is_a_setting_with_an_environment_override(tmp_path: Path) -> None:
    from strongroom.config import load_settings
    from strongroom.errors import ConfigError

    (tmp_path / "strongroom.toml").write_text('workers = 3\n[token]\nmodule = "m.so"\nlabel = "t"\n')
    assert load_settings(tmp_path, environ={}).workers == 3
    assert load_settings(tmp_path, environ={"STRONGROOM_WORKERS": "2"}).workers == 2
    (tmp_path / "strongroom.toml").write_text('[token]\nmodule = "m.so"\nlabel = "t"\n')
    assert load_settings(tmp_path, environ={}).workers == 1
    for bad in ("0", "65", "two"):
        with pytest.raises(ConfigError, match="`workers` must be"):
            load_settings(tmp_path, environ={"STRONGROOM_WORKERS": bad})
