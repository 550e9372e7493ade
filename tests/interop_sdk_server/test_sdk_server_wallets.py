"""Interop: HD wallets through Turnkey's official `@turnkey/sdk-server` 8.2.1, as its users write it.

`sdk_server_wallets.mjs` has the parent organization's key create a sub-organization with a
wallet made of the SDK's own DEFAULT_ETHEREUM_ACCOUNTS and DEFAULT_SOLANA_ACCOUNTS; the
sub-organization's root user then signs with both accounts by address, reads the wallet back,
creates a second wallet and more accounts (`defaultEthereumAccountAtIndex(1)`, ...) and signs with
those. Every signature is verified here with independent code: the Ethereum ones recover (coincurve)
to their account's address, the Solana ones verify (PyNaCl) under the key their address encodes.
The pinned npm packages are installed with `npm ci` when `node_modules` is missing or stale.
Without `node`/`npm` on PATH the test fails, unless STRONGROOM_SKIP_INTEROP=1 is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import coincurve
import nacl.signing
import pytest

from conftest import node_project, run_node_script
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.crypto.base58 import b58decode
from strongroom.crypto.keccak import keccak256

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "sdk_server_wallets.mjs"
SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
ETH_0 = {
    "curve": "CURVE_SECP256K1",
    "pathFormat": "PATH_FORMAT_BIP32",
    "path": "m/44'/60'/0'/0/0",
    "addressFormat": "ADDRESS_FORMAT_ETHEREUM",
}
SOL_0 = {
    "curve": "CURVE_ED25519",
    "pathFormat": "PATH_FORMAT_BIP32",
    "path": "m/44'/501'/0'/0'",
    "addressFormat": "ADDRESS_FORMAT_SOLANA",
}
ETH_1 = {**ETH_0, "path": "m/44'/60'/1'/0/0"}
SOL_1 = {**SOL_0, "path": "m/44'/501'/1'/0'"}
V1_WALLET_FIELDS = {"walletId", "walletName", "createdAt", "updatedAt", "exported", "imported"}


@pytest.fixture(scope="module")
def node() -> str:
    """Path of `node`, with the pinned packages installed in tests/interop_sdk_server/node_modules."""
    return node_project(HERE)


@pytest.fixture(scope="module")
def out(node: str, daemon: Any) -> dict[str, Any]:
    data: dict[str, Any] = run_node_script(node, SCRIPT, daemon)
    return data


def _ethereum_signer(sig: dict[str, Any]) -> str:
    """The address whose key made `sig` over keccak256(payload), recovered with coincurve."""
    assert sig["encoding"] == "PAYLOAD_ENCODING_TEXT_UTF8"
    assert sig["hashFunction"] == "HASH_FUNCTION_KECCAK256"
    assert sig["v"] in {"00", "01"}
    assert 0 < int(sig["s"], 16) <= SECP256K1_HALF_N  # low s
    digest = keccak256(sig["payload"].encode())
    public = coincurve.PublicKey.from_signature_and_message(
        bytes.fromhex(sig["r"] + sig["s"] + sig["v"]), digest, hasher=None
    )
    return address_from_public_key(public.format(compressed=False))


def _verify_solana(sig: dict[str, Any]) -> None:
    """Ed25519 over the message bytes, under the public key the base58 address is (PyNaCl)."""
    assert sig["encoding"] == "PAYLOAD_ENCODING_HEXADECIMAL"
    assert sig["hashFunction"] == "HASH_FUNCTION_NOT_APPLICABLE"
    key = nacl.signing.VerifyKey(b58decode(sig["signWith"]))
    key.verify(bytes.fromhex(sig["payload"]), bytes.fromhex(sig["r"] + sig["s"]))


def _account_matches_its_address(account: dict[str, Any]) -> None:
    public = bytes.fromhex(account["publicKey"])
    if account["addressFormat"] == "ADDRESS_FORMAT_ETHEREUM":
        uncompressed = coincurve.PublicKey(public).format(compressed=False)
        assert address_from_public_key(uncompressed) == account["address"]
    else:
        assert public == b58decode(account["address"])


def _spec(account: dict[str, Any]) -> dict[str, str]:
    return {k: account[k] for k in ("curve", "pathFormat", "path", "addressFormat")}


def test_the_sdk_default_accounts_are_the_ones_strongroom_documents(out: dict[str, Any]) -> None:
    # the script took these from @turnkey/sdk-server itself; a change upstream shows up here
    assert out["defaultAccounts"] == [ETH_0, SOL_0]
    assert out["moreAccounts"] == [ETH_1, SOL_1]


def test_sub_organization_is_created_with_a_wallet(out: dict[str, Any]) -> None:
    assert out["createdActivity"] == {
        "type": "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V8",
        "status": "ACTIVITY_STATUS_COMPLETED",
    }
    assert len(out["rootUserIds"]) == 1
    wallet = out["wallet"]
    eth, sol = wallet["addresses"]
    assert eth.startswith("0x")
    assert eth != eth.lower()  # EIP-55 checksummed
    assert len(b58decode(sol)) == 32
    assert [w["walletId"] for w in out["walletsBefore"]] == [wallet["walletId"]]
    assert out["gotWallet"] == out["walletsBefore"][0]
    assert set(out["gotWallet"]) >= V1_WALLET_FIELDS
    assert out["gotWallet"]["walletName"] == "Default wallet"
    assert out["gotWallet"]["exported"] is False
    assert out["gotWallet"]["imported"] is False


def test_wallet_accounts_read_back_as_created(out: dict[str, Any]) -> None:
    wallet = out["wallet"]
    # accounts made by one request share their creation time: the listing's order among them is
    # not the request's, so they are matched by address
    by_address = {a["address"]: a for a in out["accounts"]}
    assert len(by_address) == len(out["accounts"]) == 2
    eth, sol = wallet["addresses"]
    assert _spec(by_address[eth]) == ETH_0
    assert _spec(by_address[sol]) == SOL_0
    for account in by_address.values():
        assert account["walletId"] == wallet["walletId"]
        assert account["organizationId"] == out["subOrganizationId"]
        _account_matches_its_address(account)
    assert out["solAccount"] == by_address[sol]


def test_end_user_signs_with_the_wallet_accounts_by_address(out: dict[str, Any]) -> None:
    eth, sol = out["wallet"]["addresses"]
    sigs = out["signatures"]
    for sig in sigs.values():
        assert sig["activity"] == {
            "type": "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
            "status": "ACTIVITY_STATUS_COMPLETED",
            "organizationId": out["subOrganizationId"],
        }
    assert sigs["eth"]["signWith"] == eth
    assert _ethereum_signer(sigs["eth"]) == eth
    assert sigs["sol"]["signWith"] == sol
    _verify_solana(sigs["sol"])


def test_create_wallet_and_wallet_accounts_then_sign_with_them(out: dict[str, Any]) -> None:
    second, added = out["second"], out["added"]
    assert second["activity"] == {"type": "ACTIVITY_TYPE_CREATE_WALLET", "status": "ACTIVITY_STATUS_COMPLETED"}
    assert added["activity"] == {
        "type": "ACTIVITY_TYPE_CREATE_WALLET_ACCOUNTS",
        "status": "ACTIVITY_STATUS_COMPLETED",
    }
    # a fresh seed: the same default path gives another address than the first wallet's
    assert len(second["addresses"]) == 1
    assert second["addresses"][0] != out["wallet"]["addresses"][0]
    eth1, sol1 = added["addresses"]
    assert eth1 != second["addresses"][0]

    by_path = {a["path"]: a for a in out["secondAccounts"]}
    assert len(by_path) == 3
    assert [_spec(by_path[s["path"]]) for s in (ETH_0, ETH_1, SOL_1)] == [ETH_0, ETH_1, SOL_1]
    assert by_path[ETH_0["path"]]["address"] == second["addresses"][0]
    assert by_path[ETH_1["path"]]["address"] == eth1
    assert by_path[SOL_1["path"]]["address"] == sol1
    for account in out["secondAccounts"]:
        assert account["walletId"] == second["walletId"]
        _account_matches_its_address(account)

    sigs = out["signatures"]
    assert sigs["eth1"]["signWith"] == eth1
    assert _ethereum_signer(sigs["eth1"]) == eth1
    assert sigs["sol1"]["signWith"] == sol1
    _verify_solana(sigs["sol1"])
    assert {w["walletId"] for w in out["walletsAfter"]} == {out["wallet"]["walletId"], second["walletId"]}


def test_parent_reads_the_wallets_but_cannot_sign_with_them(out: dict[str, Any]) -> None:
    assert out["parentWallets"] == out["walletsAfter"]
    refused = out["parentSign"]
    assert refused["refused"] is True
    assert refused["code"] == 7, refused
    assert "not submit activities" in refused["message"]
    # the account's address means nothing in the parent's own organization
    refused = out["parentSignOwnOrg"]
    assert refused["refused"] is True
    assert refused["code"] == 5, refused
