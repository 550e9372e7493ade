"""HD wallet custody: the mnemonic, the seed and every derived key stay out of the database, its WAL
and the logs, through creating, deriving, signing with, exporting and deleting a wallet.

The daemon makes the mnemonic itself and never reveals it, so this test makes it knowable: the
generator is replaced by one that returns the BIP-39 test mnemonic, whose seed and Turnkey-default
account keys are then computed here and searched for, as raw bytes, as hex and as 16-byte halves.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient, TestServer

from strongroom.api.app import make_app
from strongroom.cli.bootstrap import create_organization
from strongroom.client import ApiKeyStamper
from strongroom.client.calls import ETHEREUM_ACCOUNT, SOLANA_ACCOUNT
from strongroom.clock import SystemClock
from strongroom.config import Settings, TokenSettings
from strongroom.crypto import bundles, hd, hpke, p256
from strongroom.hsm import Token
from strongroom.logs import configure_logging
from strongroom.service.facade import Strongroom
from strongroom.softhsm import SoftHsmToken

pytestmark = pytest.mark.softhsm

MNEMONIC = " ".join(["abandon"] * 11 + ["about"])


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("json", stream=stream)
    yield stream
    structlog.reset_defaults()


def needles() -> dict[str, bytes]:
    """Every secret of the wallet, in each form it could leak in."""
    seed = bytes(hd.mnemonic_to_seed(MNEMONIC))
    out = {"mnemonic": MNEMONIC.encode(), "mnemonic start": MNEMONIC[:40].encode(), "seed": seed}
    for name, account in (("eth", ETHEREUM_ACCOUNT), ("sol", SOLANA_ACCOUNT)):
        path = hd.parse_path(account["path"], account["curve"])
        out[f"{name} key"] = bytes(hd.derive_secret(seed, account["curve"], path))
    for name, value in list(out.items()):
        if "mnemonic" in name:
            continue
        out[f"{name} hex"] = value.hex().encode()
        out[f"{name} first half"] = value[:16]
        out[f"{name} second half"] = value[16:32]
    return out


def scan(data_dir: Path, logs: str, stage: str) -> None:
    files = {p.name: p.read_bytes() for p in data_dir.iterdir() if p.is_file()}
    assert "strongroom.sqlite3" in files, files.keys()  # and its -wal while the daemon runs
    for what, needle in needles().items():
        for name, content in files.items():
            assert needle not in content, f"{stage}: the wallet's {what} is in {name}"
        assert needle.decode("latin-1") not in logs, f"{stage}: the wallet's {what} is in the logs"


async def test_no_seed_mnemonic_or_derived_key_reaches_the_database_or_the_logs(
    softhsm_token: SoftHsmToken, tmp_path: Path, log_stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    made_mnemonics: list[int] = []

    def known_mnemonic(words: int) -> bytearray:
        made_mnemonics.append(words)
        return bytearray(MNEMONIC.encode())

    monkeypatch.setattr(hd, "generate_mnemonic", known_mnemonic)
    settings = Settings(
        data_dir=tmp_path,
        token=TokenSettings(softhsm_token.module, softhsm_token.label, pin_file=softhsm_token.pin_file),
        rate_limit_per_second=10_000.0,
    )
    token = Token(softhsm_token.module, softhsm_token.label, softhsm_token.read_pin())
    service = Strongroom(settings, token, token.probe(), SystemClock(2_000))
    priv, pub = p256.generate_private_key()
    org_id, _ = create_organization(service.repo, "custody", "root", pub, int(time.time() * 1000))
    stamper = ApiKeyStamper(pub, priv)
    client = TestClient(TestServer(make_app(service)))
    await client.start_server()

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
        data = await resp.json()
        assert resp.status == 200, data
        assert data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED", data
        return data["activity"]["result"]

    try:
        made = (
            await submit(
                "create_wallet",
                "ACTIVITY_TYPE_CREATE_WALLET",
                {"walletName": "custody", "accounts": [ETHEREUM_ACCOUNT, SOLANA_ACCOUNT]},
            )
        )["createWalletResult"]
        assert made_mnemonics == [12]
        # The known mnemonic's published addresses (tests/unit/crypto/test_crypto_hd.py): the daemon
        # really derived from it, so the secrets searched for below are the ones it held.
        assert made["addresses"] == [
            "0x9858EfFD232B4033E47d90003D41EC34EcaEda94",
            "HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk",
        ]
        await submit(
            "create_wallet_accounts",
            "ACTIVITY_TYPE_CREATE_WALLET_ACCOUNTS",
            {"walletId": made["walletId"], "accounts": [{**ETHEREUM_ACCOUNT, "path": "m/44'/60'/0'/0/1"}]},
        )
        for address, hash_function in zip(
            made["addresses"], ("HASH_FUNCTION_KECCAK256", "HASH_FUNCTION_NOT_APPLICABLE"), strict=True
        ):
            await submit(
                "sign_raw_payload",
                "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
                {
                    "signWith": address,
                    "payload": "custody",
                    "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
                    "hashFunction": hash_function,
                },
            )
        scan(tmp_path, log_stream.getvalue(), "after signing")
        target_private, target_public = hpke.generate_key_pair()
        exported = await submit(
            "export_wallet",
            "ACTIVITY_TYPE_EXPORT_WALLET",
            {"walletId": made["walletId"], "targetPublicKey": target_public.hex()},
        )
        query = json.dumps({"organizationId": org_id}).encode()
        resp = await client.post(
            "/public/v1/query/get_bundle_signer", data=query, headers={"X-Stamp": stamper.stamp(query)}
        )
        signer = (await resp.json())["publicKey"]
        opened = bundles.open_export_bundle(
            exported["exportWalletResult"]["exportBundle"], target_private, org_id, signer
        )
        assert bytes(opened) == MNEMONIC.encode()  # the export is the one way out, encrypted to its target
        scan(tmp_path, log_stream.getvalue(), "after exporting")
        await submit(
            "delete_wallets",
            "ACTIVITY_TYPE_DELETE_WALLETS",
            {"walletIds": [made["walletId"]], "deleteWithoutExport": True},
        )
        scan(tmp_path, log_stream.getvalue(), "after deleting")
    finally:
        await client.close()
        service.close()
    logs = log_stream.getvalue()
    assert "ACTIVITY_TYPE_CREATE_WALLET" in logs and "ACTIVITY_TYPE_DELETE_WALLETS" in logs  # the flows were logged
    scan(tmp_path, logs, "after closing")
