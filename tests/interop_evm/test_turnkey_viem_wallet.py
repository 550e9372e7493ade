"""Interop: `@turnkey/viem` 0.14.37 (with viem 2.57.20 and `@turnkey/http` 6.6.0) signing with HD
wallet accounts, `createAccount({client, organizationId, signWith: <wallet account address>})`.

`turnkey_viem_wallet.mjs` creates a wallet (Turnkey's default Ethereum path) and a second account,
then each account signs an EIP-191 message, the EIP-712 "Mail" example and an EIP-1559 transaction,
directly and through a viem WalletClient; viem's own verify functions check each result there, and
every signature is recovered here again with coincurve to the account's address. The pinned npm
packages are installed with `npm ci` when `node_modules` is missing or stale. Without `node`/`npm`
on PATH the test fails, unless STRONGROOM_SKIP_INTEROP=1 is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import coincurve
import pytest

from conftest import node_project, run_node_script
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.chains.ethereum.messages import eip191_hash
from strongroom.chains.ethereum.tx import TYPE_DYNAMIC_FEE, parse_signed_transaction

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "turnkey_viem_wallet.mjs"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MESSAGE = b"hello from a strongroom wallet"
TO = "0x3535353535353535353535353535353535353535"
# EIP-712's own test vector: the digest of the "Mail" example
MAIL_DIGEST = bytes.fromhex("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2")
PATHS = ["m/44'/60'/0'/0/0", "m/44'/60'/1'/0/0"]


@pytest.fixture(scope="module")
def node() -> str:
    """Path of `node`, with the pinned packages installed in tests/interop_evm/node_modules."""
    return node_project(HERE)


@pytest.fixture(scope="module")
def out(node: str, daemon: Any) -> dict[str, Any]:
    data: dict[str, Any] = run_node_script(node, SCRIPT, daemon)
    return data


def _recover(digest: bytes, r: int, s: int, y_parity: int) -> str:
    """The Ethereum address that signed `digest`, recovered with coincurve (libsecp256k1)."""
    assert y_parity in (0, 1)
    assert 0 < r < SECP256K1_N
    assert 0 < s <= SECP256K1_N // 2, "high-s signature"
    sig65 = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([y_parity])
    public = coincurve.PublicKey.from_signature_and_message(sig65, digest, hasher=None)
    return address_from_public_key(public.format(compressed=False))


def _recover_hex_signature(digest: bytes, signature: str) -> str:
    """Recover from a 65-byte `0x` r‖s‖v signature with v = 27/28 (what viem returns)."""
    raw = bytes.fromhex(signature.removeprefix("0x"))
    assert len(raw) == 65
    assert raw[64] in (27, 28)
    return _recover(digest, int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64] - 27)


def test_every_viem_check_passed(out: dict[str, Any]) -> None:
    checks = out["checks"]
    assert sorted(name for name, ok in checks.items() if ok is not True) == []
    for i in (0, 1):
        for name in (
            "address",
            "verifyMessage",
            "verifyTypedData",
            "recoverTransactionAddress",
            "transactionFields",
            "reserialize",
            "walletClient.verifyMessage",
            "walletClient.verifyTypedData",
            "otherAddressFails",
        ):
            assert checks[f"account{i}.{name}"] is True, name
    assert checks["addressesAreEip55"] is True
    assert checks["accountsDiffer"] is True


def test_the_wallet_accounts_are_the_signers(out: dict[str, Any]) -> None:
    wallet = out["wallet"]
    paths = {a["address"]: a["path"] for a in wallet["accounts"]}
    assert [paths[address] for address in wallet["addresses"]] == PATHS
    assert len(paths) == len(wallet["accounts"]) == 2
    assert [a["address"] for a in out["accounts"]] == wallet["addresses"]
    for account in wallet["accounts"]:
        assert account["walletId"] == wallet["walletId"]
        assert account["curve"] == "CURVE_SECP256K1"
        assert account["addressFormat"] == "ADDRESS_FORMAT_ETHEREUM"
        public = coincurve.PublicKey(bytes.fromhex(account["publicKey"]))
        assert address_from_public_key(public.format(compressed=False)) == account["address"]


def test_messages_recover_in_python(out: dict[str, Any]) -> None:
    digest = eip191_hash(MESSAGE)
    assert "0x" + digest.hex() == out["messageDigest"]
    for account in out["accounts"]:
        for signature in (account["direct"]["message"], account["walletClient"]["message"]):
            assert _recover_hex_signature(digest, signature) == account["address"]


def test_typed_data_recovers_in_python(out: dict[str, Any]) -> None:
    assert out["mailDigest"] == "0x" + MAIL_DIGEST.hex()
    for account in out["accounts"]:
        for signature in (account["direct"]["typedData"], account["walletClient"]["typedData"]):
            assert _recover_hex_signature(MAIL_DIGEST, signature) == account["address"]


def test_eip1559_transactions_recover_in_python(out: dict[str, Any]) -> None:
    for account in out["accounts"]:
        signed = parse_signed_transaction(account["direct"]["transaction"]["signed"])
        tx, sig = signed.tx, signed.signature
        assert tx.tx_type == TYPE_DYNAMIC_FEE
        assert tx.chain_id == 1
        assert tx.nonce == 0
        assert tx.to is not None
        assert tx.to.lower() == TO
        assert tx.value == 10**16
        assert tx.gas == 21000
        assert tx.max_fee_per_gas == 20 * 10**9
        assert tx.max_priority_fee_per_gas == 10**9
        assert "0x" + tx.signing_hash().hex() == out["transactionSigningHash"]
        assert _recover(tx.signing_hash(), sig.r, sig.s, sig.v) == account["address"]
        assert account["direct"]["transaction"]["recovered"] == account["address"]
