"""Export and import over real HTTP with a real token, in Turnkey's bundle format.

Each export is opened here as `@turnkey/crypto`'s `decryptExportBundle` would (signer pinned,
signature, organization, HPKE) and what comes out is checked against what the daemon signs with:
an exported mnemonic derives the wallet's addresses, an exported key the account's or key's
address. Imports use published material (the BIP-39 test mnemonic, with and without the trezor
passphrase) whose addresses are known, and are then exported back.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import coincurve
import pytest
from test_input_hardening import Org, assert_refused, open_org
from test_wallets import add_api_user, create_wallet, recovered_address, sign

from strongroom.chains.address_formats import derive_address
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.client.calls import ETHEREUM_ACCOUNT, SOLANA_ACCOUNT
from strongroom.crypto import bundles, hd, hpke
from strongroom.crypto.bundle_client import encrypt_to_import_bundle
from strongroom.softhsm import SoftHsmToken

pytestmark = pytest.mark.softhsm

ABOUT = " ".join(["abandon"] * 11 + ["about"])
ABOUT_ETH = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
ABOUT_SOL = "HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk"


@pytest.fixture
async def org(softhsm_token: SoftHsmToken, tmp_path: Path) -> AsyncIterator[Org]:
    async with open_org(softhsm_token, tmp_path) as made:
        yield made


async def signer_key(org: Org) -> str:
    status, data = await org.query("get_bundle_signer")
    assert status == 200, data
    key: str = data["publicKey"]
    assert len(key) == 130 and key.startswith("04")
    return key


def target() -> tuple[bytearray, str]:
    private, public = hpke.generate_key_pair()
    return private, public.hex()


async def ok(org: Org, path: str, activity_type: str, params: dict[str, Any]) -> dict[str, Any]:
    status, data = await org.submit(path, activity_type, params)
    assert status == 200, data
    assert data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED", data
    result: dict[str, Any] = next(iter(data["activity"]["result"].values()))
    return result


async def export_wallet(org: Org, wallet_id: str) -> str:
    private, public = target()
    made = await ok(
        org, "export_wallet", "ACTIVITY_TYPE_EXPORT_WALLET", {"walletId": wallet_id, "targetPublicKey": public}
    )
    assert made["walletId"] == wallet_id
    plain = bundles.open_export_bundle(made["exportBundle"], private, org.id, await signer_key(org))
    return bytes(plain).decode()


async def import_bundle(org: Org, kind: str, plaintext: bytes) -> str:
    init = "init_import_private_key" if kind == "PRIVATE_KEY" else "init_import_wallet"
    made = await ok(org, init, f"ACTIVITY_TYPE_{init.upper()}", {"userId": org.user_id})
    return encrypt_to_import_bundle(made["importBundle"], plaintext, org.id, org.user_id, await signer_key(org))


async def test_an_exported_mnemonic_derives_the_wallets_addresses(org: Org) -> None:
    made = await create_wallet(org, "exported", [ETHEREUM_ACCOUNT, SOLANA_ACCOUNT], mnemonicLength=24)
    mnemonic = await export_wallet(org, made["walletId"])
    assert hd.validate_mnemonic(mnemonic) == 24
    seed = hd.mnemonic_to_seed(mnemonic)
    for account, address in zip((ETHEREUM_ACCOUNT, SOLANA_ACCOUNT), made["addresses"], strict=True):
        path = hd.parse_path(account["path"], account["curve"])
        public = hd.derive_public_key(seed, account["curve"], path)
        assert derive_address(account["addressFormat"], account["curve"], public) == address
    status, data = await org.query("get_wallet", walletId=made["walletId"])
    assert data["wallet"]["exported"] is True
    # Exported, it may now be deleted without the flag.
    await ok(org, "delete_wallets", "ACTIVITY_TYPE_DELETE_WALLETS", {"walletIds": [made["walletId"]]})


async def test_an_exported_wallet_account_is_the_key_that_signs(org: Org) -> None:
    made = await create_wallet(org, "account", [ETHEREUM_ACCOUNT])
    private, public = target()
    out = await ok(
        org,
        "export_wallet_account",
        "ACTIVITY_TYPE_EXPORT_WALLET_ACCOUNT",
        {"address": made["addresses"][0], "targetPublicKey": public},
    )
    secret = bytes(bundles.open_export_bundle(out["exportBundle"], private, org.id, await signer_key(org)))
    key = coincurve.PrivateKey(secret)
    assert address_from_public_key(key.public_key.format(compressed=False)) == made["addresses"][0]


async def test_a_key_is_imported_signs_and_is_exported_back(org: Org) -> None:
    secret = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
    address = address_from_public_key(coincurve.PrivateKey(secret).public_key.format(compressed=False))
    encrypted = await import_bundle(org, "PRIVATE_KEY", secret)
    made = await ok(
        org,
        "import_private_key",
        "ACTIVITY_TYPE_IMPORT_PRIVATE_KEY",
        {
            "userId": org.user_id,
            "privateKeyName": "imported",
            "encryptedBundle": encrypted,
            "curve": "CURVE_SECP256K1",
            "addressFormats": ["ADDRESS_FORMAT_ETHEREUM"],
        },
    )
    assert made["addresses"] == [{"format": "ADDRESS_FORMAT_ETHEREUM", "address": address}]
    status, data = await sign(org, address, "imported key")
    assert status == 200, data
    assert recovered_address("imported key", data["activity"]["result"]["signRawPayloadResult"]) == address
    status, data = await org.query("get_private_key", privateKeyId=made["privateKeyId"])
    assert data["privateKey"]["imported"] is True and data["privateKey"]["exported"] is False

    private, public = target()
    out = await ok(
        org,
        "export_private_key",
        "ACTIVITY_TYPE_EXPORT_PRIVATE_KEY",
        {"privateKeyId": made["privateKeyId"], "targetPublicKey": public},
    )
    assert bytes(bundles.open_export_bundle(out["exportBundle"], private, org.id, await signer_key(org))) == secret
    status, data = await org.query("get_private_key", privateKeyId=made["privateKeyId"])
    assert data["privateKey"]["exported"] is True

    # The same encrypted bundle again: its one-time target was used, nothing is imported twice.
    status, data = await org.submit(
        "import_private_key",
        "ACTIVITY_TYPE_IMPORT_PRIVATE_KEY",
        {
            "userId": org.user_id,
            "privateKeyName": "imported twice",
            "encryptedBundle": encrypted,
            "curve": "CURVE_SECP256K1",
            "addressFormats": [],
        },
    )
    assert_refused(status, data)
    assert "init_import_private_key" in data["message"]


@pytest.mark.parametrize(
    ("passphrase", "eth"),
    [(None, ABOUT_ETH), ("TREZOR", None)],
)
async def test_a_mnemonic_is_imported_with_its_passphrase_and_exported_back(
    org: Org, passphrase: str | None, eth: str | None
) -> None:
    plaintext = ABOUT + (f"\n--PASS--\n{passphrase}" if passphrase else "")
    encrypted = await import_bundle(org, "WALLET", plaintext.encode())
    made = await ok(
        org,
        "import_wallet",
        "ACTIVITY_TYPE_IMPORT_WALLET",
        {
            "userId": org.user_id,
            "walletName": "imported",
            "encryptedBundle": encrypted,
            "accounts": [ETHEREUM_ACCOUNT, SOLANA_ACCOUNT],
        },
    )
    seed = hd.mnemonic_to_seed(ABOUT, passphrase or "")
    path = hd.parse_path(ETHEREUM_ACCOUNT["path"], "CURVE_SECP256K1")
    expected = derive_address(
        "ADDRESS_FORMAT_ETHEREUM", "CURVE_SECP256K1", hd.derive_public_key(seed, "CURVE_SECP256K1", path)
    )
    assert made["addresses"][0] == expected
    if eth is not None:  # the published addresses of the test mnemonic
        assert made["addresses"] == [eth, ABOUT_SOL]
    status, data = await org.query("get_wallet", walletId=made["walletId"])
    assert data["wallet"]["imported"] is True
    status, data = await sign(org, made["addresses"][0], "imported wallet")
    assert recovered_address("imported wallet", data["activity"]["result"]["signRawPayloadResult"]) == expected
    # Export gives back what Turnkey's export iframe expects: the mnemonic, then "\n" + passphrase.
    assert await export_wallet(org, made["walletId"]) == ABOUT + (f"\n{passphrase}" if passphrase else "")


async def test_token_keys_are_never_exported(org: Org) -> None:
    status, data = await org.submit(
        "create_private_keys",
        "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        {"privateKeys": [{"privateKeyName": "in token", "curve": "CURVE_SECP256K1", "addressFormats": []}]},
    )
    key_id = data["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
    before = await org.snapshot()
    status, data = await org.submit(
        "export_private_key",
        "ACTIVITY_TYPE_EXPORT_PRIVATE_KEY",
        {"privateKeyId": key_id, "targetPublicKey": target()[1]},
    )
    assert_refused(status, data)
    assert "non-extractable" in data["message"]
    assert await org.snapshot() == before


async def test_bad_bundles_and_keys_are_refused_and_change_nothing(org: Org) -> None:
    made = await create_wallet(org, "w", [ETHEREUM_ACCOUNT])
    compressed = hpke.generate_key_pair()[1]
    compressed_hex = (bytes([2 + compressed[-1] % 2]) + compressed[1:33]).hex()
    for bad in ("", "04", compressed_hex, "0x" + target()[1], "zz" * 65, "04" + "00" * 64):
        before = await org.snapshot()
        status, data = await org.submit(
            "export_wallet", "ACTIVITY_TYPE_EXPORT_WALLET", {"walletId": made["walletId"], "targetPublicKey": bad}
        )
        assert_refused(status, data)
        assert await org.snapshot() == before

    import_params = {
        "userId": org.user_id,
        "privateKeyName": "k",
        "curve": "CURVE_SECP256K1",
        "addressFormats": [],
    }
    # No import was started for this user.
    status, data = await org.submit(
        "import_private_key",
        "ACTIVITY_TYPE_IMPORT_PRIVATE_KEY",
        {**import_params, "encryptedBundle": json.dumps({"encappedPublic": "04" * 65, "ciphertext": "00" * 40})},
    )
    assert_refused(status, data)
    good = await import_bundle(org, "PRIVATE_KEY", b"\x01" * 32)
    other = await import_bundle(org, "PRIVATE_KEY", b"\x02" * 32)  # a newer target: `good` no longer opens
    cut = other[: other.index('"ciphertext":"') + 14 + 40] + '"}'  # the ciphertext cut to 20 bytes
    for bundle, decrypted in (
        (good, True),  # well formed, for the target `other` replaced: decrypting it (in the token) fails
        (cut, True),
        ("not json", False),
        (json.dumps({"encappedPublic": "04", "ciphertext": "00"}), False),
        (json.dumps({"ciphertext": "00" * 40}), False),
    ):
        before = await org.snapshot()
        status, data = await org.submit(
            "import_private_key", "ACTIVITY_TYPE_IMPORT_PRIVATE_KEY", {**import_params, "encryptedBundle": bundle}
        )
        assert_refused(status, data)
        after = await org.snapshot()
        if decrypted:  # the only token operation: the attempt to decrypt; nothing was written
            assert after.pop("token_operations") == before.pop("token_operations") + 1
        assert after == before
    # A key of the wrong length, or not a valid scalar, is refused after decryption.
    for plaintext in (b"\x01" * 31, b"\xff" * 32, b"\x00" * 32):
        bundle = await import_bundle(org, "PRIVATE_KEY", plaintext)
        status, data = await org.submit(
            "import_private_key", "ACTIVITY_TYPE_IMPORT_PRIVATE_KEY", {**import_params, "encryptedBundle": bundle}
        )
        assert_refused(status, data)
    # A wallet bundle that is not a BIP-39 mnemonic.
    bundle = await import_bundle(org, "WALLET", b"abandon abandon abandon")
    status, data = await org.submit(
        "import_wallet",
        "ACTIVITY_TYPE_IMPORT_WALLET",
        {"userId": org.user_id, "walletName": "bad", "encryptedBundle": bundle, "accounts": [ETHEREUM_ACCOUNT]},
    )
    assert_refused(status, data)
    # The valid one still imports (a refused attempt does not use the target up).
    status, data = await org.submit(
        "import_private_key", "ACTIVITY_TYPE_IMPORT_PRIVATE_KEY", {**import_params, "encryptedBundle": other}
    )
    assert_refused(status, data)  # its target was replaced by the later inits above


async def test_export_and_import_are_governed_by_policies(org: Org) -> None:
    made = await create_wallet(org, "guarded", [ETHEREUM_ACCOUNT])
    trader, trader_id = add_api_user(org, "trader")
    root = org.stamper
    org.stamper = trader
    try:
        status, data = await org.submit(
            "export_wallet",
            "ACTIVITY_TYPE_EXPORT_WALLET",
            {"walletId": made["walletId"], "targetPublicKey": target()[1]},
        )
        assert_refused(status, data, http=403, grpc=7)
        status, data = await org.submit("init_import_wallet", "ACTIVITY_TYPE_INIT_IMPORT_WALLET", {"userId": trader_id})
        assert_refused(status, data, http=403, grpc=7)
    finally:
        org.stamper = root
    await ok(
        org,
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {
            "policyName": "trader exports the guarded wallet",
            "effect": "EFFECT_ALLOW",
            "condition": (
                f"activity.resource == 'WALLET' && activity.action == 'EXPORT' && wallet.id == '{made['walletId']}'"
            ),
            "notes": "",
        },
    )
    org.stamper = trader
    try:
        status, data = await org.submit(
            "export_wallet",
            "ACTIVITY_TYPE_EXPORT_WALLET",
            {"walletId": made["walletId"], "targetPublicKey": target()[1]},
        )
        assert status == 200, data
    finally:
        org.stamper = root
