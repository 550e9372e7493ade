"""No secret ever reaches the logs or the database: PIN, API private key, a fallback key's plaintext."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
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
from strongroom.hsm import Capabilities, Token
from strongroom.logs import REDACTED, configure_logging, redact
from strongroom.service.facade import Strongroom
from strongroom.service.signing import key_ref
from strongroom.softhsm import SoftHsmToken

pytestmark = pytest.mark.softhsm


def test_redact_processor_hides_sensitive_keys_and_bytes() -> None:
    event = {"event": "x", "pin": "1234", "Private-Key": "abcd", "wrapped": b"\x00" * 60, "blob": b"\x01" * 32, "ok": 1}
    out = redact(None, "info", dict(event))
    assert out["pin"] == REDACTED and out["Private-Key"] == REDACTED and out["wrapped"] == REDACTED
    assert out["blob"] == "<32 bytes>"
    assert out["ok"] == 1


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    yield stream
    structlog.reset_defaults()


async def test_secrets_stay_out_of_logs_and_database(
    softhsm_token: SoftHsmToken, tmp_path: Any, log_stream: io.StringIO
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        token=TokenSettings(softhsm_token.module, softhsm_token.label, pin_file=softhsm_token.pin_file),
    )
    pin = softhsm_token.read_pin()
    token = Token(settings.token.module, settings.token.label, pin)
    # Force the software fallback so that a plaintext secret exists for a moment.
    caps = Capabilities(secp256k1=False, ed25519=False, aes_gcm=True, mechanisms=frozenset())
    service = Strongroom(settings, token, caps, SystemClock())
    priv, pub = p256.generate_private_key()
    org_id, _ = create_organization(service.repo, "logs", "root", pub, int(time.time() * 1000))
    stamper = ApiKeyStamper(pub, priv)
    client = TestClient(TestServer(make_app(service)))
    await client.start_server()
    try:

        async def submit(path: str, activity_type: str, params: dict[str, Any]) -> Any:
            body = json.dumps(
                {
                    "type": activity_type,
                    "timestampMs": str(int(time.time() * 1000)),
                    "organizationId": org_id,
                    "parameters": params,
                }
            ).encode()
            resp = await client.post(f"/public/v1/submit/{path}", data=body, headers={"X-Stamp": stamper.stamp(body)})
            return await resp.json()

        secrets_hex = []
        for curve, hash_fn in (
            ("CURVE_SECP256K1", "HASH_FUNCTION_KECCAK256"),
            ("CURVE_ED25519", "HASH_FUNCTION_NOT_APPLICABLE"),
        ):
            out = await submit(
                "create_private_keys",
                "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
                {
                    "privateKeys": [
                        {"privateKeyName": curve, "curve": curve, "privateKeyTags": [], "addressFormats": []}
                    ]
                },
            )
            key_id = out["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
            record = service.repo.private_keys.private_key(org_id, key_id)
            assert record is not None and record.backend == "software"
            plaintext = service.keys._ks._open(key_ref(record))  # the test peeks; nothing else may
            secrets_hex.append(plaintext.hex())
            out = await submit(
                "sign_raw_payload",
                "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
                {"signWith": key_id, "payload": "x", "encoding": "PAYLOAD_ENCODING_TEXT_UTF8", "hashFunction": hash_fn},
            )
            assert out["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
        # An error path logs too.
        await submit("sign_raw_payload", "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2", {"signWith": "nope"})
    finally:
        await client.close()
        service.close()
    logs = log_stream.getvalue()
    assert '"activity_id"' in logs  # the flows above were logged
    db_files = [settings.database_path, settings.database_path.with_name(settings.database_path.name + "-wal")]
    db = b"".join(p.read_bytes() for p in db_files if p.exists())
    for secret in (pin, priv, *secrets_hex):
        assert secret not in logs
        assert secret.encode() not in db
        assert bytes.fromhex(secret) not in db
