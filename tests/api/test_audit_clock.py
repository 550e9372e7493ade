"""Trusted time across restarts: a daemon whose wall clock starts earlier than the time signed
into the last audit checkpoint refuses to sign until an operator acknowledges (real HTTP, real CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from strongroom.api.app import make_app
from strongroom.cli.bootstrap import create_organization
from strongroom.client import ApiKeyStamper
from strongroom.clock import SystemClock
from strongroom.config import Settings, TokenSettings
from strongroom.crypto import p256
from strongroom.hsm import Token
from strongroom.service.facade import Strongroom
from strongroom.softhsm import SoftHsmToken

pytestmark = pytest.mark.softhsm

REPO = Path(__file__).resolve().parents[2]
HOUR_MS = 3_600_000


class Daemon:
    """One 'process lifetime' of the service, on a wall clock offset by `offset_ms`."""

    def __init__(self, softhsm_token: SoftHsmToken, data: Path, offset_ms: int) -> None:
        self.offset_ms = offset_ms
        settings = Settings(
            data_dir=data,
            token=TokenSettings(softhsm_token.module, softhsm_token.label, pin_file=softhsm_token.pin_file),
            rate_limit_per_second=10_000.0,
        )
        token = Token(softhsm_token.module, softhsm_token.label, softhsm_token.read_pin())
        self.service = Strongroom(settings, token, token.probe(), SystemClock(2_000, wall=self.wall))
        self.client = TestClient(TestServer(make_app(self.service)))

    def wall(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    async def submit(self, stamper: ApiKeyStamper, org: str, path: str, kind: str, params: dict[str, Any]) -> Any:
        body = json.dumps(
            {"type": kind, "timestampMs": str(self.wall()), "organizationId": org, "parameters": params}
        ).encode()
        resp = await self.client.post(f"/public/v1/submit/{path}", data=body, headers={"X-Stamp": stamper.stamp(body)})
        return resp.status, json.loads(await resp.read())

    async def sign(self, stamper: ApiKeyStamper, org: str, key_id: str) -> Any:
        params = {
            "signWith": key_id,
            "payload": str(uuid.uuid4()),
            "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
            "hashFunction": "HASH_FUNCTION_KECCAK256",
        }
        return await self.submit(stamper, org, "sign_raw_payload", "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2", params)

    async def close(self) -> None:
        await self.service.checkpoint()  # what the daemon does at shutdown
        await self.client.close()
        self.service.close()


async def test_clock_set_back_before_the_last_checkpoint_is_refused_until_acknowledged(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    data = tmp_path / "d"
    data.mkdir()
    d = Daemon(softhsm_token, data, 0)
    await d.client.start_server()
    priv, pub = p256.generate_private_key()
    org, _ = create_organization(d.service.repo, "clock", "root", pub, d.wall())
    stamper = ApiKeyStamper(pub, priv)
    key = {"privateKeyName": "k", "curve": "CURVE_SECP256K1", "privateKeyTags": [], "addressFormats": []}
    status, out = await d.submit(
        stamper, org, "create_private_keys", "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2", {"privateKeys": [key]}
    )
    assert status == 200, out
    key_id = out["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
    assert (await d.sign(stamper, org, key_id))[0] == 200
    await d.close()  # the shutdown checkpoint signs the trusted time

    # Restart with the wall clock an hour earlier than the last checkpoint: no signing.
    d = Daemon(softhsm_token, data, -HOUR_MS)
    await d.client.start_server()
    status, out = await d.sign(stamper, org, key_id)
    assert status == 503, out
    assert out["code"] == 14
    assert "earlier than the trusted time signed into the last audit checkpoint" in out["message"]
    assert out["details"][0]["turnkeyErrorCode"] == "INVALID_TIME"
    ready = await d.client.get("/readyz")
    assert ready.status == 503
    assert "strongroom clock acknowledge" in (await ready.json())["checks"]["clock"]
    await d.close()

    # A restart alone does not help; an operator's acknowledgement does.
    d = Daemon(softhsm_token, data, -HOUR_MS)
    await d.client.start_server()
    assert (await d.sign(stamper, org, key_id))[0] == 503
    await d.close()
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    ack = subprocess.run(
        [sys.executable, "-m", "strongroom", "--data-dir", str(data), "--json", "clock", "acknowledge"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
    )
    assert json.loads(ack.stdout)["checkpointAtMs"] is not None
    d = Daemon(softhsm_token, data, -HOUR_MS)
    await d.client.start_server()
    status, out = await d.sign(stamper, org, key_id)
    assert status == 200, out
    assert (await d.client.get("/readyz")).status == 200
    await d.close()
    # Within the tolerance (5 minutes) a clock a little behind is trusted without anyone's say.
    d = Daemon(softhsm_token, data, -HOUR_MS - 60_000)
    await d.client.start_server()
    assert (await d.sign(stamper, org, key_id))[0] == 200
    await d.close()


async def test_a_pinned_key_other_than_the_tokens_refuses_signing(softhsm_token: SoftHsmToken, tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    other = p256.generate_private_key()[1]
    (data / "audit-key.pub").write_text(f"ecdsa-p256-sha256 {other}\n")  # not this token's audit key
    d = Daemon(softhsm_token, data, 0)
    await d.client.start_server()
    priv, pub = p256.generate_private_key()
    org, _ = create_organization(d.service.repo, "pinned", "root", pub, d.wall())
    key = {"privateKeyName": "k", "curve": "CURVE_SECP256K1", "privateKeyTags": [], "addressFormats": []}
    stamper = ApiKeyStamper(pub, priv)
    kind = "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2"
    status, out = await d.submit(stamper, org, "create_private_keys", kind, {"privateKeys": [key]})
    assert status == 503, out
    assert "is not the key pinned in" in out["message"]
    ready = await d.client.get("/readyz")
    assert ready.status == 503
    assert "is not the key pinned in" in (await ready.json())["checks"]["audit"]
    assert not await d.service.checkpoint()  # nothing is signed on a log that failed verification
    await d.client.close()
    d.service.close()
