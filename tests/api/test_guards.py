"""Guards before any token operation: each refuses with the exact error shape and never touches the token."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from strongroom.api.app import make_app
from strongroom.api.ratelimit import RATE_LIMIT_MESSAGE, RateLimiter
from strongroom.cli.bootstrap import create_organization
from strongroom.client import ApiKeyStamper
from strongroom.clock import SystemClock
from strongroom.config import Settings, TokenSettings
from strongroom.crypto import p256
from strongroom.hsm import Token
from strongroom.service.facade import Strongroom
from strongroom.service.pipeline import RecentFingerprints
from strongroom.softhsm import SoftHsmToken
from strongroom.store.audit_verify import PINNED_KEY_NAME, read_pinned, verify_database
from strongroom.store.records import ApiKey, User

pytestmark = pytest.mark.softhsm

SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
CREATE = "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2"


class FakeTime:
    """A wall clock the test can step, beside a monotonic clock that only moves forward."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def wall(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    @staticmethod
    def mono() -> int:
        return time.monotonic_ns() // 1_000_000


@dataclass
class Env:
    client: TestClient[Any, Any]
    service: Strongroom
    time: FakeTime
    org_id: str
    stamper: ApiKeyStamper
    key_id: str

    @property
    def token_ops(self) -> int:
        return self.service.keys.operations

    def body(
        self,
        params: dict[str, Any] | None = None,
        *,
        activity_type: str = SIGN,
        ts: int | None = None,
        org: str | None = None,
    ) -> bytes:
        return json.dumps(
            {
                "type": activity_type,
                "timestampMs": str(ts if ts is not None else self.time.wall()),
                "organizationId": org or self.org_id,
                "parameters": params if params is not None else self.sign_params(),
            }
        ).encode()

    def sign_params(self, payload: str | None = None) -> dict[str, Any]:
        return {
            "signWith": self.key_id,
            "payload": payload or str(uuid.uuid4()),
            "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
            "hashFunction": "HASH_FUNCTION_KECCAK256",
        }

    async def post(
        self,
        body: bytes,
        path: str = "sign_raw_payload",
        *,
        stamper: ApiKeyStamper | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, Any]:
        h = {"X-Stamp": (stamper or self.stamper).stamp(body), **(headers or {})}
        resp = await self.client.post(f"/public/v1/submit/{path}", data=body, headers=h)
        return resp.status, json.loads(await resp.read()), resp.headers

    async def query(self, name: str, **params: Any) -> tuple[int, Any]:
        body = json.dumps({"organizationId": self.org_id, **params}).encode()
        resp = await self.client.post(
            f"/public/v1/query/{name}", data=body, headers={"X-Stamp": self.stamper.stamp(body)}
        )
        return resp.status, json.loads(await resp.read())


