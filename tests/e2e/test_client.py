"""The Python client stamps with every API-key curve Turnkey supports, against a real daemon."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from conftest import Daemon
from strongroom.client import ActivityError, ApiError, ApiKeyStamper, AsyncClient, Client
from strongroom.crypto import ed25519, secp256k1

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


def test_client_stamps_with_p256_secp256k1_and_ed25519_keys(daemon: Daemon) -> None:
    root = daemon.client()
    k1_secret = secp256k1.generate_secret()
    ed_seed = ed25519.generate_seed()
    stampers = {
        "secp256k1": ApiKeyStamper(
            secp256k1.public_key_from_secret(k1_secret, compressed=True).hex(), k1_secret.hex(), "secp256k1"
        ),
        "ed25519": ApiKeyStamper(ed25519.public_key_from_seed(ed_seed).hex(), ed_seed.hex(), "ed25519"),
    }
    curves = {"secp256k1": "API_KEY_CURVE_SECP256K1", "ed25519": "API_KEY_CURVE_ED25519"}
    out = root.submit(
        "create_api_keys",
        "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
        {
            "userId": daemon.user_id,
            "apiKeys": [
                {"apiKeyName": f"{name}-{uuid.uuid4().hex[:6]}", "publicKey": s.public_key, "curveType": curves[name]}
                for name, s in stampers.items()
            ],
        },
    )
    assert out["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
    for name, stamper in stampers.items():
        client = Client(daemon.url, stamper, daemon.organization_id)
        assert client.whoami()["userId"] == daemon.user_id, name
        # A stamp of the wrong scheme for the key's curve is refused.
        wrong = ApiKeyStamper(stamper.public_key, stamper.private_key, "p256" if name == "secp256k1" else "secp256k1")
        with pytest.raises(ApiError) as err:
            Client(daemon.url, wrong, daemon.organization_id).whoami()
        assert err.value.status == 401

    async def sign() -> str:
        async with AsyncClient(daemon.url, stampers["ed25519"], daemon.organization_id) as ac:
            key = await ac.create_private_key(f"c-{uuid.uuid4().hex[:6]}", "CURVE_ED25519", ["ADDRESS_FORMAT_SOLANA"])
            address: str = key["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["addresses"][0][
                "address"
            ]
            done = await ac.wait(
                (
                    await ac.sign_raw_payload(
                        address, "68690a", "PAYLOAD_ENCODING_HEXADECIMAL", "HASH_FUNCTION_NOT_APPLICABLE"
                    )
                )["activity"]
            )
            return str(done["status"])

    assert asyncio.run(sign()) == "ACTIVITY_STATUS_COMPLETED"


def test_wait_raises_for_activities_that_do_not_complete(daemon: Daemon) -> None:
    client = daemon.client()
    pending = {"id": str(uuid.uuid4()), "status": "ACTIVITY_STATUS_CONSENSUS_NEEDED", "fingerprint": ""}
    with pytest.raises(ApiError):  # polling an activity that does not exist: the daemon's 404 surfaces
        client.wait(pending, timeout=1, interval=0.1)
    rejected = {"id": str(uuid.uuid4()), "status": "ACTIVITY_STATUS_REJECTED"}
    with pytest.raises(ActivityError, match="ended ACTIVITY_STATUS_REJECTED"):
        client.wait(rejected)
