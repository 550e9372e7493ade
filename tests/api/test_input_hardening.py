"""Bad input never gets a 5xx and never leaves half-done work (over real HTTP, real SoftHSM token).

Each case sends what an attacker sent and checks: the status, Turnkey's error shape, and that
nothing changed: the token's objects, the signature quota (used and reserved), the recorded
activities, the private keys, and the number of token operations.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from strongroom.api.app import make_app
from strongroom.cli.bootstrap import create_organization
from strongroom.client import ApiKeyStamper
from strongroom.clock import SystemClock
from strongroom.config import Settings, TokenSettings
from strongroom.crypto import p256
from strongroom.hsm import Token
from strongroom.service.facade import Strongroom
from strongroom.service.metering import month_of
from strongroom.softhsm import SoftHsmToken

pytestmark = pytest.mark.softhsm

SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
CREATE_KEYS = "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2"
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "eip712.json"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Org:
    client: TestClient[Any, Any]
    service: Strongroom
    id: str
    stamper: ApiKeyStamper
    user_id: str

    def envelope(self, activity_type: str, params: Any, *, timestamp: str | None = None) -> dict[str, Any]:
        return {
            "type": activity_type,
            "timestampMs": timestamp if timestamp is not None else str(time.time_ns() // 1_000_000),
            "organizationId": self.id,
            "parameters": params,
        }

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
        hdrs = {"X-Stamp": self.stamper.stamp(body)} if headers is None else headers
        resp = await self.client.post(path, data=body, headers=hdrs)
        raw = await resp.read()
        assert resp.content_type == "application/json", (resp.status, raw[:300])
        return resp.status, json.loads(raw), resp.headers.get("X-Request-Id", "")

    async def submit_raw(self, path: str, body: bytes) -> tuple[int, Any]:
        status, data, _ = await self.post(f"/public/v1/submit/{path}", body)
        return status, data

    async def submit(self, path: str, activity_type: str, params: Any) -> tuple[int, Any]:
        return await self.submit_raw(path, json.dumps(self.envelope(activity_type, params)).encode())

    async def query(self, name: str, **params: Any) -> tuple[int, Any]:
        body = json.dumps({"organizationId": self.id, **params}).encode()
        status, data, _ = await self.post(f"/public/v1/query/{name}", body)
        return status, data

    def token_objects(self) -> int:
        return len(list(self.service.token.session().get_objects()))

    async def snapshot(self) -> dict[str, Any]:
        status, data = await self.query("list_activities", paginationOptions={"limit": "100"})
        assert status == 200, data
        now = time.time_ns() // 1_000_000
        meter = self.service.pipeline.meter
        return {
            "token_objects": self.token_objects(),
            "token_operations": self.service.keys.operations,
            "activities": sorted(a["id"] for a in data["activities"]),
            "private_keys": len(self.service.repo.private_keys.private_keys(self.id)),
            "signatures_used": self.service.repo.usage.signatures_used(self.id, month_of(now)),
            "quota": meter.usage(self.id, now),
            "reserved": meter.reserved(self.id, now),
        }


@pytest.fixture
async def org(softhsm_token: SoftHsmToken, tmp_path: Path) -> AsyncIterator[Org]:
    async with open_org(softhsm_token, tmp_path) as made:
        yield made


@contextlib.asynccontextmanager
async def open_org(softhsm_token: SoftHsmToken, tmp_path: Path) -> AsyncIterator[Org]:
    """An in-process daemon on a real HTTP socket, one organization with its root user's API key."""
    settings = Settings(
        data_dir=tmp_path,
        token=TokenSettings(softhsm_token.module, softhsm_token.label, pin_file=softhsm_token.pin_file),
        rate_limit_per_second=10_000.0,
    )
    token = Token(softhsm_token.module, softhsm_token.label, softhsm_token.read_pin())
    service = Strongroom(settings, token, token.probe(), SystemClock(2_000))
    priv, pub = p256.generate_private_key()
    org_id, root_id = create_organization(service.repo, "hardening", "root", pub, time.time_ns() // 1_000_000)
    client = TestClient(TestServer(make_app(service)))
    await client.start_server()
    yield Org(client, service, org_id, ApiKeyStamper(pub, priv), root_id)
    await client.close()
    service.close()


def assert_refused(status: int, data: Any, *, http: int = 400, grpc: int = 3) -> None:
    assert status == http, data
    assert set(data) == {"code", "message", "details"}, data
    assert data["code"] == grpc, data
    assert isinstance(data["message"], str) and data["message"], data
    assert isinstance(data["details"], list), data
    assert "Traceback" not in data["message"]


async def make_key(org: Org, name: str, curve: str = "CURVE_SECP256K1") -> str:
    status, data = await org.submit(
        "create_private_keys",
        CREATE_KEYS,
        {"privateKeys": [{"privateKeyName": name, "curve": curve, "addressFormats": []}]},
    )
    assert status == 200, data
    key_id: str = data["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
    return key_id


def sign_params(key_id: str) -> dict[str, Any]:
    return {
        "signWith": key_id,
        "payload": str(uuid.uuid4()),
        "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
        "hashFunction": "HASH_FUNCTION_KECCAK256",
    }


# -- integers above 64 bits -----------------------------------------------------------------------------


@pytest.mark.parametrize("big", [2**64, 2**70, -(2**63) - 1, 10**400])
async def test_integer_above_64_bits_in_create_private_keys_leaves_no_key_in_the_token(org: Org, big: int) -> None:
    await make_key(org, "warm-up")  # the token session and keystore are in use, as in production
    before = await org.snapshot()
    for params in (
        {"privateKeys": [{"privateKeyName": "orphan", "curve": "CURVE_SECP256K1", "addressFormats": []}], "n": big},
        {"privateKeys": [{"privateKeyName": "orphan", "curve": "CURVE_ED25519", "addressFormats": [], "n": [big]}]},
    ):
        status, data = await org.submit("create_private_keys", CREATE_KEYS, params)
        assert_refused(status, data)
    assert await org.snapshot() == before
    await make_key(org, "after")  # and the next legitimate request works


async def test_integer_above_64_bits_does_not_leak_the_signature_quota(org: Org) -> None:
    key_id = await make_key(org, "signer")
    org.service.repo.write_sync(org.service.repo.usage.set_signature_quota(org.id, 1))
    before = await org.snapshot()
    for _ in range(3):
        status, data = await org.submit("sign_raw_payload", SIGN, {**sign_params(key_id), "nonce": 2**64 + 1})
        assert_refused(status, data)
    assert await org.snapshot() == before
    status, data = await org.submit("sign_raw_payload", SIGN, sign_params(key_id))
    assert status == 200, data
    assert data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"


async def test_64_bit_integers_are_still_accepted(org: Org) -> None:
    """The bound is exactly 64 bits (signed or unsigned): what orjson stores is still fine."""
    key_id = await make_key(org, "signer")
    for n in (2**64 - 1, -(2**63)):
        status, data = await org.submit("sign_raw_payload", SIGN, {**sign_params(key_id), "n": n})
        assert status == 200, data


async def test_nan_infinity_and_fractions_in_the_body(org: Org) -> None:
    """Turnkey's numbers are strings; a JSON float means nothing here (and NaN would be stored as null)."""
    key_id = await make_key(org, "signer")
    good = json.dumps(org.envelope(SIGN, sign_params(key_id)))
    before = await org.snapshot()
    for value in ("NaN", "Infinity", "-Infinity", "1e400", "1.5", "1e3"):
        body = good.replace('"signWith"', f'"n": {value}, "signWith"').encode()
        status, data = await org.submit_raw("sign_raw_payload", body)
        assert_refused(status, data)
    assert await org.snapshot() == before


# -- strings that are not Unicode ------------------------------------------------------------------------


async def test_lone_surrogates_are_refused_as_json_errors(org: Org) -> None:
    key_id = await make_key(org, "signer")
    good = json.dumps(org.envelope(SIGN, sign_params(key_id)))
    before = await org.snapshot()
    bodies = [
        good.replace(SIGN, "X\\ud800").encode(),  # in a field that ends up in the error message
        good.replace('"payload": "', '"payload": "X\\udfff').encode(),  # in a value that is signed
        good.replace('"payload": "', '"payload": "\\ud800\\ud800').encode(),  # two highs are no pair
        good.replace('"signWith"', '"\\udc00signWith"').encode(),  # in a key
        good.replace('"payload": "', '"payload": "X').encode().replace(b'"X', b'"X\xed\xa0\x80'),  # raw bytes
        good.encode("utf-16"),  # not UTF-8
    ]
    for body in bodies:
        status, data = await org.submit_raw("sign_raw_payload", body)
        assert_refused(status, data)
    assert await org.snapshot() == before
    # a real pair (an emoji written as two escapes) is Unicode: signed as usual
    emoji = good.replace('"payload": "', '"payload": "\\ud83d\\ude00').encode()
    status, data = await org.submit_raw("sign_raw_payload", emoji)
    assert status == 200, data


# -- deep nesting, unauthenticated -----------------------------------------------------------------------


async def test_deep_nesting_in_x_stamp(org: Org) -> None:
    body = json.dumps(org.envelope(SIGN, {})).encode()
    before = await org.snapshot()
    for stamp in (b64url(b"[" * 3000), b64url(b'{"a":' * 800 + b"1" + b"}" * 800)):
        status, data, _ = await org.post("/public/v1/submit/sign_raw_payload", body, {"X-Stamp": stamp})
        assert_refused(status, data, http=401, grpc=16)
    assert await org.snapshot() == before


async def test_deep_nesting_in_x_stamp_webauthn_and_its_client_data(org: Org) -> None:
    body = json.dumps(org.envelope(SIGN, {})).encode()
    before = await org.snapshot()
    deep_client_data = json.dumps(
        {
            "credentialId": b64url(b"id"),
            "clientDataJson": b64url(b"[" * 5000),
            "authenticatorData": b64url(b"\0" * 37),
            "signature": b64url(b"sig"),
        }
    )
    for stamp in ("[" * 8000, deep_client_data):
        status, data, _ = await org.post("/public/v1/submit/sign_raw_payload", body, {"X-Stamp-WebAuthn": stamp})
        assert_refused(status, data, http=401, grpc=16)
    assert await org.snapshot() == before


async def test_deep_nesting_in_the_dashboard_login_body(org: Org) -> None:
    before = await org.snapshot()
    for path in ("/dashboard/api/login", "/dashboard/api/login/options"):
        for body in (b"[" * 100_000, b'{"assertion":' * 10_000 + b"{}" + b"}" * 10_000):
            status, data, _ = await org.post(path, body, {})
            assert_refused(status, data)
    # the assertion's clientDataJson is JSON inside JSON
    inner = {
        "credentialId": b64url(b"id"),
        "clientDataJson": b64url(b"[" * 5000),
        "authenticatorData": b64url(b"\0" * 37),
        "signature": b64url(b"sig"),
    }
    status, data, _ = await org.post("/dashboard/api/login", json.dumps({"assertion": inner}).encode(), {})
    assert_refused(status, data, http=401, grpc=16)
    assert await org.snapshot() == before


async def test_deep_nesting_in_the_request_body(org: Org) -> None:
    before = await org.snapshot()
    for body in (b"[" * 100_000, b'{"a":' * 2000 + b"1" + b"}" * 2000):
        status, data = await org.submit_raw("sign_raw_payload", body)
        assert_refused(status, data)
    assert await org.snapshot() == before


# -- digits that are not ASCII --------------------------------------------------------------------------


async def test_unicode_digits_in_timestamp_ms(org: Org) -> None:
    key_id = await make_key(org, "signer")
    now = str(time.time_ns() // 1_000_000)
    fullwidth = now.translate({ord("0") + i: 0xFF10 + i for i in range(10)})
    arabic = now.translate({ord("0") + i: 0x0660 + i for i in range(10)})
    before = await org.snapshot()
    for ts in ("²", now[:-1] + "²", fullwidth, arabic, " " + now, now + "\n", "+" + now):
        body = json.dumps(org.envelope(SIGN, sign_params(key_id), timestamp=ts)).encode()
        status, data = await org.submit_raw("sign_raw_payload", body)
        assert_refused(status, data)
        assert data["details"][0]["turnkeyErrorCode"] == "INVALID_TIME", data
    assert await org.snapshot() == before


async def test_unicode_digits_in_other_numeric_strings(org: Org) -> None:
    before = await org.snapshot()
    for limit in ("\u00b2", "\uff11\uff10", "\u0663"):
        status, data = await org.query("list_activities", paginationOptions={"limit": limit})
        assert_refused(status, data)
    user_id = org.user_id
    _priv, pub = p256.generate_private_key()
    for seconds in ("\u00b2", "\uff13\uff16\uff10\uff10", "\u0663"):
        status, data = await org.submit(
            "create_api_keys",
            "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
            {
                "userId": user_id,
                "apiKeys": [
                    {
                        "apiKeyName": "k",
                        "publicKey": pub,
                        "curveType": "API_KEY_CURVE_P256",
                        "expirationSeconds": seconds,
                    }
                ],
            },
        )
        assert_refused(status, data)
    assert await org.snapshot() == before


# -- duplicate keys in JSON inside JSON -------------------------------------------------------------------


async def test_duplicate_keys_inside_an_eip712_payload(org: Org) -> None:
    key_id = await make_key(org, "signer")
    mail = json.loads(VECTORS.read_text())["mail"]["viem"]
    text = json.dumps(mail)
    params = {"signWith": key_id, "encoding": "PAYLOAD_ENCODING_EIP712", "hashFunction": "HASH_FUNCTION_NO_OP"}
    status, data = await org.submit("sign_raw_payload", SIGN, {**params, "payload": text})
    assert status == 200, data  # the payload as sent is fine
    before = await org.snapshot()
    for payload in (
        text[:-1] + ', "primaryType": "Mail"}',  # top level
        text.replace('"contents": "Hello, Bob!"', '"contents": "Hello, Bob!", "contents": "Send everything"'),
        text.replace('"chainId": 1', '"chainId": 1, "chainId": 137'),  # the domain policies read
        text.replace('"contents": "Hello, Bob!"', '"contents": "\\ud800"'),  # lone surrogate
        text.replace('"chainId": 1', '"chainId": ' + "[" * 5000 + "]" * 5000),  # deep
    ):
        assert payload != text
        status, data = await org.submit("sign_raw_payload", SIGN, {**params, "payload": payload})
        assert_refused(status, data)
    assert await org.snapshot() == before


# -- reserve -> execute -> commit or roll back ------------------------------------------------------------


@pytest.mark.parametrize("where", ["build", "write"])
async def test_a_commit_that_fails_leaves_no_key_and_no_reservation(
    org: Org, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Whatever fails after the work (building the commit, or the commit itself) undoes it."""
    key_id = await make_key(org, "signer")
    org.service.repo.write_sync(org.service.repo.usage.set_signature_quota(org.id, 1))
    before = await org.snapshot()
    repo = org.service.repo
    real_insert, real_write = repo.activities.insert_activity, repo.write

    def broken_insert(*_args: Any, **_kw: Any) -> Any:
        raise TypeError("Integer exceeds 64-bit range")

    async def broken_write(ops: Any) -> Any:
        raise RuntimeError("disk on fire")

    for attempt in range(3):
        if where == "build":
            monkeypatch.setattr(repo.activities, "insert_activity", broken_insert)
        else:
            monkeypatch.setattr(repo, "write", broken_write)
        if attempt == 0:
            params: dict[str, Any] = {
                "privateKeys": [
                    {"privateKeyName": f"orphan-{c}", "curve": c, "addressFormats": []}
                    for c in ("CURVE_SECP256K1", "CURVE_ED25519")
                ]
            }
            status, data = await org.submit("create_private_keys", CREATE_KEYS, params)
        else:
            status, data = await org.submit("sign_raw_payload", SIGN, sign_params(key_id))
        monkeypatch.setattr(repo.activities, "insert_activity", real_insert)
        monkeypatch.setattr(repo, "write", real_write)
        assert_refused(status, data, http=500, grpc=13)
    after = await org.snapshot()
    assert after == {**before, "token_operations": after["token_operations"]}  # keys were made, then destroyed
    status, data = await org.submit("sign_raw_payload", SIGN, sign_params(key_id))
    assert status == 200, data
    assert data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"


# -- the guard: an unexpected exception is shaped, counted and logged with a request id -----------------


async def test_unexpected_exception_is_a_shaped_internal_error(org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_args: Any, **_kw: Any) -> Any:
        raise RuntimeError("secret detail /etc/strongroom")

    monkeypatch.setattr(org.service, "submit", broken)
    body = json.dumps(org.envelope(SIGN, {})).encode()
    with structlog.testing.capture_logs() as logs:
        status, data, request_id = await org.post("/public/v1/submit/sign_raw_payload", body)
    assert_refused(status, data, http=500, grpc=13)
    lines = [e for e in logs if e.get("event") == "internal_error"]
    assert len(lines) == 1, logs
    assert (lines[0]["request_id"], lines[0]["error"]) == (request_id, "RuntimeError")
    assert "secret" not in repr(logs) and "Traceback" not in repr(logs)
    assert "secret" not in json.dumps(data)
    assert request_id
    assert {"@type": "type.googleapis.com/google.rpc.RequestInfo", "requestId": request_id} in data["details"]
    metrics = await (await org.client.get("/metrics")).text()
    assert "strongroom_internal_errors_total 1.0" in metrics


async def test_bad_body_encoding_is_a_json_error(org: Org) -> None:
    """A body aiohttp cannot decode (`Content-Encoding: gzip` over plain bytes) is a 400 in Turnkey's shape.

    Over a raw socket: after answering, aiohttp closes the connection (the rest of the body
    cannot be read), which the aiohttp test client reports as a disconnection.
    """
    body = json.dumps(org.envelope(SIGN, {})).encode()
    before = await org.snapshot()
    port = org.client.server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /public/v1/submit/sign_raw_payload HTTP/1.1\r\nHost: localhost\r\nContent-Encoding: gzip\r\n"
        f"Content-Length: {len(body)}\r\nX-Stamp: {org.stamper.stamp(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    headers, _, payload = raw.partition(b"\r\n\r\n")
    assert headers.startswith(b"HTTP/1.1 400 "), raw[:300]
    assert b"\r\nContent-Type: application/json\r\n" in headers, raw[:300]
    assert_refused(400, json.loads(payload))
    assert await org.snapshot() == before


async def test_a_failure_inside_create_private_keys_after_the_token_destroys_the_keys(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key made in the token is destroyed even when the handler itself fails after making it."""
    await make_key(org, "warm-up")
    before = await org.snapshot()

    def broken(*_args: Any, **_kw: Any) -> Any:
        raise TypeError("cannot encode")

    monkeypatch.setattr(org.service.repo.private_keys, "insert_private_key", broken)
    params = {
        "privateKeys": [
            {"privateKeyName": f"orphan-{c}", "curve": c, "addressFormats": []}
            for c in ("CURVE_SECP256K1", "CURVE_ED25519")
        ]
    }
    status, data = await org.submit("create_private_keys", CREATE_KEYS, params)
    assert_refused(status, data, http=500, grpc=13)
    after = await org.snapshot()
    assert after == {**before, "token_operations": after["token_operations"]}