async def make_env(softhsm_token: SoftHsmToken, data: Path, **settings_kw: Any) -> tuple[Env, Strongroom]:
    settings = Settings(
        data_dir=data,
        token=TokenSettings(softhsm_token.module, softhsm_token.label, pin_file=softhsm_token.pin_file),
        **{"rate_limit_per_second": 10_000.0, **settings_kw},
    )
    fake = FakeTime()
    token = Token(softhsm_token.module, softhsm_token.label, softhsm_token.read_pin())
    service = Strongroom(settings, token, token.probe(), SystemClock(2_000, wall=fake.wall, monotonic=fake.mono))
    priv, pub = p256.generate_private_key()
    org_id, _ = create_organization(service.repo, "guards", "root", pub, fake.wall())
    client = TestClient(TestServer(make_app(service)))
    await client.start_server()
    env = Env(client, service, fake, org_id, ApiKeyStamper(pub, priv), "")
    status, data_, _ = await env.post(
        env.body(
            {
                "privateKeys": [
                    {"privateKeyName": "k", "curve": "CURVE_SECP256K1", "privateKeyTags": [], "addressFormats": []}
                ]
            },
            activity_type=CREATE,
        ),
        "create_private_keys",
    )
    assert status == 200, data_
    env.key_id = data_["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
    return env, service


@pytest.fixture
async def env(softhsm_token: SoftHsmToken, tmp_path: Path) -> AsyncIterator[Env]:
    e, service = await make_env(softhsm_token, tmp_path)
    yield e
    await e.client.close()
    service.close()


def add_user(env: Env, *, root: bool) -> ApiKeyStamper:
    """A second user of the organization (not in the root quorum unless `root`)."""
    priv, pub = p256.generate_private_key()
    now = env.time.wall()
    user = User(str(uuid.uuid4()), env.org_id, "member", None, "ACCESS_TYPE_API", (), now, now)
    key = ApiKey(str(uuid.uuid4()), user.id, env.org_id, "member key", pub, "API_KEY_CURVE_P256", None, now, now)
    repo = env.service.repo
    ops = [*repo.users.insert_user(user), *repo.users.insert_api_key(key)]
    if root:
        ops += repo.organizations.insert_root_users(env.org_id, [user.id])
    repo.write_sync(ops)
    return ApiKeyStamper(pub, priv)


def assert_error(status: int, data: Any, headers: Any, want_status: int, want_code: int, want_text: str) -> None:
    assert status == want_status, data
    assert set(data) == {"code", "message", "details"}
    assert data["code"] == want_code
    assert want_text in data["message"]
    assert data["details"][0]["@type"] == "type.googleapis.com/errors.v1.TurnkeyErrorDetail"
    assert headers["Content-Type"] == "application/json"


async def test_every_guard_refuses_before_the_token(env: Env) -> None:
    member = add_user(env, root=False)
    stranger_priv, stranger_pub = p256.generate_private_key()
    stranger = ApiKeyStamper(stranger_pub, stranger_priv)
    now = env.time.wall()
    good = env.body()
    cases: list[tuple[str, Any, int, int, str]] = [
        (
            "bad signature",
            lambda: env.client.post(
                "/public/v1/submit/sign_raw_payload", data=good, headers={"X-Stamp": env.stamper.stamp(good + b" ")}
            ),
            401,
            16,
            "could not verify api key signature",
        ),
        (
            "no stamp",
            lambda: env.client.post("/public/v1/submit/sign_raw_payload", data=good),
            401,
            16,
            "without a stamp",
        ),
        ("unknown credential", lambda: env.post(good, stamper=stranger), 401, 16, "could not find public key"),
        ("malformed JSON", lambda: env.post(b'{"type": "x",'), 400, 3, "not valid JSON"),
        (
            "duplicate keys",
            lambda: env.post(good[:-1] + b', "organizationId": "' + env.org_id.encode() + b'"}'),
            400,
            3,
            "duplicate key `organizationId`",
        ),
        ("unknown organization", lambda: env.post(env.body(org=str(uuid.uuid4()))), 404, 5, "no organization found"),
        (
            "unknown activity type",
            lambda: env.post(env.body(activity_type="ACTIVITY_TYPE_SIGN_EVERYTHING")),
            400,
            3,
            "unsupported activity type",
        ),
        ("stale timestamp", lambda: env.post(env.body(ts=now - 3_600_001)), 400, 3, "too old"),
        ("future timestamp", lambda: env.post(env.body(ts=now + 310_000)), 400, 3, "too far in the future"),
        (
            "missing timestamp",
            lambda: env.post(good.replace(b'"timestampMs"', b'"timestamp"')),
            400,
            3,
            "missing field `timestampMs`",
        ),
        ("not authorized", lambda: env.post(env.body(), stamper=member), 403, 7, "policy engine denied request"),
        ("oversized body", lambda: env.post(env.body(env.sign_params("x" * 300_000))), 413, 3, "larger than"),
    ]
    for name, call, want_status, want_code, want_text in cases:
        before = env.token_ops
        result = await call()
        if isinstance(result, tuple):
            status, data, headers = result
        else:
            status, data, headers = result.status, json.loads(await result.read()), result.headers
        assert_error(status, data, headers, want_status, want_code, want_text)
        assert env.token_ops == before, f"{name} reached the token"
        assert "ratelimit-limit" in headers and "x-rate-limit-request-remote-addr" in headers, name
    # And the good request does reach it, exactly once.
    before = env.token_ops
    status, data, headers = await env.post(good)
    assert status == 200
    assert env.token_ops == before + 1
    assert int(headers["ratelimit-remaining"]) >= 0


async def test_stepped_clock_refuses_signing_until_trust_returns(env: Env) -> None:
    status, data, _ = await env.post(env.body())
    assert status == 200
    env.time.offset_ms = -10 * 60_000  # someone steps the wall clock back ten minutes
    before = env.token_ops
    status, data, headers = await env.post(env.body())
    assert_error(status, data, headers, 503, 14, "trusted clock unavailable: the wall clock was stepped back")
    ready = await env.client.get("/readyz")
    assert ready.status == 503
    assert "stepped back" in (await ready.json())["checks"]["clock"]
    env.time.offset_ms = 60 * 60_000  # now an hour ahead of where it should be
    status, data, headers = await env.post(env.body())
    assert_error(status, data, headers, 503, 14, "jumped forward")
    assert env.token_ops == before
    env.time.offset_ms = 0  # NTP puts it back: trust returns by itself
    status, data, _ = await env.post(env.body())
    assert status == 200, data
    assert env.token_ops == before + 1
    assert (await env.client.get("/readyz")).status == 200


async def test_many_identical_submissions_execute_once(env: Env) -> None:
    body = env.body()
    before_ops = env.token_ops
    results = await asyncio.gather(*(env.post(body) for _ in range(50)))
    assert {r[0] for r in results} == {200}
    assert len({r[1]["activity"]["id"] for r in results}) == 1
    assert len({json.dumps(r[1]["activity"]["result"]) for r in results}) == 1
    assert env.token_ops == before_ops + 1
    conn = sqlite3.connect(env.service.settings.database_path)
    fp = results[0][1]["activity"]["fingerprint"]
    assert conn.execute("SELECT count(*) FROM activities WHERE fingerprint = ?", (fp,)).fetchone()[0] == 1
    conn.close()


async def test_a_repeat_is_answered_from_its_record_when_the_memory_of_recent_fingerprints_is_full(
    env: Env,
) -> None:
    """The recent fingerprints held in memory are capped (`RECENT_CAPACITY`); past the cap the
    oldest are dropped, and until they leave the timestamp window every request is looked up in
    the database. A repeat of a dropped one is answered from its record, with no token operation."""
    pipeline = env.service.pipeline
    setattr(pipeline, "recent", RecentFingerprints(pipeline.recent.window_ms, capacity=3))  # noqa: B010 - a Final
    first = env.body()
    status, data, _ = await env.post(first)
    assert status == 200, data
    for _ in range(4):  # the first one's fingerprint is dropped from memory
        assert (await env.post(env.body()))[0] == 200
    assert data["activity"]["fingerprint"] not in pipeline.recent
    before = env.token_ops
    status, again, _ = await env.post(first)
    assert status == 200, again
    assert again["activity"]["id"] == data["activity"]["id"]
    assert again["activity"]["result"] == data["activity"]["result"]
    assert env.token_ops == before


async def test_quota_and_usage(env: Env) -> None:
    env.service.repo.write_sync(env.service.repo.usage.set_signature_quota(env.org_id, 4))
    env.service.pipeline.meter._quotas.clear()  # as if 5 s had passed since the operator set it
    status, usage = await env.query("get_usage")
    assert usage["usage"]["signatures"] == "0"
    assert usage["usage"]["monthlySignatureQuota"] == "4"
    for _ in range(2):
        assert (await env.post(env.body()))[0] == 200
    payloads = {**env.sign_params(), "payloads": ["a", "b", "c"]}
    del payloads["payload"]
    before = env.token_ops
    status, data, headers = await env.post(
        env.body(payloads, activity_type="ACTIVITY_TYPE_SIGN_RAW_PAYLOADS"), "sign_raw_payloads"
    )
    assert_error(status, data, headers, 429, 8, "monthly signature quota of 4 is exhausted")
    assert env.token_ops == before
    payloads["payloads"] = ["a", "b"]
    status, data, _ = await env.post(
        env.body(payloads, activity_type="ACTIVITY_TYPE_SIGN_RAW_PAYLOADS"), "sign_raw_payloads"
    )
    assert status == 200, data
    status, usage = await env.query("get_usage")
    assert usage["usage"]["signatures"] == "4"
    conn = sqlite3.connect(env.service.settings.database_path)
    assert conn.execute("SELECT signatures FROM usage WHERE organization_id = ?", (env.org_id,)).fetchone()[0] == 4
    conn.close()


class _Faulty:
    """A writer connection whose disk has gone away."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self.real = real
        self.broken = True

    def execute(self, sql: str, *args: Any) -> Any:
        if self.broken and sql.startswith("BEGIN"):
            raise sqlite3.OperationalError("disk I/O error")
        return self.real.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_signing_stops_while_the_store_cannot_be_written(env: Env) -> None:
    writer = env.service.db._writer
    faulty = _Faulty(writer._conn)
    writer._conn = faulty  # type: ignore[assignment]
    before = env.token_ops
    status, data, _ = await env.post(env.body())
    assert status == 500  # signed, but not recorded: the signature is never released
    assert "signRawPayloadResult" not in json.dumps(data)
    assert env.token_ops == before + 1
    ready = await env.client.get("/readyz")
    assert ready.status == 503
    assert "disk I/O error" in (await ready.json())["checks"]["store"]
    status, data, headers = await env.post(env.body())
    assert_error(status, data, headers, 503, 14, "signing is stopped because the store cannot be written")
    assert env.token_ops == before + 1  # refused before the token
    faulty.broken = False
    assert await env.service.db.probe()
    status, data, _ = await env.post(env.body())
    assert status == 200, data
    writer._conn = faulty.real


async def test_audit_chain_catches_edits_deletions_and_reordering(env: Env, tmp_path: Path) -> None:
    member = add_user(env, root=False)
    for _ in range(4):
        assert (await env.post(env.body()))[0] == 200
    assert (await env.post(env.body(), stamper=member))[0] == 403  # a refusal is audited too
    assert await env.service.checkpoint()
    db = env.service.settings.database_path
    pinned = read_pinned(env.service.settings.data_dir / PINNED_KEY_NAME)  # pinned at start (first use)
    report = verify_database(db, pinned)
    assert report.ok, report.problems
    assert report.entries >= 6
    assert report.checkpoints == 1
    conn = sqlite3.connect(db)
    kinds = [json.loads(b)["kind"] for (b,) in conn.execute("SELECT body FROM audit_log ORDER BY seq")]
    conn.close()
    assert "refusal" in kinds

    def tampered(name: str, *sql: str) -> list[str]:
        copy = tmp_path / f"{name}.sqlite3"
        src = sqlite3.connect(db)
        dst = sqlite3.connect(copy)
        src.backup(dst)
        src.close()
        for statement in sql:
            dst.execute(statement)
        dst.commit()
        dst.close()
        return verify_database(copy, pinned).problems

    conn = sqlite3.connect(db)
    (completed,) = conn.execute("SELECT min(seq) FROM audit_log WHERE body LIKE '%COMPLETED%'").fetchone()
    conn.close()
    assert tampered(
        "edit", f"UPDATE audit_log SET body = replace(body, 'COMPLETED', 'FAILED') WHERE seq = {completed}"
    ) == [f"entry {completed} was edited: its content does not match its hash"]
    assert tampered("delete", "DELETE FROM audit_log WHERE seq = 2") == [
        "entry 2 is missing (next entry is 3): entries were deleted"
    ]
    assert tampered(
        "reorder",
        "UPDATE audit_log SET seq = -1 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 3",
        "UPDATE audit_log SET seq = 3 WHERE seq = -1",
    ) == ["entry 2 does not link to entry 1: entries were reordered, inserted or replaced"]
    problems = tampered(
        "result", 'UPDATE activities SET result = replace(result, \'"v":"0\', \'"v":"1\') WHERE rowid = 2'
    )
    assert len(problems) == 1
    assert "result was changed" in problems[0]
    # Rewriting the whole chain after an edit is caught by the token-signed checkpoint.
    copy = tmp_path / "rewrite.sqlite3"
    src = sqlite3.connect(db)
    conn = sqlite3.connect(copy)
    src.backup(conn)  # the WAL too: a plain file copy would miss recent commits
    src.close()
    from strongroom.store import audit

    prev = audit.GENESIS
    rows = conn.execute("SELECT seq, body FROM audit_log ORDER BY seq").fetchall()
    for seq, original in rows:
        body = original.replace("COMPLETED", "FAILED") if seq == 2 else original
        h = audit.entry_hash(prev, seq, body.encode())
        conn.execute("UPDATE audit_log SET body = ?, prev_hash = ?, hash = ? WHERE seq = ?", (body, prev, h, seq))
        prev = h
    conn.commit()
    conn.close()
    report = verify_database(copy, pinned)
    n = report.entries
    assert report.problems == [
        f"checkpoint at entry {n} signed a different chain head: the log was rewritten up to entry {n}"
    ]


def test_rate_limiter_trusts_forwarded_for_only_from_proxies() -> None:
    limiter = RateLimiter(1, burst=2, trusted_proxies=["10.0.0.0/8"])
    assert limiter.client_ip("203.0.113.9", "1.2.3.4") == "203.0.113.9"  # spoofing attempt ignored
    assert limiter.client_ip("10.0.0.5", "1.2.3.4, 10.0.0.7") == "1.2.3.4"
    assert [limiter.check("9.9.9.9", None, now=100.0).allowed for _ in range(3)] == [True, True, False]
    assert limiter.check("9.9.9.9", None, now=101.1).allowed  # refilled one token
    assert limiter.check("8.8.8.8", None, now=101.1).allowed  # another client has its own bucket


async def test_rate_limit_429_and_headers(softhsm_token: SoftHsmToken, tmp_path: Path) -> None:
    env, service = await make_env(softhsm_token, tmp_path, rate_limit_per_second=1.0, rate_limit_burst=3)
    try:
        # make_env's key creation used one token of the bucket.
        statuses = []
        for _ in range(3):
            status, data, headers = await env.post(env.body())
            statuses.append(status)
            assert headers["ratelimit-limit"] == "3"
        assert statuses == [200, 200, 429]
        assert data == {
            "code": 8,
            "message": RATE_LIMIT_MESSAGE,
            "details": [
                {"@type": "type.googleapis.com/errors.v1.TurnkeyErrorDetail", "turnkeyErrorCode": "RATE_LIMIT_EXCEEDED"}
            ],
        }
        assert headers["ratelimit-remaining"] == "0"
        assert headers["x-rate-limit-request-remote-addr"] == "127.0.0.1"
        before = env.token_ops
        status, data, headers = await env.post(env.body(), headers={"X-Forwarded-For": "1.2.3.4"})
        assert status == 429  # the header from an untrusted peer changes nothing
        assert headers["x-rate-limit-request-forwarded-for"] == "1.2.3.4"
        assert env.token_ops == before
        health = await env.client.get("/healthz")
        assert health.status == 200
        assert "x-rate-limit-request-remote-addr" in health.headers
    finally:
        await env.client.close()
        service.close()


def test_settings_reject_bad_rate_limits(tmp_path: Path) -> None:
    from strongroom.config import load_settings
    from strongroom.errors import ConfigError

    base = '[token]\nmodule = "/x"\nlabel = "y"\npin_file = "p"\n'
    for bad, needle in (
        ("rate_limit_per_second = -1\n", "rate_limit_per_second"),
        ('trusted_proxies = ["not-an-ip"]\n', "not-an-ip"),
        ("bogus = 1\n", "unknown setting `bogus`"),
    ):
        (tmp_path / "strongroom.toml").write_text(bad + base)
        with pytest.raises(ConfigError, match=needle):
            load_settings(tmp_path)
    (tmp_path / "strongroom.toml").write_text('rate_limit_per_second = 5\ntrusted_proxies = ["10.0.0.0/8"]\n' + base)
    s = load_settings(tmp_path)
    assert replace(s, data_dir=tmp_path).rate_limit_per_second == 5.0
    assert s.trusted_proxies == ("10.0.0.0/8",)
